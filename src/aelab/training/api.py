"""`aelab.train`: train a run folder from a config, or resume it (the Python form of `aelab train`)."""

from __future__ import annotations

from pathlib import Path

from aelab.training.config import TrainConfig
from aelab.training.run import RunResult
from aelab.training.run import train as _train


def train(run_dir: str | Path, config: TrainConfig | None = None, *, epochs: int | None = None,
          quiet: bool = False) -> RunResult:
    """Train a new run in `run_dir` from `config`, or resume the run there when `config` is None.

    Checkpoints, `config.json` and the history are written into `run_dir` exactly as `aelab train`
    writes them, so `aelab evaluate RUN_DIR` (or `evaluate(run_dir)`) reads the result. `epochs`
    changes the number of epochs of a resumed run. Bad input raises `aelab.UsageError`.
    """
    return _train(Path(run_dir), config, epochs=epochs, quiet=quiet)
