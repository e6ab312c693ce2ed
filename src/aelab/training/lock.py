"""One writer per run folder: an exclusive `flock` on `RUN/.aelab.lock`, held for the whole run.

The lock file holds the holder's PID, so a second `aelab train` into the same folder is told who has
it. The kernel drops the lock when the holder ends, however it ends (a SIGKILL included), so a stale
lock file never blocks anyone. A new run takes only a folder that is new, empty, or holds nothing
but the lock file: a folder with files aelab did not write is refused, never overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from aelab.errors import UsageError

LOCK = ".aelab.lock"


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f"PID {int(path.read_text().split()[0])}"
    return "another process"


@contextlib.contextmanager
def run_lock(run_dir: Path, new: bool) -> Iterator[None]:
    """Hold `run_dir` for this process; `new`: the folder must not hold another run or foreign files."""
    if new and run_dir.is_dir():
        _check_new(run_dir)  # before the lock file: nothing is written into a folder that is not ours
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"{run_dir} is a file, not a run folder: choose another --out") from None
    except OSError as exc:
        raise UsageError(f"cannot create the run folder {run_dir}: {exc.strerror or exc}") from None
    path = run_dir / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise UsageError(f"cannot write in {run_dir}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{run_dir} is being written by another aelab ({_holder(path)}); wait for it to "
                             "end, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        if new:
            _check_new(run_dir)  # again, now that no one else can write here
        yield
    finally:
        os.close(fd)  # releases the lock


def _check_new(run_dir: Path) -> None:
    others = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK)
    if "config.json" in others:
        raise UsageError(f"{run_dir} already holds a run: continue it with --resume {run_dir} or pick another --out")
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise UsageError(f"{run_dir} holds files aelab did not write ({shown}): a new run needs a new or empty "
                         "folder; choose another --out")
