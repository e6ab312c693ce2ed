"""Output every verb writes the same way: to stdout, or atomically to a file."""

from __future__ import annotations

import sys
from pathlib import Path

from aelab.errors import UsageError
from aelab.training.checkpoint import atomic_write


def write_output(text: str, out: str | None) -> None:
    """Print, or write `out` atomically (the checkpoints' write-fsync-rename); one clear line if it cannot."""
    if not text.endswith("\n"):
        text += "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        atomic_write(Path(out), text.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from exc
