"""`vq-vae`: a conv encoder to a grid of `latent`-wide vectors, each snapped to the nearest of `codes`
codebook entries, and the mirrored conv decoder (van den Oord et al., 2017).

The codebook is learnt by exponential moving averages of the vectors assigned to each code (decay
`decay`, Laplace-smoothed counts; appendix A.1 of the paper), not by gradients; the encoder gets the
decoder's gradient straight through the quantiser and a commitment loss `commitment` *
||z_e - sg(e)||^2 keeps it close to its codes. Loss terms: `reconstruction` (per element, as the plain
kinds) and `commitment`. evaluate reports the codebook's perplexity exp(H(code use)) and the share of
codes used. This file is the whole kind: config, quantiser, model, generated-file template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from aelab.models import templates
from aelab.models.base import AEOutput, Autoencoder, KLControl, LossOutput
from aelab.models.blocks import activation
from aelab.models.codegen import renders
from aelab.models.config import ACTIVATION, LIKELIHOOD, AEConfig, int_list, non_negative_float, option, positive_int
from aelab.models.geometry import plan_stages
from aelab.models.kind import register
from aelab.models.kinds.conv import CONV_LAYERS, check_conv_shape


def _unit_interval(name: str, value: Any) -> float:
    v = non_negative_float(name, value)
    if not v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v


@dataclass(frozen=True)
class VQVAEConfig(AEConfig):
    """Conv stages (kernel 4, stride 2, as in the paper), the codebook and its EMA."""

    channels: tuple[int, ...] = option((32, 64), int_list(1), "output channels of each conv stage, e.g. [32, 64]")
    codes: int = option(128, positive_int, "codebook entries K")
    commitment: float = option(0.25, non_negative_float, "weight of the commitment loss (beta in the paper)")
    decay: float = option(0.99, _unit_interval, "EMA decay of the codebook")
    activation: str = option("relu", ACTIVATION, "activation after every conv but the last of each side")
    likelihood: str = option("gaussian", LIKELIHOOD, "gaussian (MSE) or bernoulli (BCE, data in [0, 1])")


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation of the channel vectors of (N, D, *grid), EMA codebook, straight-through."""

    embed: torch.Tensor
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor
    initialised: torch.Tensor

    def extra_repr(self) -> str:
        return f"{self.codes}, {self.dim}, decay={self.decay}, eps={self.eps}"

    def __init__(self, codes: int, dim: int, decay: float = 0.99, eps: float = 1e-5) -> None:
        super().__init__()
        self.codes, self.dim, self.decay, self.eps = codes, dim, decay, eps
        embed = torch.randn(codes, dim)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.ones(codes))
        self.register_buffer("embed_sum", embed.clone())
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def _initialise(self, flat: torch.Tensor) -> None:
        """The first training batch seeds the codebook with K of its vectors (random ones drawn again), so
        every code starts where the encoder's outputs are instead of far from all of them."""
        pick = torch.randint(0, flat.shape[0], (self.codes,), device=flat.device)
        self.embed.copy_(flat[pick])
        self.embed_sum.copy_(flat[pick])
        self.cluster_size.fill_(1.0)
        self.initialised.fill_(True)

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """The nearest code of every vector of z (N, D, *grid) -> (N, *grid)."""
        flat = z.movedim(1, -1).reshape(-1, self.dim)
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed.t() + self.embed.pow(2).sum(1)
        return dist.argmin(1).view(z.shape[0], *z.shape[2:])

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quantised z with the straight-through gradient, code indices, commitment ||z - sg(e)||^2 mean)."""
        if self.training and not bool(self.initialised):
            self._initialise(z.detach().movedim(1, -1).reshape(-1, self.dim))
        idx = self.indices(z)
        q = self.embed[idx].movedim(-1, 1)
        if self.training:
            with torch.no_grad():
                flat = z.detach().movedim(1, -1).reshape(-1, self.dim)
                onehot = F.one_hot(idx.reshape(-1), self.codes).type(flat.dtype)
                self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
                self.embed_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
                n = self.cluster_size.sum()
                size = (self.cluster_size + self.eps) / (n + self.codes * self.eps) * n
                self.embed.copy_(self.embed_sum / size.unsqueeze(1))
        commitment = F.mse_loss(z, q.detach())
        return z + (q - z).detach(), idx, commitment


@renders(VectorQuantizer)
def _vq(m: VectorQuantizer) -> str:
    return f"VectorQuantizer({m.codes}, {m.dim}, decay={m.decay}, eps={m.eps})"


VQ_METHODS = '''
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The quantised code of x (straight-through in training)."""
        return self.quantizer(self.encoder(x))[0]
