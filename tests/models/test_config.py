"""The builder's contract: kinds registry, config round trip, option checks, denoising and sparsity, the seed AE."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from aelab.models import KINDS, AEOutput, Capability, LossOutput, build, from_config

# a kind's own example input (Autoencoder.example_input) unless listed: a new kind needs no entry here
SHAPES = {name: kind.model.example_input for name, kind in KINDS.items()} | {
    "dense": (2, 5), "dense-vae": (10,), "conv": (1, 12, 10), "conv-vae": (2, 15), "seqvae": (6, 9), "linear": (10,)}
NON_DEFAULT = {
    "dense": {"hidden": [9], "activation": "tanh", "likelihood": "bernoulli"},
    "dense-vae": {"hidden": [8, 6], "beta": 4.0, "likelihood": "bernoulli"},
    "conv": {"channels": [3, 5], "kernel": [3, 5], "stride": 1, "hidden": [11]},
    "conv-vae": {"channels": [4], "kernel": 4, "activation": "gelu"},
    "seqvae": {"width": 7, "depth": 2, "kernel": 2, "dilation": "exponential", "activation": "relu"},
    "linear": {"noise": 0.1},
}


def test_registry_names_match_the_models() -> None:
    assert set(SHAPES) <= set(KINDS) and list(KINDS) == sorted(KINDS)
    for name in SHAPES:
        config_class, model_class = KINDS[name]
        assert model_class.kind == name
        model = build(name, SHAPES[name], 2)
        assert isinstance(model.config, config_class)
        assert model.has(Capability.POSTERIOR) == (name in ("dense-vae", "conv-vae", "seqvae"))
        assert hasattr(model, "sample") == model.has(Capability.PRIOR_SAMPLE)


@pytest.mark.parametrize("kind", list(KINDS))
def test_config_round_trips_through_json(kind: str) -> None:
    torch.manual_seed(0)
    model = build(kind, SHAPES[kind], 3, sparsity=0.5, **NON_DEFAULT.get(kind, {}))
    config = json.loads(json.dumps(model.config_dict()))
    assert config["kind"] == kind and config["input_shape"] == list(SHAPES[kind]) and config["latent"] == 3
    for key, value in NON_DEFAULT.get(kind, {}).items():
        assert config[key] == value
    again = from_config(kind, config)
    assert again.config_dict() == model.config_dict()
    again.load_state_dict(model.state_dict(), strict=True)
    x = torch.rand(2, *SHAPES[kind])
    model.eval()
    again.eval()
    with torch.no_grad():
        out = model(x)
        assert isinstance(out, AEOutput)
        torch.testing.assert_close(again(x).reconstruction, out.reconstruction, rtol=0, atol=0)


@pytest.mark.parametrize(("kind", "shape", "latent", "options", "message"), [
    ("dense", (10,), 0, {}, "latent must be a positive integer, got 0"),
    ("dense", (10,), -3, {}, "latent must be a positive integer"),
    ("dense", (10,), 2.5, {}, "latent must be a positive integer"),
    ("dense", (0, 3), 2, {}, "input_shape must be a non-empty list of positive sizes"),
    ("cnn", (1, 8, 8), 2, {}, "unknown kind 'cnn'; known kinds: conv, conv-vae, dense"),
    ("dense", (10,), 2, {"hiden": [4]}, "unknown option 'hiden' for kind 'dense' (did you mean 'hidden'?)"),
    ("dense-vae", (10,), 2, {"channels": [4]}, "known options: activation, beta, hidden, likelihood, noise"),
    ("linear", (10,), 2, {"hidden": [4]}, "known options: noise, sparsity"),
    ("dense", (10,), 2, {"hidden": "wide"}, "hidden must be a list of positive integers"),
    ("dense", (10,), 2, {"activation": "swish"}, "activation must be one of elu, gelu, leaky_relu, relu"),
    ("dense-vae", (10,), 2, {"likelihood": "poisson"}, "likelihood must be one of bernoulli, gaussian"),
    ("dense-vae", (10,), 2, {"beta": -1}, "beta must be a number >= 0"),
    ("dense", (10,), 2, {"noise": float("nan")}, "noise must be a number >= 0"),
    ("conv", (784,), 2, {}, "use kind 'dense' for flat vectors"),
    ("conv", (1, 1, 28, 28), 2, {}, "without the batch dimension"),
    ("conv", (1, 28, 28), 2, {"channels": []}, "channels needs at least 1 entry"),
    ("conv", (1, 28, 28), 2, {"channels": [4, 4], "kernel": [3]}, "kernel has 1 entries but channels has 2"),
    ("conv", (1, 8, 8), 2, {"channels": [4] * 5}, "stage 4 gets height 1, too small for stride 2"),
    ("conv", (1, 8, 8), 2, {"channels": [4] * 5}, "use at most 3 stage(s)"),
    ("conv", (1, 1), 2, {"channels": [4], "kernel": 8, "stride": 1}, "smaller than kernel 8"),  # 1+2*3-7-1 < 0
    ("seqvae", (201,), 2, {}, "seqvae needs input_shape (T, F)"),
    ("seqvae", (10, 20), 2, {"dilation": "linear"}, "dilation must be a positive integer or 'exponential'"),
])
def test_bad_configs_raise_one_clear_sentence(kind: str, shape: tuple, latent: object, options: dict,
                                              message: str) -> None:
    with pytest.raises(ValueError) as info:
        build(kind, shape, latent, **options)  # type: ignore[arg-type]
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_from_config_refuses_another_kind() -> None:
    config = build("dense", (4,), 2).config_dict()
    with pytest.raises(ValueError, match="config is for kind 'dense', not 'conv'"):
        from_config("conv", config)


@pytest.mark.parametrize("kind", list(KINDS))
def test_denoising_corrupts_inputs_in_training_only(kind: str) -> None:
    torch.manual_seed(0)
    noise = 0.3
    model = build(kind, SHAPES[kind], 2, noise=noise)
    x = torch.rand(3, *SHAPES[kind])
    state = copy.deepcopy(model.state_dict())  # stateful kinds (the VQ-VAE's EMA codebook) move in training
    torch.manual_seed(7)
    got = model.train().loss(x)
    model.load_state_dict(state)
    torch.manual_seed(7)
    noisy = x + noise * torch.randn_like(x)  # the target stays the clean x
    if model.has(Capability.POSTERIOR):
        mean, log_var = model.posterior(noisy)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        want = -model.log_px_given_z(x, z).mean()
    else:
        want = ((model.decode(model.encode(noisy)) - x) ** 2).mean()
    torch.testing.assert_close(got.terms["reconstruction"], want)
    model.eval()
    with torch.no_grad():
        if not model.has(Capability.POSTERIOR):
            clean = ((model(x).reconstruction - x) ** 2).mean()
            torch.testing.assert_close(model.loss(x).terms["reconstruction"], clean)


@pytest.mark.parametrize("kind", list(KINDS))
def test_sparsity_adds_l1_of_the_latent_in_training(kind: str) -> None:
    torch.manual_seed(0)
    model = build(kind, SHAPES[kind], 2, sparsity=0.25)
    x = torch.rand(3, *SHAPES[kind])
    state = copy.deepcopy(model.state_dict())
    torch.manual_seed(1)
    out = model.train().loss(x)
    assert isinstance(out, LossOutput)
    model.load_state_dict(state)
    torch.manual_seed(1)
    z = model(x).latent  # the same draw of z the loss used (VAEs: one reparameterised sample)
    terms = out.terms
    torch.testing.assert_close(terms["sparsity"], 0.25 * z.abs().flatten(1).sum(1).mean())
    kl = terms.get("kl", torch.zeros(()))
    commitment = getattr(model.config, "commitment", 0.0) * terms.get("commitment", torch.zeros(()))
    torch.testing.assert_close(out.total, terms["reconstruction"] + model_beta(model) * kl + commitment
                               + terms["sparsity"])
    assert terms["sparsity"] > 0
    assert model.eval().loss(x).terms["sparsity"] == 0


def model_beta(model: torch.nn.Module) -> float:
    return float(getattr(model, "beta", 0.0))


def test_dense_is_the_seed_ae_generalised() -> None:
    """build('dense', (784,), 10, hidden=[42]) has the seed AE's layers: load its weights, same outputs."""
    path = Path(__file__).resolve().parents[2] / "examples" / "seeds.py"
    spec = importlib.util.spec_from_file_location("aelab_test_seeds", path)
    assert spec is not None and spec.loader is not None
    seeds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seeds)
    seed = seeds.AE(x_dim=784, z_dim=10, h_dim=42)
    model = build("dense", (784,), 10, hidden=[42])
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in seed.state_dict().items()}
    model.load_state_dict(seed.state_dict(), strict=True)
    x = torch.randn(4, 784)
    with torch.no_grad():
        torch.testing.assert_close(model(x).reconstruction, seed(x), rtol=0, atol=0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_parameter_gets_a_gradient_from_the_loss(kind: str) -> None:
    """No parameter is left out of the loss (DDP refuses those, and they would never train)."""
    torch.manual_seed(0)
    model = build(kind, SHAPES[kind], 2)
    model.loss(torch.rand(3, *SHAPES[kind])).total.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_numpy_and_torch_sizes_are_accepted_and_stored_as_plain_json() -> None:
    import numpy as np

    model = build("conv", torch.Size([1, 28, 28]), np.int64(4), channels=[np.int32(4)], noise=np.float32(0.5))
    config = json.loads(json.dumps(model.config_dict()))
    assert config["input_shape"] == [1, 28, 28] and config["latent"] == 4 and config["channels"] == [4]
    with pytest.raises(ValueError, match="latent must be a positive integer"):
        build("dense", (4,), True)
