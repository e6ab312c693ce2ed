"""The interface every autoencoder kind shares, and the loss written once for all of them.

A kind only says how to build its `encoder` and `decoder` (`networks`); encode/decode/forward/loss,
denoising, sparsity, the reparameterisation, the KL term and log p(x|z) live here, so the same loss
is never written twice (the pythae habit we leave behind).

Loss scale: for plain autoencoders the `reconstruction` term is the per-element mean error (MSE, or
BCE for likelihood='bernoulli'); for VAEs it is -log p(x|z) summed over the data dims and averaged
over the batch (nats per sample), so `total` is the negative ELBO when beta = 1.

A kind states what it offers as `capabilities` (kind.py) and returns its loss as named `terms`; the
trainer logs whatever terms come back. Each kind also owns the methods of its generated file
(`codegen_methods`, templates.py).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from aelab.models import templates
from aelab.models.capability import Capability
from aelab.models.config import AEConfig
from aelab.models.likelihood import BernoulliLikelihood, Likelihood, in_unit_interval, make_likelihood


@dataclass
class AEOutput:
    """What forward returns: the reconstruction (data space), the code, and for VAEs q(z|x)."""

    reconstruction: torch.Tensor
    latent: torch.Tensor
    mean: torch.Tensor | None = None
    log_var: torch.Tensor | None = None


@dataclass
class LossOutput:
    """One loss evaluation: `total` is what to backpropagate, `terms` its named scalar parts
    (e.g. reconstruction, kl, sparsity, commitment), logged as they are by the trainer."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]


@dataclass(frozen=True)
class KLControl:
    """How the trainer shapes a KL term: `weight` multiplies beta (KL warm-up ramps it from 0 to 1);
    `free_bits` (nats) is the floor of each latent dimension's batch-mean KL (Kingma et al., 2016)."""

    weight: float = 1.0
    free_bits: float = 0.0


def kl_objective(kl: torch.Tensor, beta: float, control: KLControl | None) -> torch.Tensor:
    """The KL part of the objective from per-element KL values `kl` of shape (N, *latent):
    beta * weight * sum_d max(free_bits, mean_n kl[n, d]). Without free bits this is beta * weight * the
    batch-mean of each sample's summed KL."""
    control = control or KLControl()
    per_dim = kl.mean(0)
    if control.free_bits > 0:
        per_dim = per_dim.clamp_min(control.free_bits)
    return beta * control.weight * per_dim.sum()


