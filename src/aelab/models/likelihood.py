"""Output layers that know their likelihood: the decoder's raw output -> data space, error, log p(x|z).

The decoder ends in raw values (logits for Bernoulli, means for Gaussian). A likelihood module
maps them to data space in `forward` (so `decode` returns probabilities, not logits) and scores a
target with `nll`, computed from the raw values for numerical stability (BCE with logits).
Plain autoencoders use `error` (squared error or BCE per element); VAEs use `nll` (nats, constants
included). The classes import only torch so `aelab build --out` copies them verbatim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BernoulliLikelihood(nn.Module):
    """p(x|z) = Bernoulli(sigmoid(raw)) per element, for data in [0, 1] (binary or grey levels)."""

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw)

    def nll(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per element, in nats: binary cross-entropy on the logits."""
        return F.binary_cross_entropy_with_logits(raw, x, reduction="none")

    def error(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """The per-element reconstruction error a plain autoencoder minimises (here also BCE)."""
        return self.nll(x, raw)


class GaussianLikelihood(nn.Module):
    """p(x|z) = Normal(raw, sigma^2) per element; sigma is one learned scalar (as in sigma-VAE).

    With `learn_scale=False` sigma is 1 and there is no parameter (plain autoencoders, which
    minimise squared error and must not carry a parameter that never gets a gradient).
    """

    half_log_2pi = 0.5 * float(torch.tensor(2.0 * torch.pi, dtype=torch.float64).log())

    def __init__(self, learn_scale: bool = True) -> None:
        super().__init__()
        self.learn_scale = learn_scale
        if learn_scale:
            self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return raw

    def nll(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """-log N(x; raw, sigma^2) per element, in nats, constants included."""
        if not self.learn_scale:
            return self.half_log_2pi + 0.5 * (x - raw) ** 2
        return self.half_log_2pi + self.log_scale + 0.5 * (x - raw) ** 2 * torch.exp(-2.0 * self.log_scale)

    def error(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """The per-element reconstruction error a plain autoencoder minimises: squared error."""
        return (x - raw) ** 2


#: any likelihood module (a new likelihood joins this union and the registry below).
Likelihood = BernoulliLikelihood | GaussianLikelihood

#: likelihood name -> module class. A new likelihood is one entry (with forward, nll and error).
LIKELIHOODS: dict[str, type[Likelihood]] = {
    "gaussian": GaussianLikelihood,
    "bernoulli": BernoulliLikelihood,
}


def make_likelihood(name: str, learn_scale: bool) -> Likelihood:
    """The likelihood module for a model; `learn_scale` only matters for Gaussian (VAEs learn sigma)."""
    if name == "gaussian":
        return GaussianLikelihood(learn_scale=learn_scale)
    return LIKELIHOODS[name]()


def in_unit_interval(data: torch.Tensor) -> bool:
    """Whether every value lies in [0, 1] (NaN does not); reads the data on the host."""
    return bool(((data >= 0) & (data <= 1)).all())


def likelihood_for(data: torch.Tensor) -> str:
    """The likelihood the data calls for: 'bernoulli' when every value lies in [0, 1], else 'gaussian'."""
    return "bernoulli" if in_unit_interval(data) else "gaussian"
