"""Evaluation metrics against independent truths: scikit-learn, torch.distributions, a closed-form marginal."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from aelab.evaluation import importance_sampled
from aelab.evaluation.metrics import bce, mse, psnr
from aelab.evaluation.nll import kl_to_standard_normal, log_normal
from aelab.models import build
from aelab.training import TrainConfig, train


def test_reconstruction_metrics_match_scikit_learn_and_a_hand_derivation() -> None:
    from sklearn.metrics import log_loss, mean_squared_error

    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 1, 4, 5, generator=gen) > 0.5).float()
    r = torch.rand(6, 1, 4, 5, generator=gen) * 0.98 + 0.01
    for i in range(6):
        xi, ri = x[i].flatten().numpy(), r[i].flatten().numpy()
        assert float(mse(x, r)[i]) == pytest.approx(mean_squared_error(xi, ri), rel=1e-5)
        assert float(bce(x, r)[i]) == pytest.approx(log_loss(xi, ri, labels=[0, 1]), rel=1e-5)
    # PSNR by hand: every pixel off by 0.1 -> MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB
    assert float(psnr(torch.zeros(1, 9), torch.full((1, 9), 0.1))[0]) == pytest.approx(20.0, rel=1e-5)


def test_kl_and_log_density_match_torch_distributions() -> None:
    from torch.distributions import Normal, kl_divergence

    gen = torch.Generator().manual_seed(1)
    mean, log_var, z = (torch.randn(5, 3, 4, generator=gen) for _ in range(3))
    q, p = Normal(mean, (0.5 * log_var).exp()), Normal(torch.zeros_like(mean), torch.ones_like(mean))
    assert torch.allclose(kl_to_standard_normal(mean, log_var), kl_divergence(q, p).flatten(1).sum(1), atol=1e-5)
    assert torch.allclose(log_normal(z, mean, log_var), q.log_prob(z).flatten(1).sum(1), atol=1e-5)


class LinearGaussian(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s² I), with W's columns orthogonal so the exact posterior is diagonal:
    cov = diag(1 / (1 + |w_j|² / s²)), mean = cov Wᵀ(x − b) / s². `shift` moves the proposal off the truth."""

    def __init__(self, w: Tensor, b: Tensor, s: float, shift: float = 0.0, widen: float = 0.0) -> None:
        super().__init__()
        self.w, self.b, self.s, self.shift, self.widen = w, b, s, shift, widen

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        var = 1.0 / (1.0 + (self.w**2).sum(0) / self.s**2)
        mean = ((x - self.b) @ self.w) * var / self.s**2
        return mean + self.shift, (var.log() + self.widen).expand_as(mean)

    def check_target(self, x: Tensor) -> None:
        """A Gaussian likelihood accepts any real data (as the models' Gaussian likelihood does)."""

    def log_px_given_z(self, x: Tensor, z: Tensor, *, check_range: bool = True) -> Tensor:
        mu = z @ self.w.T + self.b
        return torch.distributions.Normal(mu, self.s).log_prob(x).sum(1)

    def marginal(self) -> torch.distributions.MultivariateNormal:
        cov = self.w @ self.w.T + self.s**2 * torch.eye(len(self.b), dtype=self.w.dtype)
        return torch.distributions.MultivariateNormal(self.b, cov)


def _linear_gaussian(**kw: float) -> tuple[LinearGaussian, Tensor]:
    gen = torch.Generator().manual_seed(2)
    q, _ = torch.linalg.qr(torch.randn(6, 2, generator=gen, dtype=torch.float64))
    model = LinearGaussian(q * torch.tensor([2.0, 0.7], dtype=torch.float64),
                           torch.randn(6, generator=gen, dtype=torch.float64), 0.5, **kw)
    x = model.marginal().sample((8,))
    return model, x


