"""`cost(model, *inputs, trainable=..., freeze=...)`: record backward under a `requires_grad` pattern.

This is the part of `aelab cost` that touches the model: it turns the `--trainable`/`--freeze` globs
into flags (`choose_trainable`), sets them, records one run
on fake/meta tensors (`aelab.trace.record`) for the pattern and one with every parameter trainable,
and puts every flag back exactly as it was, whatever happens. The comparison itself is the pure
analysis `aelab.costing.backward.backward_cost`. `backward_graph` walks autograd's graph of a
meta/fake forward (what torchviz draws) so `--graph` can show which nodes the pattern skips.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from aelab.costing.backward import CostReport, backward_cost
from aelab.errors import UsageError
from aelab.render.cost_text import explain
from aelab.trace.record import InputLike, as_input_spec, model_device, record
from aelab.trace.records import Trace
from aelab.trace.tensors import flatten_tensors


# --- choosing the trainable parameters --------------------------------------------------------------
def _candidates(param: str) -> list[str]:
    """A parameter name and the paths of every module that owns it: 'a.0.weight' -> ['a.0.weight', 'a.0', 'a']."""
    parts = param.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def matches(param: str, pattern: str) -> bool:
    """Does a glob name this parameter, or a module that owns it? ('encoder' matches 'encoder.0.weight')."""
    return any(fnmatch.fnmatchcase(c, pattern) for c in _candidates(param))


def choose_trainable(current: Mapping[str, bool], trainable: Sequence[str] = (), freeze: Sequence[str] = (),
                     aliases: Mapping[str, Sequence[str]] | None = None) -> dict[str, bool]:
    """The `requires_grad` flag of every parameter after applying the globs.

    With `trainable` globs, exactly the matching parameters train; without, the current flags stay.
    `freeze` globs then turn matching parameters off. `aliases` gives a tied parameter's other names
    (`lm_head.weight` for `embed.weight`): a glob matching any of them matches the parameter.
    A glob that matches no parameter, and a --trainable glob whose every parameter --freeze turns off,
    are UsageErrors.
    """
    names = list(current)
    known = {n: [n, *(aliases or {}).get(n, ())] for n in names}

    def hit(name: str, glob: str) -> bool:
        return any(matches(alias, glob) for alias in known[name])

    for flag, globs in (("--trainable", trainable), ("--freeze", freeze)):
        for g in globs:
            if not any(hit(n, g) for n in names):
                modules = sorted({a.rsplit(".", 1)[0] for n in names for a in known[n] if "." in a})
                sample = ", ".join(modules[:6]) or "none"
                raise UsageError(f"{flag} {g!r} matches no parameter or module with parameters "
                                 f"(modules with parameters: {sample}{', ...' if len(modules) > 6 else ''})")
    flags = dict(current)
    if trainable:
        flags = {n: any(hit(n, g) for g in trainable) for n in names}
    for n in names:
        if any(hit(n, g) for g in freeze):
            flags[n] = False
    for g in trainable:  # overlapping globs carve exceptions; a --trainable glob frozen whole is a contradiction
        if not any(flags[n] for n in names if hit(n, g)):
            raise UsageError(f"--trainable {g!r}: --freeze {', '.join(map(repr, freeze))} freezes every parameter it "
                             "matches; drop one of them, or narrow the --freeze glob")
    return flags


def current_flags(model: nn.Module) -> dict[str, bool]:
    """`requires_grad` of every parameter by its first name (a tied parameter appears once)."""
    return {n: p.requires_grad for n, p in model.named_parameters()}


def parameter_aliases(model: nn.Module) -> dict[str, list[str]]:
    """First name of a tied parameter -> its other names (`embed.weight` -> [`lm_head.weight`])."""
    first: dict[int, str] = {}
    out: dict[str, list[str]] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            out.setdefault(first[id(p)], []).append(n)
        else:
            first[id(p)] = n
    return out


def choose(model: nn.Module, trainable: Sequence[str] = (), freeze: Sequence[str] = ()) -> dict[str, bool]:
    """The flags the globs give this model's parameters (see `choose_trainable`)."""
    return choose_trainable(current_flags(model), trainable, freeze, parameter_aliases(model))


@contextlib.contextmanager
def requires_grad_pattern(model: nn.Module, flags: Mapping[str, bool]) -> Iterator[None]:
    """Set `requires_grad` per parameter name for the duration; restore every flag exactly afterwards."""
    params = dict(model.named_parameters())
    unknown = sorted(set(flags) - set(params))
    if unknown:
        raise UsageError(f"no parameter named {unknown[0]!r} in {type(model).__name__}")
    before = {p: p.requires_grad for p in model.parameters()}
    try:
        for name, flag in flags.items():
            params[name].requires_grad_(flag)
        yield
    finally:
        for p, flag in before.items():
            p.requires_grad_(flag)


def record_pattern(model: nn.Module, inputs: Sequence[InputLike], flags: Mapping[str, bool],
                   kwinputs: Mapping[str, InputLike] | None = None, *, eval_mode: bool = False) -> Trace:
    """One recorded forward + backward with exactly these `requires_grad` flags."""
    with requires_grad_pattern(model, flags):
        return record(model, list(inputs), dict(kwinputs or {}), backward=True, eval_mode=eval_mode)


