"""A user's own nn.Module behind the interface the trainer and evaluation use (encode/forward/loss).

`UserModel` never changes the user's class: it reshapes batches to what the model takes, runs its
forward inside `trace.capture` (to see the posterior it samples and the latent layer's output), and
computes the loss that `reading.Reading` says. Its state_dict is the user's own (same keys), so the
run's weights load straight into the user's class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aelab.errors import UsageError
from aelab.models.base import AEOutput, KLControl, LossOutput, kl_objective
from aelab.models.kind import Capability
from aelab.models.user.reading import Reading, fields_of
from aelab.trace.capture import Captured, capture


@dataclass
class Latent:
    """Where the latent of a user model is: a trace call name, and how to read it on a real batch."""

    layer: str  # "encoder.2", "encoder.rsample"
    source: str  # "module" (a submodule's output) or "posterior" (the mean of the sampled posterior)
    shape: tuple[int, ...]  # per sample

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "source": self.source, "shape": list(self.shape)}


@dataclass
class _Pass:
    """One forward of the user's model, read."""

    out: Any
    recon: Tensor | None
    mean: Tensor | None
    log_var: Tensor | None
    q: Any
    kl: Tensor | None
    latent: Tensor | None


def _first_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, tuple | list):
        return next((v for v in value if isinstance(v, Tensor)), None)
    return None


def _normal_parts(q: Any) -> tuple[Tensor, Tensor] | None:
    """(mean, log_var) of a Normal (or Independent Normal) q."""
    base = q.base_dist if isinstance(q, torch.distributions.Independent) else q
    if isinstance(base, torch.distributions.Normal):
        return base.loc, 2.0 * torch.log(base.scale)
    return None