def test_importance_sampling_is_exact_with_the_true_posterior() -> None:
    """With q(z|x) = p(z|x) every importance weight equals p(x): any K gives log p(x) exactly."""
    model, x = _linear_gaussian()
    truth = model.marginal().log_prob(x)
    est = importance_sampled(model, x, samples=3)
    assert torch.allclose(est.log_px, truth, atol=1e-8)
    wide = importance_sampled(model, x, samples=4000)  # ELBO = log p(x) when KL(q || p(z|x)) = 0
    assert torch.allclose(wide.elbo, truth, atol=0.1)


def test_importance_sampling_tightens_towards_the_truth_with_k() -> None:
    """A proposal off the posterior: K = 1 is well below log p(x); K = 5000 is within 0.05 nats; the
    estimate never overshoots by more than noise (it is a lower bound in expectation)."""
    model, x = _linear_gaussian(shift=0.4, widen=0.7)
    truth = model.marginal().log_prob(x)
    torch.manual_seed(0)
    one = torch.stack([importance_sampled(model, x, 1).log_px for _ in range(200)]).mean(0)
    many = importance_sampled(model, x, 5000).log_px
    assert bool((one < truth - 0.1).all())
    assert float((many - truth).abs().max()) < 0.05
    assert float((importance_sampled(model, x, 5000).elbo - truth).max()) < 0


def test_real_vae_nll_is_below_negative_elbo_and_falls_with_k() -> None:
    torch.manual_seed(0)
    model = build("dense-vae", (1, 8, 8), 3, hidden=[16], likelihood="bernoulli").eval()
    x = (torch.rand(16, 1, 8, 8) > 0.6).float()
    few = importance_sampled(model, x, 5)
    more = importance_sampled(model, x, 2000)
    assert bool((-more.log_px <= -more.elbo + 1e-6).all())
    assert float(-more.log_px.mean()) < float(-few.log_px.mean())


@pytest.mark.slow
def test_evaluate_a_vae_run_writes_metrics_and_pictures(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "vae"
    config = TrainConfig(kind="dense-vae", data="digits", latent=4, model_options={"hidden": [32]}, epochs=2,
                         batch_size=64, limit=600)
    train(run, config, quiet=True)
    result = cli("evaluate", str(run), "--nll-samples", "50", "--nll-rows", "40", "--limit", "120")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"mse", "psnr", "bce", "elbo", "nll"}
    m = metrics["metrics"]
    assert m["nll"]["rows"] == 40 and m["mse"]["rows"] == 120 and metrics["nll_samples"] == 50
    assert m["nll"]["mean"] <= -m["elbo"]["mean"] + 1e-6
    # the mean of per-row PSNRs is at least the PSNR of the mean MSE (Jensen: -log is convex)
    assert m["psnr"]["mean"] >= 10 * math.log10(1 / m["mse"]["mean"]) - 1e-9
    assert len(m["mse"]["per_class"]) == 10
    for name in ("reconstructions", "samples", "latent", "loss"):
        png = run / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert name in result.stdout
    import matplotlib.pyplot as plt

    assert plt.imread(run / "latent.png").shape[0] > 100
    assert "per class" in result.stdout and "nll" in result.stdout


@pytest.mark.slow
def test_evaluate_speech_and_a_table(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    speech = TrainConfig(kind="seqvae", data="speech", latent=8, model_options={"width": 32, "depth": 1},
                         epochs=1, batch_size=32)
    train(tmp_path / "speech", speech, quiet=True)
    result = cli("evaluate", str(tmp_path / "speech"), "--nll-samples", "10", "--nll-rows", "8")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "speech" / "reconstructions.png").is_file()
    assert (tmp_path / "speech" / "samples.png").is_file()
    table = TrainConfig(kind="dense", data="shuttle", latent=3, model_options={"hidden": [16]}, epochs=1,
                        batch_size=256, limit=2000)
    train(tmp_path / "shuttle", table, quiet=True)
    result = cli("evaluate", str(tmp_path / "shuttle"), "--limit", "500")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "shuttle" / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"mse"}
    assert any("PSNR and BCE need data in [0, 1]" in n for n in metrics["notes"])
