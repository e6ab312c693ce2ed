"""Your own model: each output convention trains the loss aelab announces, checked against the formula
written out here by hand, and what is ambiguous stops with both readings and the flag that picks one."""

from __future__ import annotations

import collections
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aelab.errors import UsageError
from aelab.models import Capability
from aelab.models.user import read_user_model

D, Z = 6, 2


class Plain(nn.Module):
    def __init__(self, sigmoid: bool = False) -> None:
        super().__init__()
        self.enc, self.dec = nn.Linear(D, Z), nn.Linear(Z, D)
        self.sigmoid = sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dec(self.enc(x))
        return torch.sigmoid(out) if self.sigmoid else out


class MuLogvar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.dec = nn.Linear(D, 2 * Z), nn.Linear(Z, D)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return torch.sigmoid(self.dec(z)), mu, logvar


class GivesKL(MuLogvar):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        recon, mu, _ = super().forward(x)
        return recon, (mu**2).sum(1).mean()  # any scalar the model calls its KL


class GivesQ(MuLogvar):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.distributions.Normal]:  # type: ignore[override]
        mu, logvar = self.enc(x).chunk(2, dim=-1)
        q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
        return torch.sigmoid(self.dec(q.rsample())), q


Out = collections.namedtuple("Out", ["x_hat", "z_mean", "z_log_var"])


class Named(MuLogvar):
    def forward(self, x: torch.Tensor) -> Out:  # type: ignore[override]
        return Out(*super().forward(x))


@dataclass
class DictOut:
    recon: torch.Tensor
    loss: torch.Tensor


