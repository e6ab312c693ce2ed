"""rich output captured as text: the one way render/ modules make a Console (width, colour, wrapping)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console


def capture(width: int | None = None, color: bool = False, **options: Any) -> Console:
    """A Console that writes into a string (`text(console)`); rich's colours only with `color` (a terminal)."""
    return Console(file=io.StringIO(), width=width, force_terminal=color, color_system="auto" if color else None,
                   **options)


def text(console: Console) -> str:
    """What `console` has printed so far."""
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()
