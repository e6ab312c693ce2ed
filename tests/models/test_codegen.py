"""`aelab build --out`: the standalone file, imported fresh, is the same model (keys, shapes, outputs, loss)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from aelab.models import Capability, build
from aelab.models.codegen import RENDERERS, render_module, render_source
from aelab.models.kinds.vq_vae import VectorQuantizer

CASES = [
    ("dense", (784,), 10, {"hidden": [42]}),
    ("dense", (1, 6, 5), 3, {"hidden": [16, 8], "activation": "gelu", "likelihood": "bernoulli", "noise": 0.1}),
    ("dense-vae", (12,), 2, {"activation": "leaky_relu", "beta": 0.5, "sparsity": 0.01}),
    ("conv", (1, 28, 28), 8, {"channels": [4, 8]}),
    ("conv", (3, 33, 47), 5, {"channels": [4, 4, 6], "kernel": [3, 4, 5], "stride": [2, 1, 3], "hidden": [7],
                              "activation": "silu"}),
    ("conv", (2, 201), 4, {"channels": [3, 5], "kernel": 5, "activation": "elu"}),
    ("conv-vae", (1, 17, 9), 3, {"channels": [4, 4], "likelihood": "bernoulli", "activation": "tanh"}),
    ("seqvae", (20, 201), 16, {"width": 12, "depth": 3, "dilation": "exponential", "likelihood": "bernoulli"}),
    ("seqvae", (9, 7), 3, {"width": 5, "depth": 1, "kernel": 4, "dilation": 2, "noise": 0.2}),
    ("linear", (64,), 4, {}),
]


def _import_fresh(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"standalone_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("kind", "shape", "latent", "options"), CASES)
def test_standalone_file_is_the_same_model(tmp_path: Path, kind: str, shape: tuple[int, ...], latent: int,
                                           options: dict) -> None:
    torch.manual_seed(0)
    model = build(kind, shape, latent, **options)
    path = tmp_path / "model.py"
    path.write_text(render_source(model))
    copy = getattr(_import_fresh(path), type(model).__name__)()

    original, rebuilt = model.state_dict(), copy.state_dict()
    assert list(rebuilt) == list(original)
    assert {k: v.shape for k, v in rebuilt.items()} == {k: v.shape for k, v in original.items()}
    copy.load_state_dict(original, strict=True)

    x = torch.rand(2, *shape)
    model.eval()
    copy.eval()
    with torch.no_grad():
        mine = model(x)
        theirs = copy(x)
        if model.has(Capability.POSTERIOR):
            for a, b in zip(theirs, (mine.reconstruction, mine.mean, mine.log_var)):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
        else:
            torch.testing.assert_close(theirs, mine.reconstruction, rtol=0, atol=0)
    model.train()
    copy.train()
    torch.manual_seed(3)
    want = model.loss(x).total
    torch.manual_seed(3)
    torch.testing.assert_close(copy.loss(x), want)


def test_standalone_file_imports_only_torch(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text(render_source(build("seqvae", (10, 6), 2, width=4, likelihood="bernoulli")))
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"torch", "__future__"}
    code = ("import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__'); "
            "assert not [m for m in sys.modules if m.startswith('aelab')], 'aelab was imported'")
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "input (2, 10, 6) -> latent (2, 10, 2) -> output (2, 10, 6)" in run.stdout


@pytest.mark.parametrize("layer_type", sorted(RENDERERS, key=lambda t: t.__name__), ids=lambda t: t.__name__)
def test_every_renderer_round_trips_through_repr(layer_type: type[nn.Module]) -> None:
    """Each registry entry's source, evaluated, builds a layer whose repr equals the original's."""
    from aelab.models import blocks, likelihood

    examples: dict[str, nn.Module] = {
        "Linear": nn.Linear(5, 3, bias=False), "Conv1d": nn.Conv1d(2, 4, 3, stride=2, padding=1, dilation=2),
        "Conv2d": nn.Conv2d(2, 4, (3, 5), stride=(1, 2), padding=(1, 2), groups=2),
        "Conv3d": nn.Conv3d(1, 2, 3, padding_mode="reflect", padding=1),
        "ConvTranspose1d": nn.ConvTranspose1d(4, 2, 3, stride=2, padding=1, output_padding=1),
        "ConvTranspose2d": nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=(0, 1)),
        "ConvTranspose3d": nn.ConvTranspose3d(4, 2, 2, stride=2, bias=False),
        "BatchNorm1d": nn.BatchNorm1d(7, momentum=0.2), "BatchNorm2d": nn.BatchNorm2d(3, affine=False),
        "LayerNorm": nn.LayerNorm(6), "Tanh": nn.Tanh(), "Sigmoid": nn.Sigmoid(), "Identity": nn.Identity(),
        "ReLU": nn.ReLU(inplace=True), "SiLU": nn.SiLU(), "GELU": nn.GELU(approximate="tanh"),
        "LeakyReLU": nn.LeakyReLU(0.2), "ELU": nn.ELU(alpha=0.5), "Dropout": nn.Dropout(0.3, inplace=True),
        "CausalConv1d": blocks.CausalConv1d(3, 5, 4, dilation=3), "Transpose": blocks.Transpose(1, 2),
        "Reshape": blocks.Reshape((3, 4)), "Flatten": blocks.Flatten(),
        "BernoulliLikelihood": likelihood.BernoulliLikelihood(),
        "GaussianLikelihood": likelihood.GaussianLikelihood(learn_scale=False),
        "VectorQuantizer": VectorQuantizer(7, 3, decay=0.9),
    }
    layer = examples[layer_type.__name__]
    assert type(layer) is layer_type
    source = render_module(layer, 0, [])
    namespace = {"nn": nn, **vars(blocks), **vars(likelihood), "VectorQuantizer": VectorQuantizer}
    rebuilt = eval(source, namespace)
    assert repr(rebuilt) == repr(layer)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in layer.state_dict().items()}


def test_a_layer_without_a_renderer_is_an_error_not_a_silent_skip() -> None:
    with pytest.raises(TypeError, match="no entry for layer type Bilinear"):
        render_module(nn.Sequential(nn.Bilinear(2, 2, 2)), 0, [])
