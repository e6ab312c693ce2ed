"""The golden rule: under AELAB_REGEN_GOLDEN=1 a golden is written and its test fails; a golden can only
change through a reviewed diff. Every test that has goldens goes through tests/goldens.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldens import check_golden

TESTS = Path(__file__).resolve().parents[1]


def test_regenerating_writes_and_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AELAB_REGEN_GOLDEN", "1")
    with pytest.raises(pytest.fail.Exception, match="written under AELAB_REGEN_GOLDEN=1"):
        check_golden("new.txt", "text\n", tmp_path)
    assert (tmp_path / "new.txt").read_text() == "text\n"
    with pytest.raises(pytest.fail.Exception, match="regenerated"):
        check_golden("new.txt", "text\n", tmp_path)  # even an unchanged one: the run never passes


def test_without_the_variable_a_golden_is_compared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AELAB_REGEN_GOLDEN", raising=False)
    (tmp_path / "g.txt").write_text("old\n")
    check_golden("g.txt", "old\n", tmp_path)
    with pytest.raises(AssertionError, match="differs"):
        check_golden("g.txt", "new\n", tmp_path)
    with pytest.raises(AssertionError, match="no golden"):
        check_golden("missing.txt", "x", tmp_path)


def test_no_test_writes_a_golden_by_itself() -> None:
    """Only tests/goldens.py reads AELAB_REGEN_GOLDEN."""
    readers = [p.relative_to(TESTS).as_posix() for p in TESTS.rglob("*.py")
               if "AELAB_REGEN_GOLDEN\")" in p.read_text(encoding="utf-8") and p.name != "goldens.py"]
    assert not readers, readers
