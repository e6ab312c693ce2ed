"""Training a user's own model: build it from its spec (or take the given instance), read it once, rebuild it later.

A run of a user model stores, in config.json, the spec (`FILE.py:Name`, the file's absolute path)
and the constructor arguments beside the weights, and how the model was read (input reshape, latent,
loss): evaluate, detect and --resume rebuild the model from those, never from a pickle.
"""

from __future__ import annotations

import inspect as pyinspect
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aelab.data.records import Dataset, Normalizer
from aelab.errors import UsageError
from aelab.models.user import UserModel, read_user_model, rebuild_user_model
from aelab.training.config import TrainConfig

PROBE_ROWS = 8


def absolute_spec(spec: str) -> str:
    """`FILE.py:Name` with the file made absolute (a run must rebuild from any working directory)."""
    source, _, name = spec.rpartition(":")
    if source.endswith(".py") or "/" in source:
        source = str(Path(source).expanduser().resolve())
    return f"{source}:{name}"


def spec_of(net: nn.Module) -> str:
    """`FILE.py:Name` of an instance's class, for a model passed to aelab.train as an object."""
    cls = type(net)
    try:
        path = pyinspect.getsourcefile(cls)
    except TypeError:
        path = None
    if path is None or "<" in cls.__qualname__:
        raise UsageError(f"{cls.__qualname__} is not defined at the top level of a file, so a run cannot rebuild "
                         "it; define the class in a .py file")
    return f"{Path(path).resolve()}:{cls.__qualname__}"


def construct(spec: str, args: dict[str, Any]) -> nn.Module:
    from aelab.cli.load import build_model, parse_model_spec

    return build_model(parse_model_spec(spec), dict(args), device=None)


def prepare_user(config: TrainConfig, ds: Dataset, train_rows: torch.Tensor, normalizer: Normalizer,
                 net: nn.Module | None = None) -> UserModel:
    """The user's model (built from the config's spec when no instance is given), read on a few training rows."""
    assert config.model is not None
    if net is None:
        net = construct(config.model, config.model_args)
    probe = normalizer.apply(ds.x[train_rows[:PROBE_ROWS]])
    source = {"spec": config.model, "args": dict(config.model_args), "name": config.model.rpartition(":")[2]}
    return read_user_model(net, source, probe, bool(ds.unit_interval and normalizer.identity), config.loss,
                           config.output, config.beta)


def rebuild_user(model_config: dict[str, Any]) -> UserModel:
    """A stored run's user model, freshly constructed from its spec and arguments."""
    return rebuild_user_model(construct(model_config["spec"], model_config.get("args", {})), model_config)
