"""docs/data.md shows real output: the `aelab data show digits` block is what the command prints."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def test_data_show_example_is_real(cli) -> None:  # type: ignore[no-untyped-def]
    text = DOC.read_text()
    block = re.search(r"```\n\$ aelab data show digits\n(.*?)```", text, re.S)
    assert block is not None
    result = cli("data", "show", "digits")
    assert result.returncode == 0
    assert result.stdout == block.group(1)


def test_every_embedded_set_is_in_the_table(cli) -> None:  # type: ignore[no-untyped-def]
    from aelab.data import SOURCES

    text = DOC.read_text()
    for source in SOURCES.values():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{source.name}` |"))
        assert f"{source.rows:,}" in row and "×".join(map(str, source.sample_shape)) in row
        assert source.install in row or source.name == "digits"
