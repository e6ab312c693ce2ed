"""The `aelab` command: one group, one verb per module under `aelab.cli.verbs`.

Every verb module exposes `command: click.Command`. Verbs are imported lazily so
`aelab --help` stays fast and a broken optional verb cannot take the others down.
Exit codes: 0 ok, 1 the user's model is wrong, 2 bad usage or bad input, 3 a bug in aelab.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from types import FrameType
from typing import Any

import click

from aelab.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_MODEL, EXIT_USAGE, AelabError

#: verb name -> (module under aelab.cli.verbs, one-line help). A new verb is one entry here.
VERBS: dict[str, tuple[str, str]] = {
    "inspect": ("inspect", "Every layer's shapes, parameters and FLOPs; the bottleneck."),
    "doctor": ("doctor", "Find the layer a shape error comes from and the number to use."),
    "explain": ("explain", "Output-size formulas of a layer with the numbers filled in."),
    "cost": ("cost", "What backward really costs for a trainable subset of the parameters."),
    "memory": ("memory", "How much memory one training step needs, layer by layer, before you run it."),
    "build": ("build", "Build an autoencoder whose decoder reproduces the input shape exactly."),
    "train": ("train", "Train an autoencoder on embedded or user data; checkpoints, resume."),
    "evaluate": ("evaluate", "Reconstruction error, ELBO, NLL and pictures for a trained run."),
    "detect": ("detect", "Anomaly scores per row from a trained run; AUROC/AUPR with labels."),
    "data": ("data", "The embedded datasets and whether each is installed."),
    "demo": ("demo", "Train, evaluate and picture a small conv AE on Fashion-MNIST."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in VERBS:
            return None
        module_name, _ = VERBS[cmd_name]
        try:
            module = importlib.import_module(f"aelab.cli.verbs.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"aelab.cli.verbs.{module_name}":
                return _missing_verb(cmd_name)
            raise
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in VERBS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _missing_verb(name: str) -> click.Command:
    @click.command(name=name)
    def _cmd() -> None:
        raise AelabError(f"'aelab {name}' is not available in this build")

    return _cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aelab")
def cli() -> None:
    """aelab: see PyTorch networks; build, train and judge autoencoders.

    FLOPs count a multiply-add as 2, as torch.utils.flop_counter does.
    Exit codes: 0 ok, 1 the model is wrong, 2 bad usage or input, 3 a bug in aelab, 130 interrupted.
    """


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI and exit with its code (see `run`)."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run one command; every failure becomes one line on stderr and an exit code.

    0 ok; 1 the user's model is wrong (a sys.exit inside it included); 2 bad usage, bad input, files,
    disk, memory or environment; 130 Ctrl-C (click's own main would turn it into Abort, so the
    command is invoked here directly); 3 only for what can only be a bug in aelab.
    """
    _quiet_warnings()
    args = sys.argv[1:] if argv is None else list(argv)
    with _interrupts_outside_imports():
        return _invoke(args)


def _invoke(args: list[str]) -> int:
    try:
        with cli.make_context("aelab", args) as ctx:
            rv = cli.invoke(ctx)
        return rv if isinstance(rv, int) else 0
    except AelabError as exc:
        return _fail(str(exc), exc.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        return _fail("aborted", EXIT_USAGE)
    except click.ClickException as exc:
        return _fail(exc.format_message(), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except SystemExit as exc:  # aelab itself never calls sys.exit below here: this is the model's
        return _fail(f"the model called sys.exit({exc.code!r}) while being run", EXIT_MODEL)
    except Exception as exc:
        line = _environment(exc)
        if line is not None:
            return _fail(line, EXIT_USAGE)
        if os.environ.get("AELAB_DEBUG"):  # a bug in aelab: still one line unless asked for more
            raise
        return _fail(f"internal error: {type(exc).__name__}: {_first_line(exc)} (AELAB_DEBUG=1 shows the "
                     "traceback)", EXIT_INTERNAL)


def _in_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C as KeyboardInterrupt, but never inside an import (the verbs import torch lazily, and a module
    interrupted half-way breaks later code with odd errors): then it is raised 20 ms after the import."""
    if _in_import(frame):
        signal.setitimer(signal.ITIMER_REAL, 0.02)  # SIGALRM comes back here
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_outside_imports() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_interrupt), signal.signal(signal.SIGALRM, _on_interrupt)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGALRM, previous[1])


def _fail(line: str, code: int) -> int:
    with contextlib.suppress(OSError):
        click.echo(f"aelab: {line}", err=True)
    return code


def _first_line(exc: BaseException) -> str:
    """The message without the C++ frames torch appends to its errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _environment(exc: Exception) -> str | None:
    """One line for a failure of the machine rather than of aelab: memory, files, disk; else None."""
    text = _first_line(exc)
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or type(exc).__name__ == "OutOfMemoryError":
        asked = re.search(r"allocate (\d+) bytes", text)
        size = f" ({int(asked.group(1)) / 1e9:,.1f} GB asked for)" if asked else ""
        return f"not enough memory for the sizes given{size}; choose smaller sizes"
    if isinstance(exc, OSError):
        if exc.errno == errno.EPIPE:
            return "the output pipe was closed"
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or text}"
    return None


def _quiet_warnings() -> None:
    """Noise that says nothing to the user: a font without glyphs for a CJK name draws boxes, not 12 lines."""
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from (current )?font")


if __name__ == "__main__":
    main()