''' + templates.DECODE + templates.FORWARD_CODE + '''
    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean per-element reconstruction error + commitment * ||z_e - sg(e)||^2 (the EMA moves the codes)."""
        x_in = x + self.noise * torch.randn_like(x) if self.training and self.noise > 0 else x
        q, _, commit = self.quantizer(self.encoder(x_in))
        return self.likelihood.error(x, self.decoder(q)).mean() + self.commitment * commit
'''


@register("vq-vae", VQVAEConfig)
class VQVAE(Autoencoder):
    """Conv VQ-VAE with an EMA codebook: latent = a grid of code vectors."""

    codegen_methods: ClassVar[str] = VQ_METHODS
    example_input: ClassVar[tuple[int, ...]] = (1, 12, 10)
    config: VQVAEConfig

    def networks(self, config: Any) -> tuple[nn.Module, nn.Module]:
        check_conv_shape(config.input_shape)
        in_channels, *spatial = config.input_shape
        n = len(config.channels)
        self.stages = plan_stages(tuple(spatial), [4] * n, [2] * n)
        conv, transposed = CONV_LAYERS[len(spatial)]
        widths = [in_channels, *config.channels]
        encoder: list[nn.Module] = []
        for stage, c_in, c_out in zip(self.stages, widths[:-1], widths[1:]):
            encoder += [conv(c_in, c_out, stage.kernel, stride=stage.stride, padding=stage.padding),
                        activation(config.activation)]
        encoder.append(conv(widths[-1], config.latent, 1))
        decoder: list[nn.Module] = [conv(config.latent, widths[-1], 1), activation(config.activation)]
        for i in reversed(range(n)):
            stage = self.stages[i]
            decoder.append(transposed(widths[i + 1], widths[i], stage.kernel, stride=stage.stride,
                                      padding=stage.padding, output_padding=stage.output_padding))
            if i > 0:
                decoder.append(activation(config.activation))
        self.quantizer = VectorQuantizer(config.codes, config.latent, config.decay)
        return nn.Sequential(*encoder), nn.Sequential(*decoder)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.latent_dim, *self.stages[-1].out_size)

    def codegen_attrs(self) -> dict[str, Any]:
        return {**super().codegen_attrs(), "commitment": self.config.commitment}

    def describe(self) -> list[str]:
        grid = "x".join(map(str, self.stages[-1].out_size))
        return [*super().describe(), f"codebook: {self.config.codes} codes of {self.latent_dim} values, one per "
                f"position of the {grid} grid (EMA decay {self.config.decay})"]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        z: torch.Tensor = self.quantizer(self.encoder(x))[0]
        return z

    def forward(self, x: torch.Tensor) -> AEOutput:
        z = self.encode(x)
        return AEOutput(reconstruction=self.decode(z), latent=z)

    def loss(self, x: torch.Tensor, *, check_range: bool = True, control: KLControl | None = None) -> LossOutput:
        """Mean per-element reconstruction error + commitment * ||z_e - sg(e)||^2 (+ sparsity)."""
        if check_range:
            self.check_target(x)
        self.check_input(x)
        q, _, commit = self.quantizer(self.encoder(self.corrupt(x)))
        reconstruction = self.likelihood.error(x, self.decoder(q)).mean()
        terms = {"reconstruction": reconstruction, "commitment": commit}
        total = reconstruction + self.config.commitment * commit
        if self.config.sparsity > 0:
            terms["sparsity"] = self.sparsity_penalty(q)
            total = total + terms["sparsity"]
        return LossOutput(total, terms)

    @torch.no_grad()
    def extra_metrics(self, batches: Any) -> dict[str, float]:
        """Perplexity exp(-sum p log p) of the codes used over the rows, and the share of codes used."""
        counts = torch.zeros(self.config.codes, dtype=torch.float64)
        for xb in batches:
            idx = self.quantizer.indices(self.encoder(xb))
            counts += torch.bincount(idx.reshape(-1).cpu(), minlength=self.config.codes).double()
        if counts.sum() == 0:
            return {}
        p = counts / counts.sum()
        entropy = -(p[p > 0] * p[p > 0].log()).sum()
        return {"perplexity": float(entropy.exp()), "codebook_usage": float((counts > 0).double().mean())}
