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
from aelab.training.distributed import World, all_sum


class Diverged(AelabError):
    """The loss became NaN or inf: the run stops, keeping its last good checkpoint (exit 2)."""

    exit_code = 2


class LossModule(nn.Module):
    """`model.loss` as a forward pass, so DDP's gradient hooks and `torch.compile` see it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model.loss(x)  # type: ignore[operator]
        return out.total, out.reconstruction, out.kl


@dataclass
class EpochStats:
    """Sample-weighted mean losses of one pass, the rows seen (all ranks) and the time it took."""

    loss: float
    reconstruction: float
    kl: float
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


def _stats(sums: list[float], seconds: float) -> EpochStats:
    n = max(sums[3], 1.0)
    return EpochStats(sums[0] / n, sums[1] / n, sums[2] / n, int(sums[3]), seconds)


class _Sums:
    """Sample-weighted sums of (total, reconstruction, kl) and the row count, over all ranks when asked.

    On the CPU the scalars are read each step (`.item()` costs nothing there and is the cheapest
    bookkeeping); on a GPU they stay on the device, so reading them happens only at `totals()`.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.on_cpu = world.device.type == "cpu"
        self.floats = [0.0, 0.0, 0.0]
        self.device_sums = torch.zeros(3, dtype=torch.float64, device=world.device)
        self.rows = 0

    def add(self, total: Tensor, recon: Tensor, kl: Tensor, n: int) -> None:
        self.rows += n
        if self.on_cpu:
            self.floats[0] += total.item() * n
            self.floats[1] += recon.item() * n
            self.floats[2] += kl.item() * n
        else:
            self.device_sums += torch.stack((total.detach(), recon.detach(), kl.detach())).to(torch.float64) * n

    def totals(self) -> list[float]:
        """[total, reconstruction, kl, rows] summed over every rank (a collective when distributed)."""
        if self.on_cpu and not self.world.distributed:
            return [*self.floats, float(self.rows)]
        sums = torch.tensor([*self.floats, float(self.rows)], dtype=torch.float64, device=self.world.device)
        if not self.on_cpu:
            sums[:3] = self.device_sums
        out: list[float] = all_sum(sums, self.world).tolist()
        return out


ProgressFn = Callable[[int, float, int], None]  # (batches done, running mean loss, samples so far)


def train_epoch(net: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[Tensor], n_batches: int,
                lr_for: Callable[[int], float], first_step: int, world: World, amp: str = "auto",
                grad_clip: float = 0.0, check_every: int = 1, on_progress: ProgressFn | None = None,
                epoch: int = 0) -> EpochStats:
    """Train over `batches` once. Every `check_every` batches the running loss is checked (over all
    ranks together, so they stop together) and reported; a NaN or inf raises `Diverged`."""
    net.train()
    sums = _Sums(world)
    params = [p for p in net.parameters() if p.requires_grad]
    cast = autocast(world.device, amp)  # built once: re-entered every step
    start = time.perf_counter()
    for i, xb in enumerate(batches):
        lr = lr_for(first_step + i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with cast:
            total, recon, kl = net(xb)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        sums.add(total, recon, kl, xb.shape[0])
        if (i + 1) % check_every == 0 or i + 1 == n_batches:
            seen = sums.totals()
            running = seen[0] / max(seen[3], 1.0)
            if not math.isfinite(running):
                raise Diverged(f"the training loss became {running} in epoch {epoch}, batch {i + 1}")
            if on_progress is not None:
                on_progress(i + 1, running, int(seen[3]))
    return _stats(sums.totals(), time.perf_counter() - start)


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
            total, recon, kl = net(xb)
        sums.add(total, recon, kl, xb.shape[0])
    return _stats(sums.totals(), time.perf_counter() - start)
