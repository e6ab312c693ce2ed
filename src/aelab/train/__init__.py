"""Training: the config, the run (resume, checkpoints, early stopping), torchrun/DDP, the run folder."""

from __future__ import annotations

from aelab.train.config import TrainConfig
from aelab.train.loop import Diverged
from aelab.train.run import RunResult, train
from aelab.train.rundir import LoadedRun, RunInfo, load_run, read_info

__all__ = ["Diverged", "LoadedRun", "RunInfo", "RunResult", "TrainConfig", "load_run", "read_info", "train"]
