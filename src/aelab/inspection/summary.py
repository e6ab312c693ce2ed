"""Rows and totals from a trace: parameters (each storage once), FLOPs by category, activation bytes.

A row is a module call, or a functional op / distribution sample called directly by a module that
has children (inside a leaf layer such as `Linear` the functional internals are not rows).
`flops` on a row and `flops_forward` in the totals are the multiply-add work (category "matmul",
2 per multiply-add), exactly what `torch.utils.flop_counter.FlopCounterMode` counts; everything
else (elementwise, normalisation, softmax, pooling, ...) is reported beside it, never mixed in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from aelab.trace.queries import module_parents, visible_calls
from aelab.trace.records import CallEvent, ParamInfo, Trace


@dataclass
class LayerRow:
    """One line of the table."""

    cid: int
    name: str
    type: str
    kind: str  # "module" | "function" | "sample"
    depth: int
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]]
    params: int
    trainable_params: int
    flops: int  # forward multiply-add work (matmul category)
    flops_other: int  # forward elementwise/normalisation/softmax/pooling/reduction
    flops_backward: int | None  # backward multiply-add work of this row; None when backward was not run
    output_bytes: int
    is_leaf: bool
    tied: list[str] = field(default_factory=list)
    failed: bool = False


@dataclass
class Totals:
    """Whole-model counts."""

    params: int
    trainable_params: int
    frozen_params: int
    param_bytes: int
    buffers: int
    buffer_bytes: int
    tied_params: int  # numel of parameters that share storage with one already counted
    flops_forward: int
    flops_forward_other: int
    flops_forward_by_category: dict[str, int]
    flops_backward: int | None  # None when backward was not run (--no-backward, or the forward failed)
    flops_backward_other: int | None
    flops_backward_by_category: dict[str, int]
    activation_bytes: int  # bytes written by forward kernels (views excluded)
    saved_bytes: int | None  # activations autograd keeps for backward (parameters excluded); None: not recorded
    not_counted: dict[str, int]  # aten op -> times run, for ops with no FLOP formula
    backward_ran: bool


@dataclass
class Summary:
    rows: list[LayerRow]
    totals: Totals


def backward_known(trace: Trace) -> bool:
    """Whether backward counts mean something: asked for, and the forward ran (0 then means nothing trains)."""
    return trace.backward_requested and trace.error is None


def owned_params(trace: Trace, call: CallEvent, by_module: dict[str, list[ParamInfo]] | None = None
                 ) -> list[ParamInfo]:
    """The parameters a module call owns (by name prefix), tied repeats included (`tied_to` set);
    none for function rows and for a module's second call (its parameters are on the first).
    `by_module` is `params_by_module(trace)`, for a caller asking of every call."""
    if call.kind != "module" or "#" in call.name:
        return []
    if by_module is not None:
        return by_module.get(call.module, [])
    prefix = call.module + "."
    return [p for p in trace.params + trace.shared_params if p.name.startswith(prefix)]


def params_by_module(trace: Trace) -> dict[str, list[ParamInfo]]:
    """Module path -> the parameters under it (its own and its descendants'), in `owned_params`' order."""
    out: dict[str, list[ParamInfo]] = {}
    for p in trace.params + trace.shared_params:
        parts = p.name.split(".")[:-1]
        for i in range(1, len(parts) + 1):
            out.setdefault(".".join(parts[:i]), []).append(p)
    return out


def summarize(trace: Trace) -> Summary:
    """Rows for every visible call and whole-model totals."""
    n = len(trace.calls)
    known = backward_known(trace)
    fwd_mm = [0] * n
    fwd_other = [0] * n
    bwd_mm = [0] * n
    for op in trace.ops:  # each op to the innermost call it ran in ...
        if op.call is None or op.category is None or op.phase == "loss":
            continue
        if op.phase == "forward":
            if op.category == "matmul":
                fwd_mm[op.call] += op.flops
            else:
                fwd_other[op.call] += op.flops
        elif op.category == "matmul":
            bwd_mm[op.call] += op.flops
    for call in reversed(trace.calls):  # ... then each call's to its parent: a parent opened before it (a lower
        if call.parent is not None:     # cid), so its children are all summed when it hands on its own total
            fwd_mm[call.parent] += fwd_mm[call.cid]
            fwd_other[call.parent] += fwd_other[call.cid]
            bwd_mm[call.parent] += bwd_mm[call.cid]

    rows = []
    by_module = params_by_module(trace)
    containers = module_parents(trace)
    for call in visible_calls(trace):
        owned = owned_params(trace, call, by_module)
        params = sum(p.numel for p in owned)
        trainable = sum(p.numel for p in owned if p.trainable)
        tied = [f"{p.name} = {p.tied_to}" for p in owned if p.tied_to is not None]
        rows.append(LayerRow(
            cid=call.cid, name=call.name, type=call.type, kind=call.kind,
            depth=call.depth, input_shapes=[t.shape for t in call.inputs],
            output_shapes=[t.shape for t in call.outputs],
            params=params, trainable_params=trainable, flops=fwd_mm[call.cid], flops_other=fwd_other[call.cid],
            flops_backward=bwd_mm[call.cid] if known else None, output_bytes=sum(t.nbytes for t in call.outputs),
            is_leaf=call.cid not in containers, tied=tied, failed=call.failed,
        ))
    return Summary(rows, totals(trace))


def totals(trace: Trace) -> Totals:
    """Whole-model totals; parameters and buffers count each storage once."""
    by_cat: dict[str, Counter[str]] = {"forward": Counter(), "backward": Counter()}
    not_counted: Counter[str] = Counter()
    activation = 0
    for op in trace.ops:
        if op.phase == "loss":
            continue
        if op.category is None:
            not_counted[op.name] += 1
            continue
        by_cat[op.phase][op.category] += op.flops
        if op.phase == "forward" and not op.is_view:
            in_ids = {t.tid for t in op.inputs}
            activation += sum(t.nbytes for t in op.outputs if t.tid not in in_ids)
    params = sum(p.numel for p in trace.params)
    trainable = sum(p.numel for p in trace.params if p.trainable)
    fwd, bwd = by_cat["forward"], by_cat["backward"]
    return Totals(
        params=params, trainable_params=trainable, frozen_params=params - trainable,
        param_bytes=sum(p.nbytes for p in trace.params), buffers=sum(b.numel for b in trace.buffers),
        buffer_bytes=sum(b.nbytes for b in trace.buffers), tied_params=sum(p.numel for p in trace.shared_params),
        flops_forward=fwd["matmul"], flops_forward_other=sum(v for k, v in fwd.items() if k != "matmul"),
        flops_forward_by_category=dict(fwd), flops_backward=bwd["matmul"] if backward_known(trace) else None,
        flops_backward_other=sum(v for k, v in bwd.items() if k != "matmul") if backward_known(trace) else None,
        flops_backward_by_category=dict(bwd),
        activation_bytes=activation,
        saved_bytes=sum(t.nbytes for t in trace.saved_for_backward) if trace.backward_requested else None,
        not_counted=dict(not_counted), backward_ran=trace.backward_ran,
    )
