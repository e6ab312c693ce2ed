"""Render a built autoencoder as a standalone PyTorch file (`aelab build --out model.py`).

The layers are generated from the module tree itself, not from a per-kind template that could drift:
each layer is written by its entry in RENDERERS (layer type -> constructor source), aelab's own
blocks are copied with `inspect.getsource`, and the methods are the kind's own template
(`codegen_methods`, see templates.py). tests/models/test_codegen.py imports the file fresh, loads the
original state_dict strictly and checks that outputs and losses agree.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from torch import nn

from aelab.models.base import Autoencoder
from aelab.models.blocks import CausalConv1d, Flatten, Reshape, Transpose
from aelab.models.likelihood import BernoulliLikelihood, GaussianLikelihood

Renderer = Callable[[Any], str]

#: exact layer type -> its constructor call as Python source. A new layer type is one entry.
RENDERERS: dict[type[nn.Module], Renderer] = {}


def renders(*types: type[nn.Module]) -> Callable[[Renderer], Renderer]:
    def register(fn: Renderer) -> Renderer:
        for t in types:
            RENDERERS[t] = fn
        return fn

    return register


@renders(nn.Linear)
def _linear(m: nn.Linear) -> str:
    return f"nn.Linear({m.in_features}, {m.out_features}{'' if m.bias is not None else ', bias=False'})"


def _compact(value: Any) -> Any:
    """(3, 3) -> 3: one number when every spatial dim has the same value (PyTorch expands it back)."""
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        return value[0]
    return value


def _conv_args(m: Any) -> str:
    """Channels and kernel, then only the arguments that differ from PyTorch's defaults."""
    args = [str(m.in_channels), str(m.out_channels), f"kernel_size={_compact(m.kernel_size)}"]
    for name, default in (("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1), ("groups", 1)):
        value = _compact(getattr(m, name))
        if value != default:
            args.append(f"{name}={value!r}")
    if m.bias is None:
        args.append("bias=False")
    if m.padding_mode != "zeros":
        args.append(f"padding_mode={m.padding_mode!r}")
    return ", ".join(args)


@renders(nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
def _conv(m: Any) -> str:
    return f"nn.{type(m).__name__}({_conv_args(m)})"


@renders(nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)
def _norm(m: Any) -> str:
    if isinstance(m, nn.LayerNorm):
        return f"nn.LayerNorm({m.normalized_shape}, eps={m.eps}, elementwise_affine={m.elementwise_affine})"
    return (f"nn.{type(m).__name__}({m.num_features}, eps={m.eps}, momentum={m.momentum}, affine={m.affine}, "
            f"track_running_stats={m.track_running_stats})")


#: layers made from keyword arguments alone -> those arguments' PyTorch defaults; only the ones that
#: differ are written (`nn.LeakyReLU(negative_slope=0.2)`, `nn.ReLU()`). A new such layer is one entry.
KEYWORD_LAYERS: dict[type[nn.Module], dict[str, Any]] = {
    nn.Tanh: {}, nn.Sigmoid: {}, nn.Identity: {},
    nn.ReLU: {"inplace": False}, nn.SiLU: {"inplace": False},
    nn.GELU: {"approximate": "none"},
    nn.LeakyReLU: {"negative_slope": 0.01, "inplace": False},
    nn.ELU: {"alpha": 1.0, "inplace": False},
    nn.Dropout: {"p": 0.5, "inplace": False},
}


@renders(*KEYWORD_LAYERS)
def _keywords(m: nn.Module) -> str:
    defaults = KEYWORD_LAYERS[type(m)]
    changed = ", ".join(f"{k}={getattr(m, k)!r}" for k, d in defaults.items() if getattr(m, k) != d)
    return f"nn.{type(m).__name__}({changed})"


@renders(CausalConv1d)
def _causal(m: CausalConv1d) -> str:
    args = [str(m.in_channels), str(m.out_channels), f"kernel_size={m.kernel_size[0]}"]
    args += [f"{name}={getattr(m, name)[0]}" for name in ("stride", "dilation") if getattr(m, name)[0] != 1]
    args += ["bias=False"] if m.bias is None else []
    return f"CausalConv1d({', '.join(args)})"


@renders(Transpose)
def _transpose(m: Transpose) -> str:
    return f"Transpose({m.dim0}, {m.dim1})"


@renders(Reshape)
def _reshape(m: Reshape) -> str:
    return f"Reshape({m.shape})"


@renders(Flatten, BernoulliLikelihood)
def _no_args(m: nn.Module) -> str:
    return f"{type(m).__name__}()"


@renders(GaussianLikelihood)
def _gaussian(m: GaussianLikelihood) -> str:
    return f"GaussianLikelihood(learn_scale={m.learn_scale})"


def render_module(module: nn.Module, indent: int, classes: list[type]) -> str:
    """Constructor source of `module` (Sequential recursively); aelab classes it uses go in `classes`."""
    if type(module) is nn.Sequential:
        pad = " " * (indent + 4)
        items = "".join(f"{pad}{render_module(child, indent + 4, classes)},\n" for child in module)
        return f"nn.Sequential(\n{items}{' ' * indent})"
    renderer = RENDERERS.get(type(module))
    if renderer is None:
        raise TypeError(f"codegen has no entry for layer type {type(module).__name__}; add one to RENDERERS")
    if type(module).__module__.startswith("aelab.") and type(module) not in classes:
        classes.append(type(module))
    return renderer(module)


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def build_command(model: Autoencoder) -> str:
    """The `aelab build` command line that makes this model (options that differ from the defaults)."""
    config = model.config_dict()
    defaults = type(model.config)(input_shape=model.input_shape, latent=model.latent_dim).to_dict()
    parts = [f"aelab build {model.kind} --input {'x'.join(map(str, model.input_shape))} --latent {model.latent_dim}"]
    for key, value in config.items():
        if key not in ("kind", "input_shape", "latent") and value != defaults[key]:
            parts.append(f"--option '{key}={_cli_value(value)}'")
    return " ".join(parts)


def render_source(model: Autoencoder) -> str:
    """The whole standalone file for `model`: imports, copied blocks, the model class, a __main__ demo."""
    if next(model.named_parameters(recurse=False), None) or next(model.named_buffers(recurse=False), None):
        raise TypeError("codegen expects every parameter inside a child module")
    classes: list[type] = []
    body = "".join(f"        self.{name} = {render_module(child, 8, classes)}\n"
                   for name, child in model.named_children())
    name = type(model).__name__
    attrs = model.codegen_attrs()
    attr_lines = "".join(f"    {key} = {value!r}\n" for key, value in attrs.items())
    blocks = "\n\n\n".join(inspect.getsource(cls).rstrip() for cls in classes)
    uses_f = "F." in blocks
    shape = ", ".join(map(str, model.input_shape))
    note = model.codegen_note
    return f'''"""A {model.kind} autoencoder for inputs of shape (N, {shape}){note}, generated by aelab.

    {build_command(model)}

Needs only PyTorch. `model.loss(x)` is the training objective aelab uses for this kind.
"""

from __future__ import annotations

import torch
{"import torch.nn.functional as F" + chr(10) if uses_f else ""}from torch import nn


{blocks}


class {name}(nn.Module):
    """{(type(model).__doc__ or "").strip().splitlines()[0]}"""

{attr_lines}
    def __init__(self) -> None:
        super().__init__()
{body}{model.codegen_methods}

if __name__ == "__main__":
    model = {name}()
    x = torch.rand(2, *{name}.input_shape)
    z = model.encode(x)
    print(model)
    print("input", tuple(x.shape), "-> latent", tuple(z.shape), "-> output", tuple(model.decode(z).shape))
    print("loss", float(model.loss(x).detach()))
'''
