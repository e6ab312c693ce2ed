"""docs/models.md stays true: its Python and `$ aelab build` blocks print what it says, its table names every option."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from aelab.cli import main
from aelab.models import KINDS
from aelab.models.config import option_names

DOC = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text(encoding="utf-8")
CONSOLE = re.findall(r"```console\n\$ (aelab [^\n]*)\n(.*?)```", DOC, flags=re.S)


def test_the_python_example_prints_the_documented_output() -> None:
    blocks = re.findall(r"```(\w*)\n(.*?)```", DOC, flags=re.S)
    index = next(i for i, (lang, _) in enumerate(blocks) if lang == "python")
    code, (_, expected) = blocks[index][1], blocks[index + 1]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(compile(code, "docs/models.md", "exec"), {})
    assert stdout.getvalue() == expected


def _pattern(expected: str) -> str:
    """A block's lines as a regex over the output: each line exact, `...` any run of lines."""
    return "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line) + r"\n" for line in expected.splitlines())


@pytest.mark.parametrize(("command", "expected"), CONSOLE, ids=[c[:40] for c, _ in CONSOLE])
def test_console_block_is_real_output(command: str, expected: str, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through aelab.cli.main; a failing command's block is its stderr line. Trailing blanks are ignored."""
    monkeypatch.chdir(tmp_path)  # --out model.py lands here
    with pytest.raises(SystemExit) as info:
        main(shlex.split(command)[1:])
    captured = capsys.readouterr()
    code, text = (2, captured.err) if expected.startswith("aelab: ") else (0, captured.out)
    assert info.value.code == code, captured.err
    got = "".join(line.rstrip() + "\n" for line in text.splitlines())
    assert re.fullmatch(_pattern(expected), got), f"docs/models.md is stale for `{command}`; it now prints:\n{got}"


def test_no_console_block_went_missing() -> None:
    """The worked command (with --out), the refused config and the seqvae example are all checked above."""
    assert [command.split()[2] for command, _ in CONSOLE] == ["conv", "conv", "seqvae"]


def test_the_options_table_names_every_option_of_every_kind() -> None:
    start = DOC.index("| kind | input_shape |")
    table = DOC[start:DOC.index("\n\n", start)]
    for kind, (config_class, _) in KINDS.items():
        assert f"`{kind}`" in table
        for name in option_names(config_class):
            assert f"`{name}`" in table, f"{kind}: option {name} missing from docs/models.md"
