"""Training: the config, the run (resume, checkpoints, early stopping), torchrun/DDP, the run folder."""

from __future__ import annotations

from aelab.training.config import TrainConfig
from aelab.training.loop import Diverged
from aelab.training.run import RunResult, train
from aelab.training.rundir import LoadedRun, RunInfo, load_run, read_info

__all__ = ["Diverged", "LoadedRun", "RunInfo", "RunResult", "TrainConfig", "load_run", "read_info", "train"]