class SampledInside(MuLogvar):
    """Seed 003's pattern: forward returns only the reconstruction; the posterior is sampled inside."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        mu, logvar = self.enc(x).chunk(2, dim=-1)
        return torch.sigmoid(self.dec(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).rsample()))


class OwnLoss(Plain):
    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return (self(x) - x).abs().mean()


class Both(MuLogvar):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        recon, mu, logvar = super().forward(x)
        return {"recon": recon, "mu": mu, "logvar": logvar, "loss": ((recon - x) ** 2).sum()}


class TwoLike(Plain):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return super().forward(x), x * 2


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return (0.5 * (mu**2 + logvar.exp() - 1 - logvar)).sum(1).mean()


def _read(net: nn.Module, x: torch.Tensor, **kw: object):  # type: ignore[no-untyped-def]
    return read_user_model(net, {"name": type(net).__name__}, x, bool(((x >= 0) & (x <= 1)).all()), **kw)  # type: ignore[arg-type]


X = torch.rand(5, D, generator=torch.Generator().manual_seed(0))


def _same_draw(model, net, x):  # type: ignore[no-untyped-def]
    """The loss and the forward pass with the same random draw of z."""
    torch.manual_seed(3)
    got = model.loss(x)
    torch.manual_seed(3)
    return got, net(x)


def test_a_reconstruction_on_real_data_is_mse_per_element() -> None:
    x = torch.randn(5, D)
    net = Plain()
    model = _read(net, x)
    assert "MSE per element" in model.reading.line and "data are not in [0, 1]" in model.reading.line
    got = model.loss(x)
    torch.testing.assert_close(got.total, ((net(x) - x) ** 2).mean())
    assert list(got.terms) == ["reconstruction"] and not model.has(Capability.POSTERIOR)


def test_data_and_outputs_in_0_1_train_bce_and_unbounded_outputs_do_not() -> None:
    net = Plain(sigmoid=True)
    model = _read(net, X)
    assert "BCE per element" in model.reading.line
    p = net(X)
    torch.testing.assert_close(model.loss(X).total, (-(X * p.log() + (1 - X) * (1 - p).log())).mean())
    assert "not BCE" in _read(Plain(), X).reading.line  # a Linear output cannot be a probability


def test_recon_mu_logvar_is_the_elbo() -> None:
    net = MuLogvar()
    model = _read(net, X)
    assert "trains the ELBO" in model.reading.line and "(1, 2)" in model.reading.line
    got, (r, mu, logvar) = _same_draw(model, net, X)
    bce = F.binary_cross_entropy(r, X, reduction="none").sum(1).mean()
    torch.testing.assert_close(got.total, bce + _kl(mu, logvar))
    torch.testing.assert_close(got.terms["kl"], _kl(mu, logvar))
    assert model.has(Capability.POSTERIOR)


def test_recon_kl_adds_the_models_own_kl_times_beta() -> None:
    net = GivesKL()
    model = _read(net, X, beta=0.5)
    assert "its own KL ('1')" in model.reading.line
    got, (r, kl) = _same_draw(model, net, X)
    torch.testing.assert_close(got.total, F.binary_cross_entropy(r, X, reduction="none").sum(1).mean() + 0.5 * kl)


def test_recon_q_uses_the_distribution() -> None:
    net = GivesQ()
    model = _read(net, X)
    assert "a distribution ('1')" in model.reading.line
    got, (r, q) = _same_draw(model, net, X)
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(got.total, F.binary_cross_entropy(r, X, reduction="none").sum(1).mean() + kl)


def test_field_names_of_a_namedtuple() -> None:
    net = Named()
    model = _read(net, X)
    assert "(z_mean, z_log_var)" in model.reading.line
    got, out = _same_draw(model, net, X)
    bce = F.binary_cross_entropy(out.x_hat, X, reduction="none").sum(1).mean()
    torch.testing.assert_close(got.total, bce + _kl(out.z_mean, out.z_log_var))


def test_a_dataclass_with_a_loss_field_is_minimised_as_it_is() -> None:
    class WithLoss(Plain):
        def forward(self, x: torch.Tensor) -> DictOut:  # type: ignore[override]
            r = super().forward(x)
            return DictOut(r, ((r - x) ** 2).sum())

    net = WithLoss()
    model = _read(net, X)
    assert "'loss' field" in model.reading.line
    torch.testing.assert_close(model.loss(X).total, ((net(X).recon - X) ** 2).sum())


def test_a_normal_sampled_inside_gets_its_kl_added() -> None:
    net = SampledInside()
    model = _read(net, X)
    assert "returns only the reconstruction" in model.reading.line and "rsample" in model.reading.line
    torch.manual_seed(3)
    got = model.loss(X)
    torch.manual_seed(3)
    mu, logvar = net.enc(X).chunk(2, dim=-1)
    r = net(X)
    bce = F.binary_cross_entropy(r, X, reduction="none").sum(1).mean()
    torch.testing.assert_close(got.total, bce + _kl(mu, logvar))
    off = _read(net, X, loss="recon")
    assert off.reading.objective == "recon" and "KL is left out" in off.reading.line


def test_free_bits_and_warmup_shape_only_the_objective() -> None:
    from aelab.models import KLControl

    net = MuLogvar()
    model = _read(net, X)
    torch.manual_seed(3)
    got = model.loss(X, control=KLControl(weight=0.25, free_bits=0.5))
    torch.manual_seed(3)
    r, mu, logvar = net(X)
    per_dim = (0.5 * (mu**2 + logvar.exp() - 1 - logvar)).mean(0)
    bce = F.binary_cross_entropy(r, X, reduction="none").sum(1).mean()
    torch.testing.assert_close(got.total, bce + 0.25 * per_dim.clamp_min(0.5).sum())
    torch.testing.assert_close(got.terms["kl"], per_dim.sum())  # the logged KL is the true one


def test_a_loss_method_wins() -> None:
    net = OwnLoss()
    model = _read(net, X)
    assert "loss(x) is the model's own" in model.reading.line
    torch.testing.assert_close(model.loss(X).total, (net(X) - X).abs().mean())


def test_ambiguous_outputs_name_both_readings_and_the_flag() -> None:
    with pytest.raises(UsageError, match=r"train the returned loss \(--loss model\) or aelab's ELBO .*\(--loss elbo\)"):
        _read(Both(), X)
    assert _read(Both(), X, loss="elbo").reading.objective == "elbo"
    with pytest.raises(UsageError, match=r"read '0' as the reconstruction \(--output 0\) or '1' \(--output 1\)"):
        _read(TwoLike(), X)
    assert _read(TwoLike(), X, output="0").reading.recon == "0"


def test_targets_a_sigmoid_cannot_reach_are_warned_about_at_the_start() -> None:
    x = torch.rand(5, D) * 255
    model = _read(Plain(sigmoid=True), x)
    assert any(n.startswith("warning: data range: the targets reach") for n in model.notes)
    assert not any("data range" in n for n in _read(Plain(sigmoid=True), X).notes)
