"""What a user's model returns, and the loss aelab trains it with: found once, stated in one line.

The rules, first match wins (docs/train.md, "Your own model"):
1. a `loss(x)` method on the model: aelab optimises what it returns (a tensor, or a dict/record
   with a `loss`/`total` field; its other scalar fields are logged as terms);
2. what `forward` returns, read by field names (dict, namedtuple, dataclass) or by position:
   `recon`, `(recon, mu, logvar)`, `(recon, kl)`, `(recon, q)` with q a torch Distribution;
3. only a reconstruction, but the trace shows an `rsample` of a Normal inside the model (seed 003):
   the ELBO with KL(q || N(0, I)) added.
The reconstruction error is BCE when the data and the outputs lie in [0, 1], MSE otherwise;
`--loss mse|bce|recon|elbo|model` (comma-separated) overrides. What is ambiguous is a UsageError
naming both readings and the flag that picks one. This module reads a probe output; it runs nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from aelab.errors import UsageError

RECON_NAMES = ("recon", "reconstruction", "x_hat", "xhat", "x_recon", "recon_x", "x_rec", "decoded", "output")
MU_NAMES = ("mu", "mean", "z_mean", "loc", "z_mu")
LOGVAR_NAMES = ("logvar", "log_var", "z_log_var", "log_variance", "z_logvar")
KL_NAMES = ("kl", "kld", "kl_loss", "kl_divergence", "kl_div")
LOSS_NAMES = ("loss", "total", "total_loss")
Q_NAMES = ("q", "posterior", "dist", "qz", "q_z")
LOSS_TOKENS = ("auto", "mse", "bce", "recon", "elbo", "model")


@dataclass
class Reading:
    """How to turn one forward pass into the loss; JSON-serialisable, stored in the run's config."""

    objective: str  # "model" (the model's own loss), "recon" (reconstruction only) or "elbo"
    error: str  # "mse" | "bce": the reconstruction error
    recon: str | None  # field of forward's output holding the reconstruction ("0", "recon", ...); None: model.loss
    posterior: str | None = None  # "mu_logvar", "q", "kl" (a KL given by the model) or "sampled"
    fields: dict[str, str] = field(default_factory=dict)  # role ("mu", "logvar", "kl", "q", "loss") -> field
    sample_index: int | None = None  # for "sampled": which outermost rsample/sample call of a forward
    sample_at: str = ""  # its trace name ("encoder.rsample") and type, for the announcement
    line: str = ""  # the sentence said at the start of training

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Reading:
        return cls(**dict(d))


def fields_of(out: Any) -> dict[str, Any]:
    """forward's output as named fields: a tensor is field "0", a tuple's items "0", "1", ...;
    dicts, namedtuples and dataclasses by their names."""
    if isinstance(out, torch.Tensor | torch.distributions.Distribution):
        return {"0": out}
    if isinstance(out, Mapping):
        return {str(k): v for k, v in out.items()}
    if hasattr(out, "_fields"):  # namedtuple
        return {name: getattr(out, name) for name in out._fields}
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
    if isinstance(out, tuple | list):
        return {str(i): v for i, v in enumerate(out)}
    raise UsageError(f"forward returns {type(out).__name__}; aelab reads a tensor, a tuple, a dict, a namedtuple "
                     "or a dataclass (or give the model a loss(x) method)")


