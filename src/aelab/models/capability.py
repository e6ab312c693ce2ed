"""What a model kind can do beyond encode/decode/loss, as the kind declares it (kind.py, `capabilities`).

Its own module, below both `base` and `kind`, so that neither has to import the other to know it.
"""

from __future__ import annotations

import enum


class Capability(enum.Enum):
    """What a model offers beyond `encode`, `decode`, `forward` and `loss`."""

    #: `posterior(x) -> (mean, log_var)` of a diagonal Gaussian q(z|x) against an N(0, I) prior: KL per
    #: latent dimension, active units, collapse warnings, --free-bits and --kl-warmup.
    POSTERIOR = "posterior"
    #: `sample(n)`: n decoded draws from the prior (samples.png).
    PRIOR_SAMPLE = "prior_sample"
    #: `log_px_given_z(x, z)` in nats, with POSTERIOR: the ELBO and the importance-sampled NLL.
    LIKELIHOOD = "likelihood"
