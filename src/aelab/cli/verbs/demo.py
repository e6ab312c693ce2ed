"""`aelab demo` (`make demo`): train a small conv AE on Fashion-MNIST, evaluate it, draw the pictures."""

from __future__ import annotations

import time
from pathlib import Path

import click

from aelab.cli.ranges import POSITIVE, SEED
from aelab.evaluation.api import evaluate_run
from aelab.training import TrainConfig, train
from aelab.training.rundir import CONFIG


@click.command(name="demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True,
              help="Run folder; an unfinished demo there is resumed, a finished one re-evaluated.")
@click.option("--epochs", type=POSITIVE, default=10, show_default=True)
@click.option("--limit", type=POSITIVE, default=30_000, show_default=True, help="Training rows (of 60,000).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or epoch lines.")
def command(out: Path, epochs: int, limit: int, seed: int, quiet: bool) -> None:
    """A conv autoencoder (channels 16, 32; latent 16) on Fashion-MNIST: about a minute or two on 2 CPU cores."""
    start = time.perf_counter()
    if (out / CONFIG).exists():
        click.echo(f"{out} holds a demo run: resuming it (delete the folder to start over)")
        train(out, None, quiet=quiet)
    else:
        config = TrainConfig(kind="conv", data="fashion-mnist", latent=16, model_options={"channels": [16, 32]},
                             epochs=epochs, batch_size=128, lr=2e-3, limit=limit, seed=seed)
        train(out, config, quiet=quiet)
    trained = time.perf_counter() - start
    result, pictures = evaluate_run(out, "cpu", "test", 2000, nll_samples=0, seed=seed)
    means = ", ".join(f"{m.name} {m.mean:.4g}{(' ' + m.unit) if m.unit else ''}" for m in result.metrics)
    click.echo(f"trained in {trained:.0f} s; on {result.rows:,} test images: {means}")
    click.echo(f"metrics:  {out / 'metrics.json'}")
    for path in pictures:
        click.echo(f"picture:  {path}")
