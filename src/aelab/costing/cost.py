"""`cost(model, *inputs, trainable=..., freeze=...)`: record backward under a `requires_grad` pattern.

This is the part of `aelab cost` that touches the model: it turns the `--trainable`/`--freeze` globs
into flags (`costing/trainable.py`), sets them, records one run
on fake/meta tensors (`aelab.trace.record`) for the pattern and one with every parameter trainable,
and puts every flag back exactly as it was, whatever happens. The comparison itself is the pure
analysis `aelab.costing.backward.backward_cost`. `backward_graph` marks autograd's graph of a
meta/fake forward (`aelab.trace.autograd_graph`, what torchviz draws) so `--graph` can show which
nodes the pattern skips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from aelab.costing.backward import CostReport, backward_cost
from aelab.costing.trainable import choose, requires_grad_pattern
from aelab.errors import UsageError
from aelab.render.cost_text import explain
from aelab.trace.autograd_graph import GradGraph, autograd_graph
from aelab.trace.params import refuse_lazy
from aelab.trace.record import InputLike, as_input_spec, record
from aelab.trace.records import Trace


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
    refuse_lazy(model)
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
    everything = {n: True for n, _ in model.named_parameters()}
    return mark_pattern(autograd_graph(model, inputs, everything, kwinputs), flags)
