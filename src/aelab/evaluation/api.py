"""`aelab.evaluate` and `aelab.detect`: judge a trained run folder (the Python form of the verbs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aelab.data import SOURCES, load
from aelab.evaluation.detect import Detection
from aelab.evaluation.detect import detect as _detect
from aelab.evaluation.report import Evaluation, eval_rows, run_dataset
from aelab.evaluation.report import evaluate as _evaluate
from aelab.training.rundir import load_run


def evaluate(run_dir: str | Path, *, part: str = "test", limit: int | None = None, nll_samples: int = 1000,
             nll_rows: int = 500, device: str = "cpu", seed: int = 0) -> Evaluation:
    """The metrics of the run in `run_dir` on its own data's `part` rows ('test', 'train' or 'all').

    Reconstruction MSE, PSNR and BCE (data in [0, 1]); for VAEs the ELBO and the importance-sampled NLL
    (K = `nll_samples`) on the first `nll_rows` rows; per class where the data have labels. The same
    numbers as `aelab evaluate`, which also writes them to RUN/metrics.json and draws the pictures.
    """
    run = load_run(Path(run_dir), device)
    ds = run_dataset(run)
    rows = eval_rows(ds, part, limit)
    torch.manual_seed(seed)
    result, _ = _evaluate(run, ds, rows, nll_samples=nll_samples, nll_rows=nll_rows, part=part)
    return result


def detect(run_dir: str | Path, data: str | None = None, *, data_options: dict[str, Any] | None = None,
           part: str = "auto", score: str = "auto", samples: int = 10, normal_class: int | None = None,
           skip_bad: bool = False, device: str = "cpu", seed: int = 0) -> Detection:
    """Anomaly scores per row from the run in `run_dir` (higher = more anomalous); AUROC/AUPR with labels.

    `data` is a file, a folder or an embedded set (default: the run's own data); `part='auto'` scores the
    held-out test rows of the run's own data set and every row of other data. `score`: 'recon'
    (reconstruction MSE), 'elbo' (negative ELBO, VAEs) or 'auto'. The same scores as `aelab detect`.
    """
    run = load_run(Path(run_dir), device)
    own = data is None or data == run.info.train.data
    name = run.info.train.data if data is None else data
    options = run.info.train.data_options if own and data_options is None else dict(data_options or {})
    ds = load(name, options, skip_bad)
    if part == "auto":
        part = "test" if own or name in SOURCES else "all"
    rows = eval_rows(ds, part, None)
    torch.manual_seed(seed)
    return _detect(run, ds, rows, score, samples, normal_class)
