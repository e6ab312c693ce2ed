"""Autograd's backward graph of one forward, as torchviz draws it: the second way trace/ watches a model.

The recorder (`record`) sees ops and module calls; this reads the graph autograd itself builds
(`AddmmBackward0`, `AccumulateGrad` per parameter) for `aelab cost --graph`. It uses the recorder's
pieces: inputs made as `record` makes them, its distribution patches (argument validation off, which
reads values fake tensors lack), the meta or fake execution. The real weights and buffers never enter
the run: meta or fake copies stand in for them (`functional_call`), so the model's flags and BatchNorm
statistics stay as they are.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from aelab.errors import UsageError
from aelab.trace.follow import Follow
from aelab.trace.modes import fake_kernel_log_off
from aelab.trace.record import InputLike, as_input_spec, model_device, prepare_inputs
from aelab.trace.samplers import patched_distributions
from aelab.trace.standins import followed, run_attributes
from aelab.trace.tensors import flatten_tensors
from aelab.trace.walk import walk as parts_of


@dataclass
class GradNode:
    """One autograd node: `AddmmBackward0`, or `AccumulateGrad` for a parameter (then `param` names it)."""

    nid: int
    label: str
    module: str  # the module whose forward created it ("" for the root)
    param: str | None = None
    shape: tuple[int, ...] | None = None
    next: list[int] = field(default_factory=list)  # nodes it sends gradients to
    runs: bool = True  # runs under the pattern
    next_runs: list[bool] = field(default_factory=list)  # does it compute the gradient for each `next`


@dataclass
class GradGraph:
    """Autograd's backward graph of the all-trainable forward, marked with what the pattern runs."""

    nodes: list[GradNode]
    roots: list[int]  # nodes of the outputs


def walk(model: nn.Module, args: list[Any], kwargs: dict[str, Any], flags: Mapping[str, bool],
         fake_mode: FakeTensorMode | None = None, known: Sequence[Any] = ()) -> GradGraph:
    """Autograd's graph of one forward in which exactly the `flags`' True parameters require grad.

    The real weights and buffers never enter the run: meta or fake copies stand in for them
    (`functional_call`), so the model's flags and BatchNorm statistics stay as they are.
    """
    module_names = {id(m): n for n, m in model.named_modules()}
    with fake_mode if fake_mode is not None else contextlib.nullcontext():
        def copy_of(t: torch.Tensor) -> torch.Tensor:
            return fake_mode.from_tensor(t).detach() if fake_mode is not None else t.detach().clone()

        swapped = {n: copy_of(p).requires_grad_(bool(flags.get(n, False))) for n, p in model.named_parameters()}
        swapped.update({n: copy_of(b) for n, b in model.named_buffers()})
        # the modules' plain tensor attributes (`trace.standins`): a view kept beside a parameter or buffer follows
        # its fake copy (a meta one shares a meta tensor's storage); any other real one gets a copy of its own
        attributes = run_attributes(parts_of(model), fake_mode)
    follow = Follow(known)  # values the code reads (masks, position ids: `aelab.trace.shadow`): the inputs', and
    for n, b in model.named_buffers():  # the real buffers', looked up at the first read of their storage
        if not b.is_meta:
            follow.shadow.defer(swapped[n], functools.partial(_own_value, b))
    attributes.defer(follow.shadow)  # and the plain attributes'
    param_names = {id(t): n for n, t in swapped.items()}
    owner: dict[Any, str] = {}

    def claim(module: nn.Module, _args: Any, output: Any) -> None:
        path = module_names.get(id(module), "")
        todo: list[Any] = [t.grad_fn for t in flatten_tensors(output) if t.grad_fn is not None]
        while todo:
            node = todo.pop()
            if node is None or node in owner:
                continue
            owner[node] = path
            todo.extend(n for n, _ in node.next_functions)

    handle = torch.nn.modules.module.register_module_forward_hook(claim)
    try:  # the recorder's distribution patches: validation off (it reads values fakes lack), samplers pass through
        with fake_kernel_log_off(), patched_distributions(), \
                fake_mode if fake_mode is not None else contextlib.nullcontext(), \
                follow, followed(attributes):
            outputs = flatten_tensors(torch.func.functional_call(model, swapped, tuple(args), kwargs,
                                                                 tie_weights=True))
    finally:
        handle.remove()
    ids: dict[Any, int] = {}
    nodes: list[GradNode] = []
    stack = [t.grad_fn for t in reversed(outputs) if t.grad_fn is not None]
    while stack:  # depth first, numbered in preorder; a loop, not recursion: graphs are thousands of nodes deep
        node = stack.pop()
        if node in ids:
            continue
        ids[node] = len(nodes)
        var = getattr(node, "variable", None)
        gnode = GradNode(len(nodes), type(node).__name__, owner.get(node, ""))
        if isinstance(var, torch.Tensor):
            gnode.param = param_names.get(id(var), "(input)")
            gnode.shape = tuple(var.shape)
            gnode.module = gnode.param.rsplit(".", 1)[0] if "." in gnode.param else ""
        nodes.append(gnode)
        stack.extend(n for n, _ in reversed(node.next_functions) if n is not None)
    for node, nid in ids.items():
        nodes[nid].next = [ids[n] for n, _ in node.next_functions if n is not None]
    roots = [ids[t.grad_fn] for t in outputs if t.grad_fn is not None]
    return GradGraph(nodes, list(dict.fromkeys(roots)))


def _own_value(b: torch.Tensor) -> tuple[torch.Tensor, int]:
    return b.detach().cpu().clone(), 0


def autograd_graph(model: nn.Module, inputs: Sequence[InputLike], flags: Mapping[str, bool],
                   kwinputs: Mapping[str, InputLike] | None = None) -> GradGraph:
    """Autograd's graph of one forward on meta (a meta model) or fake tensors, in which exactly the `flags`'
    True parameters require grad. Inputs are made as `record` makes them; a failing forward is a UsageError."""
    specs = [as_input_spec(x) for x in inputs]
    kwspecs = {k: as_input_spec(v) for k, v in (kwinputs or {}).items()}
    device = model_device(model)
    try:
        if device.type == "meta":
            inp = prepare_inputs(specs, kwspecs, device, None)
            return walk(model, inp.args, inp.kwargs, flags, known=inp.known)
        mode = FakeTensorMode(allow_non_fake_inputs=True)
        inp = prepare_inputs(specs, kwspecs, device, mode)
        return walk(model, inp.args, inp.kwargs, flags, mode, known=inp.known)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"the forward failed while drawing the backward graph ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); run `aelab doctor`") from exc
