"""docs/train.md's Python example (your own model through aelab.train/evaluate/detect) prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "train.md").read_text(encoding="utf-8")


def test_the_python_example_prints_the_documented_output(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    blocks = re.findall(r"```(\w*)\n(.*?)```", DOC, flags=re.S)
    index = next(i for i, (lang, _) in enumerate(blocks) if lang == "python")
    code, (_, expected) = blocks[index][1], blocks[index + 1]
    monkeypatch.syspath_prepend(str(ROOT))  # `from examples.seeds import AE`, as from the repository root
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(compile(code, "docs/train.md", "exec"), {"OUT": tmp_path})
    assert stdout.getvalue() == expected
