"""Docs teach only public names: no page (docs/*.md, README.md, examples/*.py) imports a module that is not
`aelab` itself or a documented public module (each says so in its docstring)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", *sorted((ROOT / "examples").glob("*.py"))]
#: the modules a doc may import besides `aelab`: their docstrings say they are documented public modules
PUBLIC = {"aelab", "aelab.explain", "aelab.models", "aelab.schemas", "aelab.render.doctor_text",
          "aelab.render.graph", "aelab.render.hourglass"}
IMPORT = re.compile(r"^\s*(?:from\s+(aelab[\w.]*)\s+import\s+([\w, ()]+)|import\s+(aelab[\w.]*))", re.M)


def imports(text: str) -> list[str]:
    """Every aelab module a text imports (`from aelab import x` imports `aelab.x` when x is a module)."""
    out = []
    for m in IMPORT.finditer(text):
        module = m.group(1) or m.group(3)
        out.append(module)
        if module == "aelab" and m.group(2):
            for name in re.findall(r"\w+", m.group(2)):
                if (ROOT / "src" / "aelab" / name).is_dir() or (ROOT / "src" / "aelab" / f"{name}.py").exists():
                    out.append(f"aelab.{name}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_doc_imports_a_private_module(page: Path) -> None:
    private = sorted({m for m in imports(page.read_text(encoding="utf-8")) if m not in PUBLIC})
    assert not private, f"{page.name} imports private modules {private}: use aelab.<name> (aelab.__all__)"


@pytest.mark.parametrize("module", sorted(PUBLIC - {"aelab"}))
def test_public_modules_say_so(module: str) -> None:
    doc = importlib.import_module(module).__doc__ or ""
    assert "public module" in doc or "See docs/" in doc, f"{module}'s docstring does not say it is public"


def test_the_check_sees_imports() -> None:
    assert imports("from aelab.costing.cost import cost\nimport aelab.trace.record\nfrom aelab import schemas\n") \
        == ["aelab.costing.cost", "aelab.trace.record", "aelab", "aelab.schemas"]
