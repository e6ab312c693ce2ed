"""docs/pictures.md is real: its Python example prints what the page shows, its commands make the files it
describes, and the claims it makes about them hold."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "docs" / "pictures.md").read_text()
COMMANDS = re.findall(r"```sh\n(aelab [^\n]+)\n```", TEXT)


def test_python_example_prints_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = re.search(r"```python\n(.*?)```\n\n```text\n(.*?)```", TEXT, flags=re.S)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), "pictures.md", "exec"), {})
    assert out.getvalue() == code.group(2)
    assert (tmp_path / "ae_hourglass.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_make_their_files(cli, tmp_path: Path, command: str) -> None:
    args = shlex.split(command)[1:]
    for flag in ("--graph", "--out"):
        if flag in args:
            i = args.index(flag) + 1
            args[i] = str(tmp_path / args[i])
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    if "--graph" in args:
        svg = (tmp_path / "seqvae.svg").read_text()
        assert "latent (bottleneck)" in svg and "encoder (Encoder)" in svg and "4×50×256" in svg
    if "--out" in args:
        page = (tmp_path / "report.html").read_text()
        assert "default-src 'none'" in page and 'id="hourglass"' in page and 'id="graph"' in page


def test_the_no_dot_line_is_the_real_one() -> None:
    from aelab.render.graph import NO_DOT

    assert f"aelab: {NO_DOT}" in TEXT
