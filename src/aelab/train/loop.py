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
from aelab.train.distributed import World, all_sum


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


def _stats(sums: Tensor, seconds: float) -> EpochStats:
    n = float(sums[3])
    mean = (sums[:3] / max(n, 1.0)).tolist()
    return EpochStats(mean[0], mean[1], mean[2], int(n), seconds)


ProgressFn = Callable[[int, float, int], None]  # (batches done, running mean loss, samples so far)


def train_epoch(net: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[Tensor], n_batches: int,
                lr_for: Callable[[int], float], first_step: int, world: World, amp: str = "auto",
                grad_clip: float = 0.0, check_every: int = 1, on_progress: ProgressFn | None = None,
                epoch: int = 0) -> EpochStats:
    """Train over `batches` once. Every `check_every` batches the running loss is checked (over all
    ranks together, so they stop together) and reported; a NaN or inf raises `Diverged`."""
    net.train()
    sums = torch.zeros(4, dtype=torch.float64, device=world.device)  # total, reconstruction, kl, rows
    params = [p for p in net.parameters() if p.requires_grad]
    start = time.perf_counter()
    for i, xb in enumerate(batches):
        lr = lr_for(first_step + i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast(world.device, amp):
            total, recon, kl = net(xb)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        n = xb.shape[0]
        sums += torch.stack([total.detach() * n, recon.detach() * n, kl.detach() * n,
                             torch.tensor(float(n), device=sums.device)]).to(sums.dtype)
        if (i + 1) % check_every == 0 or i + 1 == n_batches:
            seen = all_sum(sums, world)
            running = float(seen[0] / seen[3])
            if not math.isfinite(running):
                raise Diverged(f"the training loss became {running} in epoch {epoch}, batch {i + 1}")
            if on_progress is not None:
                on_progress(i + 1, running, int(seen[3]))
    return _stats(all_sum(sums, world), time.perf_counter() - start)


@torch.no_grad()
def validate(net: nn.Module, batches: Iterable[Tensor], world: World, amp: str = "auto") -> EpochStats:
    """Mean losses over every rank's validation rows, in eval mode (VAEs still sample z: the
    validation loss estimates the same -ELBO the training loss does)."""
    net.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=world.device)
    start = time.perf_counter()
    for xb in batches:
        if xb.shape[0] == 0:
            continue
        with autocast(world.device, amp):
            total, recon, kl = net(xb)
        n = xb.shape[0]
        sums += torch.stack([total * n, recon * n, kl * n, torch.tensor(float(n), device=sums.device)]).to(sums.dtype)
    return _stats(all_sum(sums, world), time.perf_counter() - start)
