"""docs/models.md stays true: its Python example prints what the page says, its tables name every option."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from aelab.models import KINDS, build
from aelab.models.config import option_names

DOC = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text(encoding="utf-8")


def test_the_python_example_prints_the_documented_output() -> None:
    blocks = re.findall(r"```(\w*)\n(.*?)```", DOC, flags=re.S)
    index = next(i for i, (lang, _) in enumerate(blocks) if lang == "python")
    code, (_, expected) = blocks[index][1], blocks[index + 1]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(compile(code, "docs/models.md", "exec"), {})
    assert stdout.getvalue() == expected


def test_the_cli_examples_show_what_describe_prints() -> None:
    conv = build("conv", (3, 33, 47), 16, channels=[16, 32, 64])
    seq = build("seqvae", (100, 201), 32, width=128, dilation="exponential")
    for line in [*conv.describe(), *seq.describe()]:
        assert line in DOC


def test_the_options_table_names_every_option_of_every_kind() -> None:
    start = DOC.index("| kind | input_shape |")
    table = DOC[start:DOC.index("\n\n", start)]
    for kind, (config_class, _) in KINDS.items():
        assert f"`{kind}`" in table
        for name in option_names(config_class):
            assert f"`{name}`" in table, f"{kind}: option {name} missing from docs/models.md"
