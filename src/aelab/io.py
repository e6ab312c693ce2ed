"""Every file aelab writes goes through here: atomic, never over what the user has, never through a link.

`atomic_write` is the one write: a temporary file beside the target (`.tmp-NAME-PID`, created
exclusively), fsync'ed, then moved into place, so a reader sees the old file or the new one, never a
part; the temporary file is removed whatever happens (a full disk, Ctrl-C). `write_output` is what a
verb's `--out` does: it refuses a path that exists unless `--force` is given, and always refuses a
symlink or anything that is not a regular file (a FIFO, a device, a folder), naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aelab.errors import ModelError, UsageError


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def refuse_special(path: Path) -> None:
    """A UsageError if `path` is a symlink or exists as anything but a regular file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UsageError(f"{path} is a symlink: aelab never writes through one; give the real path")
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is a folder: give a file name")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} is not a regular file (a pipe, socket or device): give a file name")


def check_target(path: Path, force: bool) -> None:
    """What `--out PATH` may write: a new path, or an existing regular file with `force`."""
    refuse_special(path)
    if path.exists() and not force:
        raise UsageError(f"{path} exists: pass --force to replace it, or choose another --out")


def atomic_write(path: Path, data: bytes, replace: bool = True) -> None:
    """Put `data` at `path` atomically; `replace=False` never replaces a file that appeared meanwhile.

    An OSError (a full disk, a read-only folder) is a UsageError naming `path`; the temporary file is
    removed whatever stops the write.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # left by a killed earlier process with our PID
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        refuse_special(path)  # checked again just before the move: a link made meanwhile is not followed
        if replace:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, FileExistsError) and not replace:
            raise UsageError(f"{path} exists: pass --force to replace it, or choose another --out") from None
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    fsync_dir(path.parent)


def _link_new(tmp: Path, path: Path) -> None:
    """Move `tmp` to `path` only if `path` does not exist (a hard link fails with EEXIST otherwise)."""
    try:
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if os.path.lexists(path):  # a file system without hard links: check, then move
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)
    else:
        tmp.unlink()


def finite_json(obj: Any) -> tuple[Any, list[str]]:
    """`obj` with every NaN/inf float replaced by None, and the dotted paths of those values."""
    found: list[str] = []

    def walk(value: Any, where: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            found.append(where)
            return None
        if isinstance(value, dict):
            return {k: walk(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    return walk(obj, ""), found


def json_bytes(obj: Any) -> bytes:
    """Strict JSON: a NaN or inf is written as null (strict parsers reject bare NaN); a caller that must
    say which values were not finite asks `finite_json` first."""
    return (json.dumps(finite_json(obj)[0], indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json_bytes(obj))


def write_file(path: Path, data: bytes, force: bool = False) -> None:
    """Write a file the user named: refused if it exists (unless `force`) or is not a regular file;
    an OSError (full disk, read-only folder) is a UsageError naming the path."""
    check_target(path, force)
    atomic_write(path, data, replace=force)


def write_output(text: str, out: str | Path | None, force: bool = False) -> None:
    """Print to stdout, or write `out` (see `write_file`)."""
    if not text.endswith("\n"):
        text += "\n"
    if out is None:
        sys.stdout.write(text)
        return
    write_file(Path(out), text.encode("utf-8"), force)


@contextlib.contextmanager
def user_code(what: str = "run") -> Iterator[None]:
    """Around the user's model: its prints go to stderr (stdout is aelab's machine output), and its
    sys.exit is the model's failure (exit 1), not aelab's exit."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except SystemExit as exc:
        raise ModelError(f"the model called sys.exit({exc.code!r}) while being {what}") from None


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block is done, then raise it: a save is finished, never half made.
    Outside the main thread (where handlers cannot be set) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
