"""The fast paths that find a call's tensors (`shallow_tensors`, `State.infos` on `(args, kwargs)`) give what the
general walk of `flatten_tensors` gives, in its order, on random nestings of tensors, atoms, tuples, lists,
dicts and objects. Truth: the general walk, entered below its fast path."""

from __future__ import annotations

import random
from typing import Any

import torch

from aelab.trace.state import State
from aelab.trace.tensors import flatten_tensors

POOL = [torch.empty(i + 1, device="meta") for i in range(4)]


class Holder:
    def __init__(self, t: torch.Tensor) -> None:
        self.t = t


def _random(rng: random.Random, depth: int) -> Any:
    kind = rng.choice(["tensor", "tensor", "atom", "tuple", "list", "dict", "size", "object"] if depth < 3
                      else ["tensor", "atom"])
    if kind == "tensor":
        return rng.choice(POOL)
    if kind == "atom":
        return rng.choice([None, 1, 2.5, True, "s", torch.float32])
    if kind == "size":
        return torch.Size([2, 3])
    if kind == "object":
        return Holder(rng.choice(POOL))
    items = [_random(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == "dict":
        return {f"k{i}": v for i, v in enumerate(items)}
    return tuple(items) if kind == "tuple" else items


def test_fast_paths_equal_the_general_walk() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        args = tuple(_random(rng, 1) for _ in range(rng.randrange(5)))
        kwargs = {f"k{i}": _random(rng, 1) for i in range(rng.randrange(3))}
        truth = flatten_tensors((args, kwargs), 0, set())  # `_seen` given: the general walk, no fast path
        assert _ids(flatten_tensors((args, kwargs))) == _ids(truth)
        assert _ids(flatten_tensors(args)) == _ids(flatten_tensors(args, 0, set()))
        assert _ids(flatten_tensors(kwargs)) == _ids(flatten_tensors(kwargs, 0, set()))
        state = State({}, set())
        assert [i.tid for i in state.infos((args, kwargs))] == [state.info(t).tid for t in truth]


def _ids(tensors: list[torch.Tensor]) -> list[int]:
    return [id(t) for t in tensors]
