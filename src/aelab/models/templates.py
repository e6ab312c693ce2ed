"""The methods of a generated standalone file (`aelab build --out`), one template per family of kinds.

A kind names its template in `codegen_methods` (base.py); the file's class attributes come from the
model's `codegen_attrs()`. A template may use only torch and those attributes.
"""

from __future__ import annotations

DECODE = '''
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction in data space."""
        return self.likelihood(self.decoder(z))
'''

FORWARD_CODE = '''
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
'''  # a deterministic code: the reconstruction of its decode

AE_METHODS = '''
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z of a batch x."""
        return self.encoder(x)
''' + DECODE + FORWARD_CODE + '''
    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean per-element reconstruction error (+ the sparsity penalty in training mode)."""
        x_in = x + self.noise * torch.randn_like(x) if self.training and self.noise > 0 else x
        z = self.encode(x_in)
        loss = self.likelihood.error(x, self.decoder(z)).mean()
        if self.training and self.sparsity > 0:
            loss = loss + self.sparsity * z.abs().flatten(1).sum(1).mean()
        return loss
'''

VAE_METHODS = '''
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x): the two halves of the encoder's last axis."""
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        return mean, log_var

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the deterministic code."""
        return self.posterior(x)[0]
''' + DECODE + '''
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mean, log_var); z is sampled in training mode, the mean otherwise."""
        mean, log_var = self.posterior(x)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean) if self.training else mean
        return self.decode(z), mean, log_var

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative ELBO per sample (one z sample): -log p(x|z) + beta * KL, averaged over the batch."""
        x_in = x + self.noise * torch.randn_like(x) if self.training and self.noise > 0 else x
        mean, log_var = self.posterior(x_in)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        nll = self.likelihood.nll(x, self.decoder(z)).flatten(1).sum(1).mean()
        kl = (0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var)).flatten(1).sum(1).mean()
        loss = nll + self.beta * kl
        if self.training and self.sparsity > 0:
            loss = loss + self.sparsity * z.abs().flatten(1).sum(1).mean()
        return loss

    def sample(self, n: int) -> torch.Tensor:
        """n draws: decode(z) with z ~ N(0, I)."""
        ref = next(self.parameters())
        return self.decode(torch.randn(n, *self.latent_shape, device=ref.device, dtype=ref.dtype))
'''
