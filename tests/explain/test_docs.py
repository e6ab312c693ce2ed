"""docs/explain.md is real output: rerun every `$ aelab ...` block and the Python block, compare exactly."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from aelab.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "explain.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```console\n\$ (aelab [^\n]*)\n(.*?)```", TEXT, flags=re.S)


def test_the_page_has_the_seed_examples() -> None:
    commands = [cmd for cmd, _ in BLOCKS]
    for wanted in ("aelab explain conv2d --input 1x28x28 --out-channels 16 --kernel 5 --padding 2",
                   "aelab explain flatten --input 16x28x28",
                   "aelab explain linear --in-features 12544 --out-features 10",
                   "aelab explain conv2d --input 1x28x28 --kernel 5 --want 28"):
        assert wanted in commands


@pytest.mark.parametrize(("command", "expected"), BLOCKS, ids=[c.split(" ", 2)[2][:40] for c, _ in BLOCKS])
def test_console_block_is_real_output(command: str, expected: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Through aelab.cli.main, the CLI's entry point; a block of a failing command shows its stderr line."""
    with pytest.raises(SystemExit) as info:
        main(shlex.split(command)[1:])
    captured = capsys.readouterr()
    if expected.startswith("aelab: "):
        assert (info.value.code, captured.err) == (2, expected)
    else:
        assert (info.value.code, captured.out) == (0, expected)


def test_python_block_runs() -> None:
    (code,) = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
    exec(compile(code, str(DOC), "exec"), {})
