"""`aelab evaluate RUN`: metrics to metrics.json and a table; pictures into the run folder."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from aelab.cli.ranges import COUNT, POSITIVE, SEED
from aelab.evaluation import Evaluation
from aelab.evaluation.api import evaluate_run
from aelab.evaluation.posterior import WARNINGS, summary_line
from aelab.training.distributed import pick_device


@click.command(name="evaluate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--nll-samples", type=COUNT, default=1000, show_default=True,
              help="Importance samples K per row for the NLL of a VAE (0: skip ELBO and NLL).")
@click.option("--nll-rows", type=POSITIVE, default=500, show_default=True,
              help="Rows the NLL and ELBO are estimated on (the first of the evaluated rows).")
@click.option("--part", type=click.Choice(["test", "train", "all"]), default="test", show_default=True,
              help="Which rows of the run's data to evaluate.")
@click.option("--limit", type=POSITIVE, default=None, help="Evaluate at most this many rows.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seeds the importance samples.")
@click.option("--no-plots", is_flag=True, help="Only the numbers, no pictures.")
def command(run: Path, nll_samples: int, nll_rows: int, part: str, limit: int | None, device: str, seed: int,
            no_plots: bool) -> None:
    """Reconstruction MSE, PSNR and BCE (data in [0, 1]); for VAEs the ELBO and the NLL in nats;
    per class where the data have labels. Writes RUN/metrics.json and PNG pictures."""
    result, pictures = evaluate_run(run, pick_device(device), part, limit, nll_samples, nll_rows, seed,
                                    plots=not no_plots)
    _print(result)
    if result.non_finite:
        click.echo(f"aelab: note: {', '.join(result.non_finite)} not finite (NaN or inf) on these rows: null in "
                   "metrics.json", err=True)
    click.echo(f"metrics: {run / 'metrics.json'}")
    for path in pictures:
        click.echo(f"picture: {path}")


def _print(result: Evaluation) -> None:
    console = Console(width=140)
    table = Table(title=f"{result.run} on {result.data} ({result.part} rows: {result.rows:,})")
    for col in ("metric", "mean", "unit", "better", "rows", "what"):
        table.add_column(col, justify="right" if col in ("mean", "rows") else "left")
    for m in result.metrics:
        table.add_row(m.name, f"{m.mean:.5g}", m.unit, m.better, f"{m.rows:,}", m.doc)
    console.print(table)
    classes = list(result.metrics[0].per_class) if result.metrics and result.metrics[0].per_class else []
    if classes:
        per = Table(title="per class")
        per.add_column("class")
        for m in result.metrics:
            per.add_column(m.name, justify="right")
        for c in classes:
            per.add_row(c, *(f"{m.per_class[c]:.5g}" if c in m.per_class else "-" for m in result.metrics))
        console.print(per)
    if result.posterior is not None:
        console.print(f"posterior: {summary_line(result.posterior)}", highlight=False, markup=False)
        kl = ", ".join(f"{v:.3g}" for v in result.posterior.kl_per_dim[:32])
        more = " ..." if result.posterior.dims > 32 else ""
        console.print(f"KL per latent dimension (nats): {kl}{more}", highlight=False, markup=False)
    for name, value in result.extra.items():
        console.print(f"{name}: {value:.5g}", highlight=False)
    for note in result.notes:
        word = "warning" if note.split(":")[0] in WARNINGS else "note"
        console.print(f"{word}: {note}", highlight=False, markup=False)
