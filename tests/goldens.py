"""Golden files, one rule for every test that has them (tests/golden/).

A golden is compared exactly. Under AELAB_REGEN_GOLDEN=1 it is written with the new text AND the test fails,
so a regenerated golden can only land through review of its diff, never by a passing run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def regenerating() -> bool:
    return os.environ.get("AELAB_REGEN_GOLDEN", "") not in ("", "0")


def check_golden(name: str, text: str, folder: Path = GOLDEN) -> None:
    """`text` must equal the golden `name`; with AELAB_REGEN_GOLDEN=1 write it and fail."""
    path = folder / name
    if regenerating():
        old = path.read_text(encoding="utf-8") if path.exists() else None
        path.write_text(text, encoding="utf-8")
        what = "written" if old is None else "rewritten" if old != text else "regenerated (no change)"
        pytest.fail(f"golden {name} {what} under AELAB_REGEN_GOLDEN=1: review `git diff tests/golden`, "
                    "then run the tests without it")
    assert path.exists(), f"no golden {name}: write it with AELAB_REGEN_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden (AELAB_REGEN_GOLDEN=1 rewrites)"
