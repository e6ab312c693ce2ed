"""`walk` lists what torch's `named_modules` / `named_parameters` / `named_buffers` list, in their order, with
and without repeats: tied weights, a module used twice, None entries, buffers."""

from __future__ import annotations

import torch
from torch import nn

from aelab.trace.walk import walk


def _tangled() -> nn.Module:
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Embedding(10, 4), shared, nn.BatchNorm1d(4), nn.Sequential(shared, nn.Linear(4, 10)))
    model[3][1].weight = model[0].weight  # tied, as a language model's head
    model.register_buffer("scale", torch.ones(1))
    model.register_parameter("nothing", None)
    model[2].register_buffer("nothing", None)
    return model


def test_walk_equals_torchs_named_members() -> None:
    model = _tangled()
    parts = walk(model)
    for dup in (False, True):
        modules = parts.unique_modules if dup else parts.modules
        params = parts.unique_params if dup else parts.params
        buffers = parts.unique_buffers if dup else parts.buffers
        assert [(n, id(m)) for n, m in modules] == [(n, id(m)) for n, m in model.named_modules(remove_duplicate=dup)]
        assert [(n, id(p)) for n, p in params] == [(n, id(p)) for n, p in model.named_parameters(remove_duplicate=dup)]
        assert [(n, id(b)) for n, b in buffers] == [(n, id(b)) for n, b in model.named_buffers(remove_duplicate=dup)]
    assert len(parts.params) > len(parts.unique_params)  # the case is one with repeats
