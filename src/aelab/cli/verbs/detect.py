"""`aelab detect RUN --data FILE`: one anomaly score per row to CSV; AUROC and AUPR where labels exist."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from aelab.cli.load import parse_kwargs
from aelab.data import SOURCES, load
from aelab.evaluation import SCORES, csv_text, detect, eval_rows
from aelab.io import write_output
from aelab.training import load_run
from aelab.training.checkpoint import atomic_write_json
from aelab.training.distributed import pick_device


@click.command(name="detect")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", default=None,
              help="Rows to score: a file, a folder or an embedded set (default: the run's own data).")
@click.option("--data-opt", multiple=True, metavar="K=V", help="Data option (see `aelab train --help`).")
@click.option("--part", type=click.Choice(["auto", "test", "train", "all"]), default="auto", show_default=True,
              help="auto: the held-out test rows of the run's own data set, every row of other data.")
@click.option("--score", type=click.Choice(["auto", *SCORES]), default="auto", show_default=True,
              help="recon: reconstruction MSE; elbo: negative ELBO (VAEs); auto: elbo for VAEs.")
@click.option("--samples", type=int, default=10, show_default=True, help="Posterior draws per row for --score elbo.")
@click.option("--normal-class", type=int, default=None,
              help="The label of normal rows (default: the run's --normal-class, or 0/1 labels as given).")
@click.option("--skip-bad", is_flag=True, help="Leave out NaN/inf rows instead of stopping.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="CSV path (default RUN/scores.csv).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def command(run: Path, data: str | None, data_opt: tuple[str, ...], part: str, score: str, samples: int,
            normal_class: int | None, skip_bad: bool, out: Path | None, device: str, seed: int) -> None:
    """Score rows by how badly the run's model explains them (higher = more anomalous)."""
    loaded = load_run(run, pick_device(device))
    own = data is None or data == loaded.info.train.data
    name = loaded.info.train.data if data is None else data
    options = loaded.info.train.data_options if own and not data_opt else parse_kwargs(list(data_opt))
    ds = load(name, options, skip_bad)
    if part == "auto":
        part = "test" if own or name in SOURCES else "all"
    rows = eval_rows(ds, part, None)
    torch.manual_seed(seed)
    det = detect(loaded, ds, rows, score, samples, normal_class)
    out = out or run / "scores.csv"
    write_output(csv_text(det), str(out))
    summary = det.summary() | {"data": name, "part": part, "csv": str(out)}
    atomic_write_json(out.with_suffix(".json"), summary)
    click.echo(f"{len(rows):,} rows of {ds.name} ({part}) scored by {SCORES[det.score][2]}: {out}")
    if det.auroc is not None and det.aupr is not None and det.anomaly is not None:
        click.echo(f"AUROC {det.auroc:.4f}  AUPR {det.aupr:.4f}  ({int(det.anomaly.sum()):,} anomalies; "
                   f"{det.normal})")
    else:
        click.echo(f"no AUROC: {det.normal}")
