"""The worked examples in docs/inspect.md are real: each `$ aelab ...` block prints what the page shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "inspect.md"
BLOCKS = re.findall(r"```console\n\$ (aelab [^\n]+)\n(.*?)\n```", DOC.read_text(), flags=re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize(("command", "expected"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_console_block_matches_real_output(cli, command: str, expected: str) -> None:
    out = cli(*shlex.split(command)[1:])
    assert out.returncode == 0, out.stderr
    got = [line.rstrip() for line in out.stdout.rstrip().splitlines()]
    assert got == [line.rstrip() for line in expected.splitlines()]