def cost(model: nn.Module, *inputs: InputLike, trainable: Sequence[str] = (), freeze: Sequence[str] = (),
         measure: bool = False, device: str | None = None, repeats: int = 20, warmup: int = 3,
         threads: int | None = None, name: str | None = None, eval_mode: bool = False,
         **kwinputs: InputLike) -> CostReport:
    """What backward costs when only the parameters chosen by the globs train, beside all-trainable.

    Traced at the batch asked for with the ladder of `aelab.trace.record` (meta/fake first; a real forward
    only for values that depend on the weights; the notes say which ran); `eval_mode` traces in eval mode.

    `trainable`/`freeze` are fnmatch globs over parameter names and the module paths that own them
    ('encoder' freezes every parameter under `encoder`). Without `trainable`, the model's own flags are
    the starting point. `measure=True` also times real forward + backward of both patterns on `device`
    (see `aelab.costing.timing`). The model comes back exactly as it went in.
    """
    if not isinstance(model, nn.Module):
        raise UsageError(f"cost() needs a torch.nn.Module, not {type(model).__name__}")
    specs = [as_input_spec(x) for x in inputs]
    kwspecs = {k: as_input_spec(v) for k, v in kwinputs.items()}
    flags = choose(model, trainable, freeze)
    everything = dict.fromkeys(flags, True)
    pattern_trace = record_pattern(model, specs, flags, kwspecs, eval_mode=eval_mode)
    all_trace = record_pattern(model, specs, everything, kwspecs, eval_mode=eval_mode)
    result = backward_cost(pattern_trace, all_trace, model=name or type(model).__name__)
    result.explanation = explain(result)
    if measure:
        from aelab.costing.timing import time_patterns

        result.timing = time_patterns(model, specs, kwspecs, {"pattern": flags, "all": everything},
                                      device=device, repeats=repeats, warmup=warmup, threads=threads)
    return result


# --- autograd's graph, as torchviz shows it --------------------------------------------------------------
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


def _walk(model: nn.Module, args: list[Any], kwargs: dict[str, Any], flags: Mapping[str, bool],
          fake_mode: FakeTensorMode | None = None) -> GradGraph:
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
    validate = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)  # validation reads values fakes lack
    try:
        with fake_mode if fake_mode is not None else contextlib.nullcontext():
            outputs = flatten_tensors(torch.func.functional_call(model, swapped, tuple(args), kwargs,
                                                                 tie_weights=True))
    finally:
        handle.remove()
        torch.distributions.Distribution.set_default_validate_args(validate)
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


def mark_pattern(graph: GradGraph, flags: Mapping[str, bool]) -> GradGraph:
    """Which nodes and edges run when only `flags`' True parameters train.

    autograd.grad w.r.t. the trainable parameters runs a node exactly when some trainable parameter's
    AccumulateGrad is reachable from it, and computes an edge's gradient exactly when its target is
    such a node (PyTorch does not create the others: their inputs do not require grad).
    """
    reach: dict[int, bool] = {}
    for start in range(len(graph.nodes)):  # post-order without recursion: a node after everything it reaches
        todo = [(start, False)]
        while todo:
            nid, children_done = todo.pop()
            if nid in reach:
                continue
            node = graph.nodes[nid]
            if children_done:
                reach[nid] = bool(node.param and flags.get(node.param, False)) or any(reach.get(n, False)
                                                                                       for n in node.next)
            else:
                todo.append((nid, True))
                todo.extend((n, False) for n in node.next if n not in reach)
    for node in graph.nodes:
        node.runs = reach[node.nid]
        node.next_runs = [node.runs and reach[n] for n in node.next]
    return graph


def backward_graph(model: nn.Module, inputs: Sequence[InputLike], flags: Mapping[str, bool],
                   kwinputs: Mapping[str, InputLike] | None = None) -> GradGraph:
    """Autograd's graph of one fake/meta forward with every parameter trainable, marked for `flags`."""
    specs = [as_input_spec(x) for x in inputs]
    kwspecs = {k: as_input_spec(v) for k, v in (kwinputs or {}).items()}
    device = model_device(model)

    def make(spec: Any) -> torch.Tensor:
        if isinstance(spec, torch.Tensor):
            return spec.to("meta") if device.type == "meta" else spec
        return torch.empty(spec.shape, dtype=spec.dtype, device=device)

    everything = {n: True for n, _ in model.named_parameters()}
    try:
        if device.type == "meta":
            graph = _walk(model, [make(s) for s in specs], {k: make(s) for k, s in kwspecs.items()}, everything)
        else:
            mode = FakeTensorMode(allow_non_fake_inputs=True)
            with mode:
                args = [mode.from_tensor(s) if isinstance(s, torch.Tensor) else make(s) for s in specs]
                kwargs = {k: mode.from_tensor(s) if isinstance(s, torch.Tensor) else make(s)
                          for k, s in kwspecs.items()}
            graph = _walk(model, args, kwargs, everything, mode)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"the forward failed while drawing the backward graph ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); run `aelab doctor`") from exc
    return mark_pattern(graph, flags)
