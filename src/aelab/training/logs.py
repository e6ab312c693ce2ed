"""Training logs people already read: RUN/history.csv (always) and TensorBoard event files (--log tensorboard).

Both carry every number of an epoch's history record: the loss and each term the kind returns (train
and validation), the learning rate, samples/s, and for models with a posterior the KL and active units.
`history.csv` is rewritten whole after each epoch (atomically), so after a resume it still holds the
run's every epoch; TensorBoard gets each epoch once, as it ends (`tensorboard --logdir RUN/tensorboard`).
"""

from __future__ import annotations

import csv
import io
import numbers
from pathlib import Path
from typing import Any

from aelab.errors import UsageError
from aelab.io import atomic_write

HISTORY_CSV = "history.csv"
TENSORBOARD = "tensorboard"


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in record.items()
            if k != "epoch" and isinstance(v, numbers.Real) and not isinstance(v, bool)}


def write_history_csv(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """One row per epoch, one column per number any epoch recorded (empty where an epoch has none)."""
    columns: list[str] = ["epoch"]
    for record in history:
        columns += [k for k in _scalars(record) if k not in columns]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for record in history:
        writer.writerow([record.get(k, "") for k in columns])
    atomic_write(run_dir / HISTORY_CSV, buf.getvalue().encode())


class TensorBoardLog:
    """A torch.utils.tensorboard SummaryWriter on RUN/tensorboard; scalars grouped train/ and val/."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # tensorboard is an optional extra
            raise UsageError("--log tensorboard needs the tensorboard package: pip install 'aelab[tensorboard]' "
                             "(or pip install tensorboard)") from exc
        self.writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD))

    def epoch(self, record: dict[str, Any]) -> None:
        step = int(record["epoch"])
        for key, value in _scalars(record).items():
            tag = f"val/{key[4:]}" if key.startswith("val_") else f"train/{key}"
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
