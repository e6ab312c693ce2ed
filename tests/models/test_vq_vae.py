"""The vq-vae kind (one file, models/kinds/vq_vae.py): nearest-code quantisation, the EMA codebook update
written out by hand, the straight-through gradient, the commitment term, the generated file, and
codebook perplexity / usage from evaluate."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

import aelab
from aelab.models import KINDS, Capability, build
from aelab.models.codegen import render_source
from aelab.models.kinds.vq_vae import VectorQuantizer


def test_registered_from_its_own_file_with_no_posterior() -> None:
    model = build("vq-vae", (1, 12, 10), 3, channels=[4], codes=8)
    assert KINDS["vq-vae"].model is type(model) and model.kind == "vq-vae"
    assert not model.capabilities and not model.has(Capability.POSTERIOR)
    assert model.latent_shape == (3, 6, 5)


def test_quantiser_picks_the_nearest_code_and_passes_gradients_straight_through() -> None:
    vq = VectorQuantizer(3, 2)
    vq.embed.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]]))
    vq.initialised.fill_(True)
    z = torch.tensor([[[0.9, -1.5], [1.2, 0.1]]], requires_grad=True)  # N=1, D=2, grid 2: (0.9, 1.2), (-1.5, 0.1)
    q, idx, commit = vq.eval()(z)
    assert idx.tolist() == [[1, 2]]
    torch.testing.assert_close(q, torch.tensor([[[1.0, -2.0], [1.0, 0.0]]]))
    torch.testing.assert_close(commit, F.mse_loss(z, q.detach()))
    (q * torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])).sum().backward()
    torch.testing.assert_close(z.grad, torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]))  # identity through the snap


def test_ema_update_is_the_papers_formula() -> None:
    """N_k <- d N_k + (1-d) n_k;  m_k <- d m_k + (1-d) sum of its vectors;  e_k = m_k / (Laplace-smoothed N_k)."""
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 3, decay=0.8)
    vq.initialised.fill_(True)
    n0, m0 = vq.cluster_size.clone(), vq.embed_sum.clone()
    z = torch.randn(5, 3, 2)
    idx = vq.indices(z).reshape(-1)
    flat = z.movedim(1, -1).reshape(-1, 3)
    vq.train()(z)
    onehot = F.one_hot(idx, 4).float()
    n = 0.8 * n0 + 0.2 * onehot.sum(0)
    m = 0.8 * m0 + 0.2 * onehot.t() @ flat
    smoothed = (n + 1e-5) / (n.sum() + 4 * 1e-5) * n.sum()
    torch.testing.assert_close(vq.cluster_size, n)
    torch.testing.assert_close(vq.embed, m / smoothed.unsqueeze(1))


def test_loss_terms_and_the_generated_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build("vq-vae", (1, 8, 8), 4, channels=[6, 8], codes=16, commitment=0.5)
    x = torch.rand(3, 1, 8, 8)
    model.eval()
    out = model.loss(x)
    z_e = model.encoder(x)
    q = model.quantizer(z_e)[0]
    torch.testing.assert_close(out.terms["reconstruction"], ((model.decoder(q) - x) ** 2).mean())
    torch.testing.assert_close(out.total, out.terms["reconstruction"] + 0.5 * F.mse_loss(z_e, q))
    path = tmp_path / "vq.py"
    path.write_text(render_source(model))
    spec = importlib.util.spec_from_file_location("vq_standalone", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    copy = mod.VQVAE()
    copy.load_state_dict(model.state_dict(), strict=True)
    copy.eval()
    with torch.no_grad():
        torch.testing.assert_close(copy(x), model(x).reconstruction, rtol=0, atol=0)
        torch.testing.assert_close(copy.loss(x), model.loss(x).total)


def test_trains_and_evaluate_reports_codebook_use(tmp_path: Path) -> None:
    run = aelab.train("vq-vae", "digits", out=tmp_path / "vq", latent=4, channels=[16, 16], codes=32, epochs=3,
                      quiet=True, seed=0)
    assert {"reconstruction", "commitment"} <= set(run.history[-1])
    result = aelab.evaluate(run, nll_samples=0, plots=False)
    assert 1.0 < result.extra["perplexity"] <= 32 and 0 < result.extra["codebook_usage"] <= 1


def test_the_kind_registry_refuses_duplicates_bad_names_and_a_name_its_file_does_not_match() -> None:
    import pytest

    from aelab.errors import RegistryError
    from aelab.models.kind import register
    from aelab.models.kinds.vq_vae import VQVAE, VQVAEConfig

    with pytest.raises(RegistryError, match="registered twice"):
        register("vq-vae", VQVAEConfig)(type("Again", (VQVAE,), {"__module__": VQVAE.__module__}))
    with pytest.raises(RegistryError, match="lower-case words"):
        register("VQ_VAE", VQVAEConfig)(VQVAE)
    with pytest.raises(RegistryError, match=r"must live in models/kinds/vq_vae2\.py"):
        register("vq-vae2", VQVAEConfig)(VQVAE)
    assert KINDS["vq-vae"].model is VQVAE
