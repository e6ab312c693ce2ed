"""`aelab.evaluate(run)` and `aelab.detect(run, data)`: what the `evaluate` and `detect` verbs do, from Python.

`run` is a run folder (a path) or the `Run` that `aelab.train` returned. Both write what the verbs
write (RUN/metrics.json and the pictures; the scores CSV and its JSON summary) and return the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aelab.data.records import Dataset
from aelab.errors import UsageError
from aelab.evaluation.detect import Detection, csv_text
from aelab.evaluation.detect import detect as detect_rows
from aelab.evaluation.report import Evaluation, eval_rows, run_dataset
from aelab.evaluation.report import evaluate as evaluate_rows

RunLike = str | Path | Any  # a run folder, or aelab.training.api.Run


def _path(run: RunLike) -> Path:
    if isinstance(run, str | Path):
        return Path(run)
    path = getattr(run, "run_dir", None)
    if isinstance(path, Path):
        return path
    raise UsageError(f"run must be a run folder or what aelab.train returned, not {type(run).__name__}")


def evaluate_run(run: Path, device: torch.device | str, part: str, limit: int | None, nll_samples: int,
                 nll_rows: int = 500, seed: int = 0, plots: bool = True) -> tuple[Evaluation, list[Path]]:
    """Evaluate the run in `run` on its own data; write RUN/metrics.json and (with `plots`) its pictures."""
    from aelab.evaluation.pictures import draw_all
    from aelab.io import atomic_write_json
    from aelab.training import load_run

    loaded = load_run(run, device)
    ds = run_dataset(loaded)
    rows = eval_rows(ds, part, limit)
    torch.manual_seed(seed)
    result, outputs = evaluate_rows(loaded, ds, rows, nll_samples=nll_samples, nll_rows=nll_rows, part=part)
    atomic_write_json(run / "metrics.json", result.to_dict())
    return result, draw_all(loaded, outputs, ds.kind, run) if plots else []


def evaluate(run: RunLike, *, part: str = "test", limit: int | None = None, nll_samples: int = 1000,
             nll_rows: int = 500, seed: int = 0, plots: bool = True, device: str = "cpu") -> Evaluation:
    """Metrics (and for VAEs the ELBO, NLL and posterior diagnostics) of a run on its held-out rows;
    writes RUN/metrics.json and, with `plots`, the pictures (listed in `Evaluation.pictures`)."""
    result, pictures = evaluate_run(_path(run), device, part, limit, nll_samples, nll_rows, seed, plots)
    result.pictures = [str(p) for p in pictures]
    return result


def detect_data(loaded: Any, data: str | None, data_options: dict[str, Any] | None, part: str,
                skip_bad: bool = False) -> tuple[Dataset, str, str, torch.Tensor]:
    """The rows `detect` scores: `data` (default: the run's own, with its options unless others are given)
    loaded, and `part` ("auto": the held-out test rows of the run's own or an embedded set, every row of
    other data) chosen. Returns the data set, its name, the part and the row indices."""
    from aelab.data import SOURCES, load

    own = data is None or data == loaded.info.train.data
    name = loaded.info.train.data if data is None else data
    options = loaded.info.train.data_options if own and not data_options else dict(data_options or {})
    ds = load(name, options, skip_bad)
    if part == "auto":
        part = "test" if own or name in SOURCES else "all"
    return ds, name, part, eval_rows(ds, part, None)


def write_detection(det: Detection, csv_path: Path, force: bool) -> dict[str, Any]:
    """Write the scores CSV at `csv_path`, the per-feature CSV beside it (with `det.features`) and the
    summary as `csv_path` with .json; returns the summary (also kept as `det.summary_record`)."""
    from aelab.evaluation.threshold import feature_csv
    from aelab.io import json_bytes, write_file, write_output

    det.csv = str(csv_path)
    write_output(csv_text(det), csv_path, force=force)
    summary = det.summary() | {"data": det.data, "part": det.part, "csv": det.csv}
    if det.features is not None and det.feature_names is not None:
        features = csv_path.with_name(csv_path.stem + "-features.csv")
        write_output(feature_csv(det.rows, det.features, det.feature_names), features, force=force)
        summary["per_feature_csv"] = str(features)
    write_file(csv_path.with_suffix(".json"), json_bytes(summary), force=force)
    det.summary_record = summary
    return summary


def detect_run(run: Path, data: str | None = None, data_options: dict[str, Any] | None = None, part: str = "auto",
               score: str = "auto", samples: int = 10, normal_class: int | None = None, skip_bad: bool = False,
               out: Path | None = None, device: torch.device | str = "cpu", seed: int = 0,
               **extra: Any) -> Detection:
    """Score rows of `data` (default: the run's own test rows); write the CSV and its JSON summary."""
    from aelab.training import load_run

    loaded = load_run(run, device)
    ds, name, part, rows = detect_data(loaded, data, data_options, part, skip_bad)
    torch.manual_seed(seed)
    det = detect_rows(loaded, ds, rows, score, samples, normal_class, **extra)
    det.data, det.part = name, part
    write_detection(det, out or run / "scores.csv", force=True)
    return det


def detect(run: RunLike, data: str | None = None, *, score: str = "auto", part: str = "auto", samples: int = 10,
           normal_class: int | None = None, out: str | Path | None = None, device: str = "cpu", seed: int = 0,
           data_options: dict[str, Any] | None = None, **options: Any) -> Detection:
    """Anomaly scores of every row (higher = more anomalous), written to RUN/scores.csv (or `out`), with
    AUROC/AUPR where the data have labels."""
    return detect_run(_path(run), data, data_options, part, score, samples, normal_class, False,
                      Path(out) if out is not None else None, device, seed, **options)
