"""VAE terms against torch.distributions: KL, log p(x|z), the ELBO the loss reports, sampling."""

from __future__ import annotations

import re

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from aelab.models import Capability, build

VAES = [
    ("dense-vae", (12,), {"hidden": [16]}),
    ("conv-vae", (2, 9, 11), {"channels": [4, 8]}),
    ("conv-vae", (1, 21), {"channels": [4]}),
    ("seqvae", (7, 13), {"width": 8, "depth": 2}),
]


def _spread_posterior(model: torch.nn.Module) -> None:
    """Scale the encoder's last layer so means and log-variances are far from 0 (a real test of KL)."""
    last = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv1d)][-1]
    with torch.no_grad():
        last.weight.mul_(8.0)
        last.bias.uniform_(-1.5, 1.5)


def _truth_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    q = Normal(mean, torch.exp(0.5 * log_var))
    p = Normal(torch.zeros_like(mean), torch.ones_like(mean))
    return kl_divergence(q, p).flatten(1).sum(1)


def _truth_log_px(model: torch.nn.Module, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    raw = model.decoder(z)
    if model.config.likelihood == "bernoulli":
        dist = Bernoulli(logits=raw, validate_args=False)  # grey levels in [0, 1]: the continuous extension
    else:
        dist = Normal(raw, torch.exp(model.likelihood.log_scale).expand_as(raw))
    return dist.log_prob(x).flatten(1).sum(1)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
@pytest.mark.parametrize(("kind", "shape", "options"), VAES)
def test_kl_and_log_px_match_torch_distributions(kind: str, shape: tuple[int, ...], options: dict,
                                                 likelihood: str) -> None:
    torch.manual_seed(0)
    model = build(kind, shape, 3, likelihood=likelihood, beta=0.7, **options)
    _spread_posterior(model)
    if likelihood == "gaussian":
        with torch.no_grad():
            model.likelihood.log_scale.fill_(-1.3)
    x = torch.rand(4, *shape)
    mean, log_var = model.posterior(x)
    assert mean.shape == log_var.shape == (4, *model.latent_shape)
    truth = _truth_kl(mean, log_var)
    torch.testing.assert_close(model.kl_divergence(mean, log_var), truth)
    assert (truth > 1.0).all()  # a spread posterior: a clamped or dropped KL would show

    z = model.reparameterize(mean, log_var)
    torch.testing.assert_close(model.log_px_given_z(x, z), _truth_log_px(model, x, z))

    # loss(): the same posterior sample, drawn from the same seed, scored independently
    torch.manual_seed(5)
    out = model.loss(x)
    torch.manual_seed(5)
    z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
    rec = -_truth_log_px(model, x, z).mean()
    torch.testing.assert_close(out.terms["kl"], truth.mean())
    torch.testing.assert_close(out.terms["reconstruction"], rec)
    torch.testing.assert_close(out.total, rec + 0.7 * truth.mean())


@pytest.mark.parametrize(("kind", "shape", "options"), VAES)
def test_kl_is_never_silently_zero_and_trains_the_encoder(kind: str, shape: tuple[int, ...], options: dict) -> None:
    torch.manual_seed(1)
    model = build(kind, shape, 3, **options)
    out = model.loss(torch.rand(2, *shape))
    assert out.terms["kl"].item() > 0
    out.terms["kl"].backward()
    grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in model.decoder.parameters())  # KL touches only q(z|x)


def test_kl_by_hand() -> None:
    """KL(N(2, e^0) || N(0, 1)) = 0.5 * (4 + 1 - 1 - 0) = 2 per dim; 3 dims -> 6."""
    model = build("dense-vae", (5,), 3)
    mean, log_var = torch.full((1, 3), 2.0), torch.zeros(1, 3)
    assert model.kl_divergence(mean, log_var).item() == pytest.approx(6.0)


@pytest.mark.parametrize(("kind", "shape", "options"), VAES)
def test_forward_samples_in_training_and_uses_the_mean_in_eval(kind: str, shape: tuple[int, ...],
                                                               options: dict) -> None:
    torch.manual_seed(2)
    model = build(kind, shape, 3, likelihood="bernoulli", **options)
    x = torch.rand(2, *shape)
    train_out = model.train()(x)
    assert not torch.equal(train_out.latent, train_out.mean)
    eval_out = model.eval()(x)
    assert eval_out.mean is not None and eval_out.log_var is not None
    assert torch.equal(eval_out.latent, eval_out.mean)
    torch.testing.assert_close(eval_out.reconstruction, torch.sigmoid(model.decoder(eval_out.mean)))
    torch.testing.assert_close(model.encode(x), eval_out.mean)
    samples = model.sample(5)
    assert samples.shape == (5, *shape)
    assert ((samples >= 0) & (samples <= 1)).all()


@pytest.mark.parametrize("kind", ["dense", "dense-vae"])
@pytest.mark.parametrize(("bad", "got"), [(1.5, "values in [0, 1.5]"), (-0.1, "values in [-0.1, 1]"),
                                          (float("nan"), "NaN values")])
def test_bernoulli_refuses_data_outside_0_1(kind: str, bad: float, got: str) -> None:
    model = build(kind, (4,), 2, likelihood="bernoulli")
    x = torch.tensor([[0.0, 0.5, 1.0, bad]])
    message = re.escape(f"needs data in [0, 1], got {got};")
    with pytest.raises(ValueError, match=message):
        model.loss(x)
    if model.has(Capability.POSTERIOR):
        with pytest.raises(ValueError, match=message):
            model.log_px_given_z(x, torch.zeros(1, 2))
    model.loss(torch.tensor([[0.0, 0.5, 1.0, 1.0]]))  # the row with the bad value replaced is scored


@pytest.mark.parametrize("kind", ["dense", "dense-vae"])
def test_check_range_false_never_reads_the_data(kind: str) -> None:
    """For callers that checked their data once (the trainer): no host read, so no GPU sync and no
    torch.compile graph break. Meta tensors have no values, so any read would raise."""
    model = build(kind, (4,), 2, likelihood="bernoulli").to("meta")
    x = torch.empty(3, 4, device="meta")
    with pytest.raises(Exception, match="meta"):
        model.loss(x)  # the default checks, which needs the values
    assert model.loss(x, check_range=False).total.device.type == "meta"
    if model.has(Capability.POSTERIOR):
        assert model.log_px_given_z(x, torch.empty(3, 2, device="meta"), check_range=False).shape == (3,)


def test_plain_autoencoders_have_no_kl_term() -> None:
    """No KL term at all (not a zero that reads like a measured one)."""
    model = build("conv", (1, 10, 10), 4, channels=[4])
    x = torch.randn(3, 1, 10, 10)
    out = model.loss(x)
    assert list(out.terms) == ["reconstruction"]
    torch.testing.assert_close(out.terms["reconstruction"],
                               torch.nn.functional.mse_loss(model(x).reconstruction, x))
    torch.testing.assert_close(out.total, out.terms["reconstruction"])
