"""The linear autoencoder recovers PCA (Baldi & Hornik 1989), checked against scikit-learn and scipy."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from aelab.models import build


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """sklearn's 8x8 digits (1797 x 64), scaled to [0, 1] and centred."""
    x = load_digits().data / 16.0
    return x - x.mean(axis=0)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Small matmuls run fastest on one thread (and do not fight the other xdist worker)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train_full_batch(model: torch.nn.Module, x: torch.Tensor, iterations: int) -> None:
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=iterations, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = model.loss(x).total
        loss.backward()
        return loss

    opt.step(closure)


# k = 4 and 10 sit at eigenvalue gaps of the digits spectrum (ratios 1.45 and 1.30), so the
# top-k subspace is well defined; a tiny gap would make any subspace near it almost as good.
@pytest.mark.parametrize("k", [4, 10])
def test_linear_ae_spans_the_principal_subspace_and_matches_pca_error(digits: np.ndarray, k: int,
                                                                      one_thread: object) -> None:
    torch.manual_seed(0)
    model = build("linear", (64,), k).double()
    x = torch.from_numpy(digits)
    pca = PCA(n_components=k).fit(digits)
    decoder_weight = model.decoder[0].weight.detach().numpy()  # (64, k): the columns span the code space
    untrained_angle = np.degrees(subspace_angles(decoder_weight, pca.components_.T)).max()
    assert untrained_angle > 2.0  # the check below is not passed by any random subspace

    _train_full_batch(model, x, iterations=300)

    decoder_weight = model.decoder[0].weight.detach().numpy()
    angle = np.degrees(subspace_angles(decoder_weight, pca.components_.T)).max()
    assert angle < 2.0, f"largest principal angle {angle:.3f} deg"
    pca_mse = float(((pca.inverse_transform(pca.transform(digits)) - digits) ** 2).mean())
    model.eval()
    with torch.no_grad():
        ae_mse = float(model.loss(x).terms["reconstruction"])
        direct_mse = float(((model(x).reconstruction - x) ** 2).mean())
    assert ae_mse == pytest.approx(direct_mse, rel=1e-12)  # the loss is the plain MSE
    assert ae_mse <= pca_mse * 1.01, f"linear AE MSE {ae_mse:.6g} vs PCA-{k} {pca_mse:.6g}"
    assert ae_mse >= pca_mse * (1 - 1e-9)  # PCA is optimal: nothing linear of rank k does better


def test_linear_refuses_a_latent_as_wide_as_the_input() -> None:
    with pytest.raises(ValueError, match="must be smaller than the input size 64"):
        build("linear", (8, 8), 64)
