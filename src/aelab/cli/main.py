"""The `aelab` command: one group, one verb per module under `aelab.cli.verbs`.

Every verb module exposes `command: click.Command`. Verbs are imported lazily so
`aelab --help` stays fast and a broken optional verb cannot take the others down.
Exit codes: 0 ok, 1 the user's model is wrong, 2 bad usage or bad input, 3 a bug in aelab.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from aelab.errors import EXIT_INTERNAL, EXIT_USAGE, AelabError

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
    Exit codes: 0 ok, 1 the model is wrong, 2 bad usage or input, 3 a bug in aelab.
    """


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; turn every expected failure into one line on stderr and an exit code."""
    try:
        rv = cli.main(args=argv, prog_name="aelab", standalone_mode=False)
    except AelabError as exc:
        click.echo(f"aelab: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aelab: aborted", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        click.echo(f"aelab: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("aelab: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug in aelab: still one line unless asked for more
        if os.environ.get("AELAB_DEBUG"):
            raise
        click.echo(f"aelab: internal error: {type(exc).__name__}: {exc} (AELAB_DEBUG=1 shows the traceback)",
                   err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
