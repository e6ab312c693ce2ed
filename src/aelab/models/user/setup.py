"""Read a user's model once, before training: the input shape it takes, its latent, its loss.

1. **Fit.** The model is traced (meta/fake tensors, no weights read) on a batch of the data's shape.
   When that fails and the samples' element count equals what the first layer takes (1x28x28 into
   Linear(784, ...)), the batches are reshaped and the line says so; otherwise the doctor's reading
   of the mismatch is the error (exit 2).
2. **Latent.** The bottleneck analysis of that trace names the latent layer (or sampled posterior).
3. **Loss.** One real forward of a few rows, with samples captured (trace.capture), is read by
   reading.read; the line it returns is what training announces.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from aelab.errors import UsageError
from aelab.models.user.adapter import Latent, UserModel
from aelab.models.user.reading import Reading, read
from aelab.trace.capture import capture


def _first_layer(net: nn.Module) -> tuple[str, nn.Module] | None:
    """The first Linear or conv registered in the model (the layer its input meets first)."""
    for path, module in net.named_modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            return path, module
    return None


def _doctor_reading(net: nn.Module, shape: tuple[int, ...]) -> str:
    from aelab.doctor.diagnose import diagnose

    try:
        d = diagnose(net, (2, *shape))
    except Exception as exc:  # the doctor could not run: report the plain error
        return f"{type(exc).__name__}: {exc}"
    if not d.findings:
        return d.stopped or "the forward pass fails"
    f = d.findings[0]
    return f"{f.layer} ({f.layer_type}): {f.problem}; got {f.got}, expected {f.expected}"


def fit_shape(net: nn.Module, name: str, data_shape: tuple[int, ...]) -> tuple[tuple[int, ...], Any, str | None]:
    """(the per-sample shape the model takes, the inspection report on it, the reshape line or None)."""
    from aelab.inspection.report import inspect

    report = inspect(net, (2, *data_shape), backward=False)
    if report.trace.error is None:
        return data_shape, report, None
    first = _first_layer(net)
    numel = math.prod(data_shape)
    shown = "x".join(map(str, data_shape))
    if first is not None:
        path, layer = first
        want = layer.in_features if isinstance(layer, nn.Linear) else None
        if want == numel:
            again = inspect(net, (2, want), backward=False)
            if again.trace.error is None:
                line = (f"data: each {shown} sample is reshaped to {want} values, what the first layer "
                        f"{path} ({type(layer).__name__}({layer.in_features}, {layer.out_features})) takes")
                return (want,), again, line
    raise UsageError(f"{name} does not take samples of shape {shown}: {_doctor_reading(net, data_shape)}")


def find_latent(report: Any) -> Latent | None:
    b = report.bottleneck
    if b is None or not b.is_autoencoder:
        return None
    shape = tuple(b.shape[1:])
    if b.latent_source == "sample":
        return Latent(b.layer, "posterior", shape)
    return Latent(b.layer, "module", shape)


def read_user_model(net: nn.Module, source: Mapping[str, Any], probe: torch.Tensor, data_unit: bool,
                    loss: str = "auto", output: str | None = None, beta: float = 1.0) -> UserModel:
    """Read `net` on `probe` (a few rows of the training data, as the model will see them)."""
    name = str(source.get("name") or type(net).__name__)
    data_shape = tuple(probe.shape[1:])
    model_shape, report, reshape_line = fit_shape(net, name, data_shape)
    latent = find_latent(report)
    if latent is not None and latent.source == "module" and latent.layer not in dict(net.named_modules()):
        latent = None  # a function call's output (e.g. a chunk) that no hook can reach
    calls = [c for c in report.trace.calls if c.kind == "sample"]
    was_training = net.training
    net.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), capture(samples=True) as seen:
            out = net(probe.reshape(probe.shape[0], *model_shape))
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"{name} failed on {probe.shape[0]} rows of the data: {type(exc).__name__}: {exc}") from exc
    finally:
        net.train(was_training)
    samples = [(i, c.name, c.type, s.distribution) for i, (c, s) in enumerate(zip(calls, seen.samples))]
    has_loss = callable(getattr(type(net), "loss", None))
    model_view = probe.reshape(probe.shape[0], *model_shape)
    reading: Reading = read(name, out, model_view, samples, has_loss, data_unit, loss, output)
    if reading.posterior == "sampled" and latent is not None and latent.source == "posterior":
        pass  # the latent is the posterior's mean
    elif latent is not None and latent.source == "posterior" and reading.posterior is None:
        latent = None  # a sample with no readable posterior: no deterministic code to show
    notes = [reshape_line] if reshape_line else []
    recon = _reconstruction(out, reading)
    if recon is not None:
        from aelab.evaluation.posterior import range_warnings

        notes += [f"warning: {w}" for w in range_warnings(float(probe.max()), float(recon.min()), float(recon.max()))]
    if latent is not None:
        notes.append(f"latent: {latent.layer} ({'x'.join(map(str, latent.shape))} per sample), found by the "
                     "bottleneck analysis" + (" (the posterior mean)" if latent.source == "posterior" else ""))
    else:
        notes.append("latent: the bottleneck analysis found none this model hands on; latent.png and "
                     "--score latent are left out")
    return UserModel(net, source, reading, data_shape, model_shape, latent, beta, notes)


def _reconstruction(out: Any, reading: Reading) -> torch.Tensor | None:
    from aelab.models.user.reading import fields_of

    value = fields_of(out).get(reading.recon) if reading.recon is not None else None
    return value if isinstance(value, torch.Tensor) else None


def rebuild_user_model(net: nn.Module, config: Mapping[str, Any]) -> UserModel:
    """The UserModel of a stored run (its config_dict), without reading the model again."""
    source = {k: config[k] for k in ("spec", "args", "name") if k in config}
    latent = config.get("latent")
    return UserModel(net, source, Reading.from_dict(config["reading"]), tuple(config["input_shape"]),
                     tuple(config["model_shape"]),
                     Latent(latent["layer"], latent["source"], tuple(latent["shape"])) if latent else None,
                     float(config.get("beta", 1.0)), list(config.get("notes", [])))
