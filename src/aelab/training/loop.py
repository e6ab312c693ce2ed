"""One epoch of training and one pass of validation, over batches already on the device."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aelab.errors import AelabError
from aelab.models.base import KLControl
from aelab.training.distributed import World, all_sum


class Diverged(AelabError):
    """The loss became NaN or inf: the run stops, keeping its last good checkpoint (exit 2)."""

    exit_code = 2


class LossModule(nn.Module):
    """`model.loss` as a forward pass, so DDP's gradient hooks and `torch.compile` see it.

    `control` (KL warm-up weight, free bits) is set by the epoch loop; kinds without a KL ignore it."""

    def __init__(self, model: nn.Module, control: KLControl | None = None) -> None:
        super().__init__()
        self.model = model
        self.control = control

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        out = self.model.loss(x, control=self.control)  # type: ignore[operator]
        return out.total, out.terms


@dataclass
class EpochStats:
    """Sample-weighted mean losses of one pass (the total and every named term), the rows seen
    (all ranks) and the time it took."""

    loss: float
    terms: dict[str, float]
    samples: int
    seconds: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CUDA under `auto`, anywhere under `bf16`; nothing under `off` or on the CPU by default."""
    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _stats(sums: _Sums, seconds: float) -> EpochStats:
    totals = sums.totals()
    n = max(totals[-1], 1.0)
    terms = {name: totals[i + 1] / n for i, name in enumerate(sums.names)}
    return EpochStats(totals[0] / n, terms, int(totals[-1]), seconds)


class _Sums:
    """Sample-weighted sums of the total and of each named term, and the row count, over all ranks when asked.

    The term names are the first batch's (a kind returns the same terms every step). On the CPU the
    scalars are read each step (`.item()` costs nothing there and is the cheapest bookkeeping); on a
    GPU they stay on the device, so reading them happens only at `totals()`.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.on_cpu = world.device.type == "cpu"
        self.names: list[str] = []
        self.floats: list[float] = []
        self.device_sums: Tensor | None = None
        self.rows = 0

    def add(self, total: Tensor, terms: dict[str, Tensor], n: int) -> None:
        if not self.names and not self.floats:
            self.names = list(terms)
            self.floats = [0.0] * (1 + len(self.names))
        self.rows += n
        values = [total, *(terms[k] for k in self.names)]
        if self.on_cpu:
            for i, v in enumerate(values):
                self.floats[i] += v.item() * n
        else:
            step = torch.stack([v.detach().float() for v in values]).to(torch.float64) * n
            self.device_sums = step if self.device_sums is None else self.device_sums + step

    def totals(self) -> list[float]:
        """[total, *terms, rows] summed over every rank (a collective when distributed)."""
        floats = self.floats or [0.0]
        if self.on_cpu and not self.world.distributed:
            return [*floats, float(self.rows)]
        sums = torch.tensor([*floats, float(self.rows)], dtype=torch.float64, device=self.world.device)
        if not self.on_cpu and self.device_sums is not None:
            sums[:-1] = self.device_sums
        out: list[float] = all_sum(sums, self.world).tolist()
        return out


ProgressFn = Callable[[int, float, int], None]  # (batches done, running mean loss, samples so far)


def train_epoch(net: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[Tensor], n_batches: int,
                lr_for: Callable[[int], float], first_step: int, world: World, amp: str = "auto",
                grad_clip: float = 0.0, check_every: int = 1, on_progress: ProgressFn | None = None,
                epoch: int = 0, before_step: Callable[[int], None] | None = None) -> EpochStats:
    """Train over `batches` once. Every `check_every` batches the running loss is checked (over all
    ranks together, so they stop together) and reported; a NaN or inf raises `Diverged`.
    `before_step(step)` runs before each step (the KL warm-up sets its weight there)."""
    net.train()
    sums = _Sums(world)
    params = [p for p in net.parameters() if p.requires_grad]
    cast = autocast(world.device, amp)  # built once: re-entered every step
    start = time.perf_counter()
    for i, xb in enumerate(batches):
        lr = lr_for(first_step + i)
        if before_step is not None:
            before_step(first_step + i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with cast:
            total, terms = net(xb)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        sums.add(total, terms, xb.shape[0])
        if (i + 1) % check_every == 0 or i + 1 == n_batches:
            seen = sums.totals()
            running = seen[0] / max(seen[-1], 1.0)
            if not math.isfinite(running):
                raise Diverged(f"the training loss became {running} in epoch {epoch}, batch {i + 1}")
            if on_progress is not None:
                on_progress(i + 1, running, int(seen[-1]))
    return _stats(sums, time.perf_counter() - start)


@torch.no_grad()
def validate(net: nn.Module, batches: Iterable[Tensor], world: World, amp: str = "auto") -> EpochStats:
    """Mean losses over every rank's validation rows, in eval mode (VAEs still sample z: the
    validation loss estimates the same -ELBO the training loss does)."""
    net.eval()
    sums = _Sums(world)
    cast = autocast(world.device, amp)
    start = time.perf_counter()
    for xb in batches:
        if xb.shape[0] == 0:
            continue
        with cast:
            total, terms = net(xb)
        sums.add(total, terms, xb.shape[0])
    return _stats(sums, time.perf_counter() - start)
