"""docs/memory.md is real: its `$ aelab memory` console block prints what the page shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "memory.md"
BLOCKS = re.findall(r"```console\n\$ (aelab [^\n]+)\n(.*?)\n```", DOC.read_text(), flags=re.S)


def test_console_blocks_match(cli) -> None:
    assert BLOCKS
    for command, shown in BLOCKS:
        proc = cli(*shlex.split(command)[1:])
        assert proc.returncode == 0, proc.stderr
        assert [x.rstrip() for x in proc.stdout.rstrip().splitlines()] == [x.rstrip() for x in shown.splitlines()]


def test_the_7b_hand_check_adds_up() -> None:
    n = 6_738_415_616
    text = DOC.read_text()
    assert f"{16 * n:,}" in text and f"{4 * n:,}" in text and f"{8 * n:,}" in text
