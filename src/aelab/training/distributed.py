"""Data-parallel training under `torchrun`: process group, device per rank, DDP, collective helpers.

`torchrun --nproc-per-node N -m aelab train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; then every
rank joins one process group (NCCL on CUDA, gloo on CPU), uses the GPU of its LOCAL_RANK, and takes
its slice of each global batch. Without those variables the run is a single process and every
helper here is a no-op.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from aelab.errors import UsageError


@dataclass(frozen=True)
class World:
    """Where this process stands: its rank, how many ranks, and the device it trains on."""

    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` is this rank's GPU when CUDA is there, else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def setup(device_name: str) -> World:
    """Join the torchrun process group when launched by torchrun; otherwise a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if size > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cpu":  # ranks on one machine share its cores
            local = int(os.environ.get("LOCAL_WORLD_SIZE", str(size)))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    return World(rank, size, local_rank, device)


def teardown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, world: World) -> nn.Module:
    """DistributedDataParallel around `module` in a distributed run (it broadcasts rank 0's weights)."""
    if not world.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def all_sum(values: Tensor, world: World) -> Tensor:
    """Element-wise sum over ranks (identity in a single process)."""
    if world.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of every parameter and buffer's bytes, in state_dict order."""
    h = hashlib.sha256()
    for key, value in module.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def gather_digests(module: nn.Module, world: World) -> list[str]:
    """Every rank's `weights_digest`, rank order; one entry in a single process."""
    mine = weights_digest(module)
    if not world.distributed:
        return [mine]
    raw = torch.tensor(list(bytes.fromhex(mine)), dtype=torch.uint8, device=world.device)
    parts = [torch.empty_like(raw) for _ in range(world.size)]
    dist.all_gather(parts, raw)
    return [bytes(p.cpu().tolist()).hex() for p in parts]


def gather_text(text: str, world: World) -> list[str]:
    """Every rank's string (e.g. its RNG state as JSON), rank order; no pickle on the wire."""
    if not world.distributed:
        return [text]
    data = torch.tensor(list(text.encode()), dtype=torch.uint8, device=world.device)
    length = torch.tensor([len(data)], device=world.device)
    lengths = [torch.empty_like(length) for _ in range(world.size)]
    dist.all_gather(lengths, length)
    longest = int(max(int(n) for n in lengths))
    padded = torch.zeros(longest, dtype=torch.uint8, device=world.device)
    padded[: len(data)] = data
    parts = [torch.empty_like(padded) for _ in range(world.size)]
    dist.all_gather(parts, padded)
    return [bytes(p[: int(n)].cpu().tolist()).decode() for p, n in zip(parts, lengths)]