class Autoencoder(nn.Module, abc.ABC):
    """Base class of every kind: `encoder` maps x to z, `decoder` maps z to raw outputs,
    `likelihood` maps raw outputs to data space and scores reconstructions."""

    kind: ClassVar[str] = ""  # set by @register
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    codegen_methods: ClassVar[str] = templates.AE_METHODS
    codegen_note: ClassVar[str] = ""  # added to the generated file's first line
    #: a small per-sample input shape the kind accepts: the generic tests build every kind with it
    example_input: ClassVar[tuple[int, ...]] = (12,)

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = config
        self.input_shape: tuple[int, ...] = tuple(config.input_shape)
        self.latent_dim: int = config.latent
        self.encoder, self.decoder = self.networks(config)
        self.likelihood: Likelihood = make_likelihood(getattr(config, "likelihood", "gaussian"),
                                                      learn_scale=self.has(Capability.LIKELIHOOD))

    @abc.abstractmethod
    def networks(self, config: Any) -> tuple[nn.Module, nn.Module]:
        """Build (encoder, decoder) for this kind; raise ValueError when the config cannot work."""

    @classmethod
    def has(cls, capability: Capability) -> bool:
        return capability in cls.capabilities

    def codegen_attrs(self) -> dict[str, Any]:
        """Class attributes of the generated file that its methods read."""
        return {"input_shape": self.input_shape, "latent_shape": self.latent_shape,
                "noise": self.config.noise, "sparsity": self.config.sparsity}

    def extra_metrics(self, batches: Any) -> dict[str, float]:
        """Metrics only this kind has, over an iterable of input batches (VQ-VAE: codebook use)."""
        return {}

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Per-sample shape of z (seqvae: (T, latent) for the T it was built with)."""
        return (self.latent_dim,)

    def config_dict(self) -> dict[str, Any]:
        """Everything `from_config` needs to rebuild this model exactly; JSON-serialisable."""
        return {"kind": self.kind, **self.config.to_dict()}

    def describe(self) -> list[str]:
        """A few lines on what was built (kinds add their geometry)."""
        n_params = sum(p.numel() for p in self.parameters())
        shape = "x".join(map(str, self.input_shape))
        latent = "x".join(map(str, self.latent_shape))
        return [f"{self.kind}: input {shape} -> latent {latent} -> {shape}; {n_params:,} parameters"]

    # --- shapes -------------------------------------------------------------------------------
    def accepts(self, shape: tuple[int, ...]) -> bool:
        """Whether a batch of this per-sample shape fits the model (seqvae allows any length T)."""
        return tuple(shape) == self.input_shape

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() < 1 or not self.accepts(tuple(x.shape[1:])):
            want = ", ".join(map(str, self.input_shape))
            raise ValueError(f"{self.kind} model expects input of shape (N, {want}), got {tuple(x.shape)}")

    def check_target(self, x: torch.Tensor) -> None:
        """Bernoulli scores need data in [0, 1]; anything else (NaN too) would be a silently wrong loss.

        It reads x on the host: a GPU sync, and a graph break under torch.compile. `loss` and
        `log_px_given_z` run it unless called with `check_range=False`, which is for a caller that
        has checked its whole data source once (as the trainer can, from `Dataset.unit_interval`).
        """
        if isinstance(self.likelihood, BernoulliLikelihood) and not in_unit_interval(x):
            got = ("NaN values" if bool(x.isnan().any())
                   else f"values in [{float(x.min()):.3g}, {float(x.max()):.3g}]")
            raise ValueError(f"likelihood='bernoulli' needs data in [0, 1], got {got}; "
                             f"rescale it or use likelihood='gaussian'")

    # --- the interface ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic code z of x."""
        self.check_input(x)
        z: torch.Tensor = self.encoder(x)
        return z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction in data space (probabilities for a Bernoulli likelihood)."""
        out: torch.Tensor = self.likelihood(self.decoder(z))
        return out

    def forward(self, x: torch.Tensor) -> AEOutput:
        z = self.encode(x)
        return AEOutput(reconstruction=self.decode(z), latent=z)

    def loss(self, x: torch.Tensor, *, check_range: bool = True, control: KLControl | None = None) -> LossOutput:
        """Mean per-element reconstruction error, plus the sparsity penalty in training mode.

        `check_range=False` skips `check_target` (only for data already checked, see there);
        `control` shapes a KL term and is ignored by kinds without one."""
        if check_range:
            self.check_target(x)
        z = self.encode(self.corrupt(x))
        reconstruction = self.likelihood.error(x, self.decoder(z)).mean()
        terms = {"reconstruction": reconstruction}
        total = reconstruction
        if self.config.sparsity > 0:
            terms["sparsity"] = self.sparsity_penalty(z)
            total = total + terms["sparsity"]
        return LossOutput(total=total, terms=terms)

    # --- options every kind has ---------------------------------------------------------------
    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """Denoising: x + noise * N(0, 1) in training mode when `noise` > 0; the target stays x."""
        if self.training and self.config.noise > 0:
            return x + self.config.noise * torch.randn_like(x)
        return x

    def sparsity_penalty(self, z: torch.Tensor) -> torch.Tensor:
        """Sparse AE: `sparsity` * sum |z| per sample, averaged over the batch, in training mode."""
        if self.training and self.config.sparsity > 0:
            return self.config.sparsity * z.abs().flatten(1).sum(1).mean()
        return torch.zeros((), device=z.device, dtype=z.dtype)


class VariationalAutoencoder(Autoencoder):
    """Gaussian posterior q(z|x) = N(mean, exp(log_var)), standard normal prior, reparameterised z.

    The encoder's last layer has 2 * latent outputs on the last axis: the first half is the mean,
    the second the log-variance. Neither is clamped, so the KL term is never silently zero.
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.POSTERIOR, Capability.PRIOR_SAMPLE, Capability.LIKELIHOOD})
    codegen_methods: ClassVar[str] = templates.VAE_METHODS

    def __init__(self, config: AEConfig) -> None:
        super().__init__(config)
        self.beta = float(getattr(config, "beta", 1.0))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_var) of q(z|x), each of shape (N, *latent_shape)."""
        self.check_input(x)
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        return mean, log_var

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the deterministic code."""
        return self.posterior(x)[0]

    @staticmethod
    def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """z = mean + sigma * eps with eps ~ N(0, I), so gradients flow to mean and log_var."""
        return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)

    @staticmethod
    def kl_elements(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """KL(N(mean, exp(log_var)) || N(0, 1)) of every latent element: 0.5 (mean^2 + exp(log_var) - 1 - log_var)."""
        return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var)

    @classmethod
    def kl_divergence(cls, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per sample, summed over the latent dims."""
        return cls.kl_elements(mean, log_var).flatten(1).sum(1)

    def codegen_attrs(self) -> dict[str, Any]:
        return {**super().codegen_attrs(), "beta": self.beta}

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor, *, check_range: bool = True) -> torch.Tensor:
        """log p(x|z) per sample, shape (N,), summed over all data dims, in nats (`check_range`: as in `loss`)."""
        if check_range:
            self.check_target(x)
        nll: torch.Tensor = self.likelihood.nll(x, self.decoder(z))
        return -nll.flatten(1).sum(1)

    def forward(self, x: torch.Tensor) -> AEOutput:
        """z is a posterior sample in training mode and the posterior mean in eval mode."""
        mean, log_var = self.posterior(x)
        z = self.reparameterize(mean, log_var) if self.training else mean
        return AEOutput(reconstruction=self.decode(z), latent=z, mean=mean, log_var=log_var)

    def loss(self, x: torch.Tensor, *, check_range: bool = True, control: KLControl | None = None) -> LossOutput:
        """-ELBO with a one-sample estimate: -log p(x|z) + beta * KL (+ sparsity in training).

        z is always sampled here (also in eval mode) so the validation loss estimates the same
        quantity the training loss does. `check_range=False` skips `check_target` (see there);
        `control` (warm-up weight, free bits) changes the KL part of `total`, never the `kl` term.
        """
        mean, log_var = self.posterior(self.corrupt(x))
        z = self.reparameterize(mean, log_var)
        reconstruction = -self.log_px_given_z(x, z, check_range=check_range).mean()
        kl_all = self.kl_elements(mean, log_var)
        terms = {"reconstruction": reconstruction, "kl": kl_all.flatten(1).sum(1).mean()}
        total = reconstruction + kl_objective(kl_all, self.beta, control)
        if self.config.sparsity > 0:
            terms["sparsity"] = self.sparsity_penalty(z)
            total = total + terms["sparsity"]
        return LossOutput(total=total, terms=terms)

    def sample(self, n: int) -> torch.Tensor:
        """n draws from the model: decode(z) with z ~ N(0, I)."""
        ref = next(self.parameters())
        z = torch.randn(n, *self.latent_shape, device=ref.device, dtype=ref.dtype)
        return self.decode(z)