class UserModel(nn.Module):
    """A user's model trained, evaluated and scored by aelab, read once at the start (see setup.py)."""

    kind = "user"

    def __init__(self, net: nn.Module, source: Mapping[str, Any], reading: Reading, data_shape: tuple[int, ...],
                 model_shape: tuple[int, ...], latent: Latent | None, beta: float = 1.0,
                 notes: list[str] | None = None) -> None:
        super().__init__()
        self.net = net
        self.source = dict(source)
        self.reading = reading
        self.input_shape = tuple(data_shape)
        self.model_shape = tuple(model_shape)
        self.latent = latent
        self.beta = float(beta)
        self.notes = list(notes or [])
        caps = set()
        if reading.posterior in ("mu_logvar", "q", "sampled"):
            caps.add(Capability.POSTERIOR)
            if latent is not None and callable(getattr(net, "decoder", None)) and latent.layer.startswith("encoder"):
                caps.add(Capability.PRIOR_SAMPLE)
        self.capabilities = frozenset(caps)

    # --- what the trainer, evaluation and checkpoints read --------------------------------------
    def has(self, capability: Capability) -> bool:
        return capability in self.capabilities

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return self.latent.shape if self.latent is not None else ()

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # the user's own keys, no "net." prefix
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        return self.net.load_state_dict(state_dict, strict=strict, assign=assign)

    def config_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.source, "input_shape": list(self.input_shape),
                "model_shape": list(self.model_shape), "beta": self.beta, "reading": self.reading.to_dict(),
                "latent": self.latent.to_dict() if self.latent is not None else None, "notes": self.notes}

    def describe(self) -> list[str]:
        n = sum(p.numel() for p in self.net.parameters())
        shape = "x".join(map(str, self.input_shape))
        latent = (f"latent {self.latent.layer} {'x'.join(map(str, self.latent.shape))}" if self.latent
                  else "no latent found")
        return [f"{self.source.get('name', type(self.net).__name__)}: input {shape} -> {latent}; {n:,} parameters",
                *self.notes, f"loss: {self.reading.line}"]

    def check_target(self, x: Tensor) -> None:
        """The data range was checked against the chosen error once, at the start."""

    def extra_metrics(self, batches: Any) -> dict[str, float]:
        return {}

    # --- running the user's model ------------------------------------------------------------
    def _run(self, x: Tensor) -> _Pass:
        xm = x.reshape(x.shape[0], *self.model_shape)
        r = self.reading
        module_latent = self.latent is not None and self.latent.source == "module"
        watch = (self.latent.layer,) if module_latent and self.latent is not None else ()
        with capture(self.net, watch, samples=r.posterior == "sampled") as seen:
            out = self.net(xm)
        return self._read(out, x, seen)

    def _read(self, out: Any, x: Tensor, seen: Captured) -> _Pass:
        r = self.reading
        fields = fields_of(out)
        recon = fields[r.recon].reshape(x.shape) if r.recon is not None else None
        mean = log_var = q = kl = None
        if r.posterior == "mu_logvar":
            mean, log_var = fields[r.fields["mu"]], fields[r.fields["logvar"]]
        elif r.posterior == "q":
            q = fields[r.fields["q"]]
        elif r.posterior == "kl":
            kl = fields[r.fields["kl"]]
        elif r.posterior == "sampled":
            if r.sample_index is None or r.sample_index >= len(seen.samples):
                raise UsageError(f"the posterior at {r.sample_at} was not sampled in this forward pass")
            q = seen.samples[r.sample_index].distribution
        if q is not None:
            parts = _normal_parts(q)
            if parts is not None:
                mean, log_var = parts
        latent: Tensor | None = None
        if self.latent is not None and self.latent.source == "module":
            latent = _first_tensor(seen.outputs.get(self.latent.layer))
        elif self.latent is not None and mean is not None:
            latent = mean
        return _Pass(out, recon, mean, log_var, q, kl, latent)

    def forward(self, x: Tensor) -> AEOutput:
        p = self._run(x)
        if p.recon is None:
            raise UsageError("this model's forward returns no reconstruction aelab can read")
        latent = p.latent if p.latent is not None else torch.zeros(x.shape[0], 0, device=x.device)
        return AEOutput(reconstruction=p.recon, latent=latent, mean=p.mean, log_var=p.log_var)

    def encode(self, x: Tensor) -> Tensor:
        return self(x).latent

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        p = self._run(x)
        if p.mean is None or p.log_var is None:
            raise UsageError("this model has no Gaussian posterior aelab can read")
        return p.mean, p.log_var

    def sample(self, n: int) -> Tensor:
        ref = next(self.net.parameters())
        z = torch.randn(n, *self.latent_shape, device=ref.device, dtype=ref.dtype)
        out = _first_tensor(self.net.decoder(z))  # type: ignore[operator]
        assert out is not None
        return out.reshape(n, *self.input_shape)

    # --- the loss ----------------------------------------------------------------------------
    def error(self, x: Tensor, recon: Tensor) -> Tensor:
        """The per-element reconstruction error: squared error, or BCE on the output probabilities."""
        if self.reading.error == "bce":
            return F.binary_cross_entropy(recon.float(), x.float(), reduction="none")
        return (recon.float() - x.float()) ** 2

    def loss(self, x: Tensor, *, check_range: bool = True, control: KLControl | None = None) -> LossOutput:
        r = self.reading
        if r.objective == "model":
            return self._model_loss(x)
        p = self._run(x)
        assert p.recon is not None
        err = self.error(x, p.recon)
        if r.objective == "recon":
            rec = err.mean()
            return LossOutput(rec, {"reconstruction": rec})
        rec = err.flatten(1).sum(1).mean()
        if p.kl is not None:
            kl = p.kl.mean()
            weight = (control or KLControl()).weight
            return LossOutput(rec + self.beta * weight * kl, {"reconstruction": rec, "kl": kl})
        elements = self._kl_elements(p)
        kl = elements.flatten(1).sum(1).mean()
        return LossOutput(rec + kl_objective(elements, self.beta, control), {"reconstruction": rec, "kl": kl})

    def _kl_elements(self, p: _Pass) -> Tensor:
        if p.mean is not None and p.log_var is not None:
            return 0.5 * (p.mean.pow(2) + p.log_var.exp() - 1.0 - p.log_var)
        q = p.q
        prior = torch.distributions.Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean))
        try:
            kl: Tensor = torch.distributions.kl_divergence(q, prior)
        except NotImplementedError as exc:
            raise UsageError(f"torch has no KL({type(q).__name__} || Normal); use --loss recon") from exc
        return kl

    def _model_loss(self, x: Tensor) -> LossOutput:
        xm = x.reshape(x.shape[0], *self.model_shape)
        if self.reading.recon is None:
            value = self.net.loss(xm)  # type: ignore[operator]
        else:
            value = fields_of(self.net(xm))[self.reading.fields["loss"]]
        if isinstance(value, Tensor):
            return LossOutput(value, {})
        fields = fields_of(value)
        scalars = {k: v for k, v in fields.items() if isinstance(v, Tensor) and v.dim() == 0}
        key = next((k for k in ("loss", "total", "total_loss") if k in scalars), None)
        if key is None:
            raise UsageError(f"{type(self.net).__name__}.loss(x) returned {', '.join(fields)}: no scalar "
                             "'loss' or 'total' to minimise")
        return LossOutput(scalars[key], {k: v for k, v in scalars.items() if k != key} or {"loss": scalars[key]})
