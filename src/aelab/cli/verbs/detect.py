"""`aelab detect RUN --data FILE`: one anomaly score per row to CSV; AUROC and AUPR where labels exist."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from aelab.cli.load import parse_kwargs
from aelab.cli.ranges import INT64, POSITIVE, SEED
from aelab.errors import UsageError
from aelab.evaluation import SCORES, detect
from aelab.evaluation.api import detect_data, write_detection
from aelab.io import check_target
from aelab.training import load_run
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
@click.option("--samples", type=POSITIVE, default=10, show_default=True,
              help="Posterior draws per row for --score elbo.")
@click.option("--normal-class", type=INT64, default=None,
              help="The label of normal rows (default: the run's --normal-class, or 0/1 labels as given).")
@click.option("--skip-bad", is_flag=True, help="Leave out NaN/inf rows instead of stopping.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="CSV path, the summary beside it as .json (default RUN/scores.csv); existing files need --force.")
@click.option("--force", is_flag=True, help="Replace the --out CSV and its .json if they exist.")
@click.option("--fpr", type=float, default=None, metavar="RATE",
              help="Flag rows above the threshold that the run's normal validation rows exceed at this "
                   "false-alarm rate, e.g. 0.01.")
@click.option("--per-feature", is_flag=True,
              help="Also write each row's squared error per feature (per time step for sequences) beside the CSV.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
def command(run: Path, data: str | None, data_opt: tuple[str, ...], part: str, score: str, samples: int,
            normal_class: int | None, skip_bad: bool, out: Path | None, force: bool, fpr: float | None,
            per_feature: bool, device: str, seed: int) -> None:
    """Score rows by how badly the run's model explains them (higher = more anomalous)."""
    csv_path, _ = _outputs(run, out, force)
    loaded = load_run(run, pick_device(device))
    ds, name, part, rows = detect_data(loaded, data, parse_kwargs(list(data_opt)) if data_opt else None, part,
                                       skip_bad)
    torch.manual_seed(seed)
    det = detect(loaded, ds, rows, score, samples, normal_class, fpr=fpr, per_feature=per_feature)
    det.data, det.part = name, part
    summary = write_detection(det, csv_path, force=force or out is None)
    click.echo(f"{len(rows):,} rows of {ds.name} ({part}) scored by {SCORES[det.score][2]}: {csv_path}")
    if det.auroc is not None and det.aupr is not None and det.anomaly is not None:
        click.echo(f"AUROC {det.auroc:.4f}  AUPR {det.aupr:.4f}  ({int(det.anomaly.sum()):,} anomalies; "
                   f"{det.normal})")
    else:
        click.echo(f"no AUROC: {det.normal}")
    if det.threshold is not None:
        line = (f"threshold {det.threshold.value:.6g} (--fpr {fpr}: the {1 - det.threshold.fpr:.4g} quantile of "
                f"{det.threshold.normal_rows:,} normal validation rows): {summary['flagged']:,} rows flagged")
        measured = [f"{k.replace('_', ' ')} {summary[k]:.4f}" for k in ("precision", "recall", "false_alarm_rate")
                    if summary.get(k) is not None]
        click.echo(line + ("; " + "  ".join(measured) if measured else ""))
    if "per_feature_csv" in summary:
        click.echo(f"per-feature errors: {summary['per_feature_csv']}")


def _outputs(run: Path, out: Path | None, force: bool) -> tuple[Path, Path]:
    """The CSV and JSON paths, from one stem so they never collide; both checked before any work.
    The run folder's own scores.csv/.json are replaced; files the user named need --force."""
    if out is not None and out.suffix.lower() not in ("", ".csv"):
        raise UsageError(f"--out {out}: give a .csv path (the summary is written beside it as .json)")
    stem = (out or run / "scores.csv").with_suffix("")
    paths = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".json")
    for path in paths:
        check_target(path, force or out is None)
    return paths