def _named(fields: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    low = {k.lower(): k for k in fields}
    return next((low[n] for n in names if n in low), None)


def _is_scalar_or_rows(v: Any, n: int) -> bool:
    return isinstance(v, torch.Tensor) and (v.dim() == 0 or tuple(v.shape) == (n,))


def parse_loss_flag(text: str) -> tuple[str, str]:
    """`--loss` as (objective, error), each "auto" unless given: 'mse', 'recon,bce', 'elbo', 'model'."""
    objective, error = "auto", "auto"
    for token in (t.strip() for t in text.split(",") if t.strip()):
        if token not in LOSS_TOKENS:
            raise UsageError(f"--loss {text!r}: {token!r} is not one of {', '.join(LOSS_TOKENS)} "
                             "(combine an objective and an error with a comma, e.g. recon,bce)")
        if token in ("mse", "bce"):
            error = token
        elif token != "auto":
            objective = token
    return objective, error


def read(name: str, out: Any, x: torch.Tensor, samples: list[tuple[int, str, str, Any]], has_loss: bool,
         data_unit: bool, flag: str = "auto", output: str | None = None) -> Reading:
    """The reading of a probe forward `out` on batch `x`.

    `samples`: the trace's outermost sample calls as (index, trace name, type, distribution object);
    `has_loss`: the model defines loss(x); `data_unit`: every data value lies in [0, 1]."""
    objective, error = parse_loss_flag(flag)
    if has_loss and objective in ("auto", "model"):
        return Reading("model", "mse", None, line=f"{name}.loss(x) is the model's own: aelab minimises what it returns")
    if objective == "model":
        raise UsageError(f"--loss model: {name} has no loss(x) method")
    fields = fields_of(out)
    roles: dict[str, str] = {}
    for role, names in (("mu", MU_NAMES), ("logvar", LOGVAR_NAMES), ("kl", KL_NAMES), ("loss", LOSS_NAMES),
                        ("q", Q_NAMES)):
        found = _named(fields, names)
        if found is not None:
            roles[role] = found
    q_fields = [k for k, v in fields.items() if isinstance(v, torch.distributions.Distribution)]
    if q_fields and "q" not in roles:
        roles["q"] = q_fields[0]
    recon = _recon_field(name, fields, x, output)
    positional = list(fields) == [str(i) for i in range(len(fields))]
    if positional and len(fields) == 3 and "mu" not in roles and "q" not in roles:
        a, b = fields["1"], fields["2"]
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape:
            roles["mu"], roles["logvar"] = "1", "2"
    if (positional and len(fields) == 2 and "kl" not in roles and "q" not in roles and recon == "0"
            and _is_scalar_or_rows(fields["1"], x.shape[0])):
        roles["kl"] = "1"
    err, err_why = _error(fields[recon], data_unit, error)
    if "loss" in roles and ("mu" in roles or "q" in roles or "kl" in roles) and objective == "auto":
        raise UsageError(f"{name} returns both a '{roles['loss']}' and a posterior: train the returned loss "
                         f"(--loss model) or aelab's ELBO from the posterior (--loss elbo)?")
    if "loss" in roles and objective == "auto":
        return Reading("model", err, recon, fields={"loss": roles["loss"]},
                       line=f"{name} returns a '{roles['loss']}' field: aelab minimises it")
    posterior, sample_index, sample_at = None, None, ""
    if "mu" in roles and "logvar" in roles:
        posterior = "mu_logvar"
        how = f"a reconstruction and ({roles['mu']}, {roles['logvar']}), read as the mean and log-variance of q(z|x)"
    elif "q" in roles:
        posterior = "q"
        how = f"a reconstruction and a distribution ('{roles['q']}'), read as q(z|x)"
    elif "kl" in roles:
        posterior = "kl"
        how = f"a reconstruction and its own KL ('{roles['kl']}')"
    else:
        normals = [s for s in samples if isinstance(s[3], torch.distributions.Normal) and s[2].endswith("rsample")]
        if normals and objective != "recon":
            posterior, sample_index = "sampled", normals[0][0]
            sample_at = f"{normals[0][1]} ({normals[0][2]})"
            how = f"the posterior sampled at {sample_at}"
        elif samples and objective == "elbo":
            raise UsageError(f"--loss elbo: {name} samples at {samples[0][1]} ({samples[0][2]}), not from a Normal "
                             "with rsample, so aelab has no KL to N(0, I) for it; use --loss recon")
        else:
            how = ""
    if objective == "elbo" and posterior is None:
        raise UsageError(f"--loss elbo: {name} returns no posterior (mu/logvar, a Distribution or a KL) and samples "
                         "no Normal; use --loss recon")
    if objective == "recon" or posterior is None:
        note = ""
        if objective == "recon" and (posterior is not None or samples):
            note = "; --loss recon: the KL is left out"
        elif samples:
            note = f"; it samples at {samples[0][1]} ({samples[0][2]}), with no KL to N(0, I) aelab can add"
        line = (f"{name} returns a reconstruction ('{recon}'): aelab minimises its {err.upper()} per element "
                f"({err_why}){note}; --loss mse or --loss bce to choose")
        return Reading("recon", err, recon, line=line)
    sum_text = (f"aelab trains the ELBO: {err.upper()} summed over each sample's values ({err_why}) "
                f"+ beta * KL(q || N(0, I)), per sample in nats; --loss recon turns the KL off")
    if posterior == "sampled":
        elbo = (f"{name} returns only the reconstruction, and the trace shows its posterior sampled at "
                f"{sample_at}: {sum_text}")
    else:
        elbo = f"{name} returns {how}: {sum_text}"
    return Reading("elbo", err, recon, posterior, {k: v for k, v in roles.items() if k in ("mu", "logvar", "q", "kl")},
                   sample_index, sample_at, line=elbo)


def _recon_field(name: str, fields: Mapping[str, Any], x: torch.Tensor, output: str | None) -> str:
    if output is not None:
        if output not in fields:
            raise UsageError(f"--output {output!r}: {name}'s forward returns {', '.join(fields)}")
        return output
    named = _named(fields, RECON_NAMES)
    if named is not None and isinstance(fields[named], torch.Tensor):
        return named
    like = [k for k, v in fields.items() if isinstance(v, torch.Tensor) and tuple(v.shape) == tuple(x.shape)]
    if len(like) == 1:
        return like[0]
    if len(like) > 1:
        raise UsageError(f"{name} returns {len(like)} tensors shaped like its input ({', '.join(like)}): read "
                         f"'{like[0]}' as the reconstruction (--output {like[0]}) or '{like[1]}' (--output {like[1]})?")
    shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in fields.items() if isinstance(v, torch.Tensor))
    raise UsageError(f"{name} returns no tensor shaped like its input {tuple(x.shape)} ({shapes or 'no tensors'}); "
                     "aelab needs the reconstruction, or a loss(x) method on the model")


def _error(recon: torch.Tensor, data_unit: bool, chosen: str) -> tuple[str, str]:
    out_unit = bool(((recon >= 0) & (recon <= 1)).all())
    if chosen == "bce":
        if not (data_unit and out_unit):
            raise UsageError("--loss bce needs data and outputs in [0, 1]; "
                             + ("the data are not" if not data_unit else "the model's outputs are not (no sigmoid?)"))
        return "bce", "chosen with --loss bce"
    if chosen == "mse":
        return "mse", "chosen with --loss mse"
    if data_unit and out_unit:
        return "bce", "data and outputs lie in [0, 1]"
    if data_unit:
        return "mse", "the data lie in [0, 1] but the outputs do not, so not BCE"
    return "mse", "the data are not in [0, 1]"
