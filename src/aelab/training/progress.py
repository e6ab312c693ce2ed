"""What a run shows while it trains: a rich progress bar over all epochs and one line per epoch."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class TrainProgress:
    """A live bar (loss, samples/s, ETA) on a terminal; plain epoch lines elsewhere; nothing when quiet."""

    def __init__(self, total_epochs: int, batches_per_epoch: int, first_epoch: int, quiet: bool = False,
                 console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.batches = batches_per_epoch
        self.live = not quiet and self.console.is_terminal
        self._progress: Progress | None = None
        self._task = None
        self._epoch = first_epoch
        self._epoch_start = time.perf_counter()
        if self.live:
            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]} samples/s"), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.console, transient=True)
            done = (first_epoch - 1) * batches_per_epoch
            self._task = self._progress.add_task(
                "train", total=total_epochs * batches_per_epoch, completed=done,
                epoch=first_epoch, epochs=total_epochs, loss="-", rate="-")

    def __enter__(self) -> TrainProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self._epoch_start = time.perf_counter()

    def update(self, batches_done: int, loss: float, samples: int) -> None:
        if self._progress is None or self._task is None:
            return
        elapsed = time.perf_counter() - self._epoch_start
        rate = f"{samples / elapsed:,.0f}" if elapsed > 0 else "-"
        self._progress.update(self._task, completed=(self._epoch - 1) * self.batches + batches_done,
                              epoch=self._epoch, loss=f"{loss:.4g}", rate=rate)

    def line(self, text: str) -> None:
        """A line that stays (above the bar on a terminal)."""
        if not self.quiet:
            self.console.print(text, highlight=False, markup=False)
