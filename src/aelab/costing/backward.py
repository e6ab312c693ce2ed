"""Backward cost of a trainable subset: which gradient kernels run, split into input- and weight-gradient work.

Pure functions over two traces of the same model on the same inputs, one recorded with the chosen
`requires_grad` pattern and one with every parameter trainable. Nothing here runs a model; the
numbers are the backward kernels autograd really dispatched (the recorder's `phase == "backward"`
ops), so a frozen layer that still has to pass the gradient on is counted, and one autograd never
visits is not. `flops_*` are multiply-add work (category "matmul", 2 per multiply-add), exactly what
`torch.utils.flop_counter.FlopCounterMode` counts; other backward work (elementwise, normalisation)
is reported beside it as `*_other`.

How a backward kernel is split (`split_op`):
- `aten.convolution_backward` computes grad_input and grad_weight in one kernel; each part gets
  torch's own formula (`conv_backward_flop`) with a one-part output mask (the recorded mask and
  `transposed` flag the recorder keeps in `op.attrs`).
- any other kernel whose operands include a parameter (or a view of one, e.g. `Wᵀ`) computes a
  gradient w.r.t. an activation: input-gradient work (`grad_x = grad_y · W`).
- a kernel without parameter operands whose outputs are shaped like a parameter of its layer
  (possibly transposed, or with size-1 dims) computes that parameter's gradient:
  weight-gradient work (`grad_W = grad_yᵀ · x`, `grad_b = Σ grad_y`).
- everything else propagates the gradient: input-gradient work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from torch.utils.flop_counter import conv_backward_flop as _conv_backward_flop

from aelab.errors import ModelError
from aelab.inspection.summary import owned_params
from aelab.trace.queries import call_layers, parameter_tids
from aelab.trace.records import CallEvent, OpEvent, Trace

if TYPE_CHECKING:
    from aelab.costing.timing import Timing

#: torch's formula, called with shapes (its wrapper turns tensors into shapes; we already have shapes)
conv_backward_flop = cast(Any, _conv_backward_flop)


def _squeezed(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _param_shaped(shape: tuple[int, ...], params: set[tuple[int, ...]]) -> bool:
    s = _squeezed(shape)
    return any(s == _squeezed(p) or (len(p) == 2 and s == _squeezed(p[::-1])) for p in params)


def _conv_split(op: OpEvent) -> tuple[int, int]:
    """(input, weight) FLOPs of a convolution_backward, each by torch's formula, under the recorded mask."""
    g, x, w = (list(t.shape) for t in op.inputs[:3])
    mask, transposed = cast(list[bool], op.attrs["output_mask"]), bool(op.attrs["transposed"])

    def part(which: list[bool]) -> int:
        return int(conv_backward_flop(g, x, w, None, None, None, None, transposed, None, None, which,
                                      out_val=[x, w, None]))

    return (part([True, False, False]) if mask[0] else 0), (part([False, True, False]) if mask[1] else 0)


def split_op(op: OpEvent, params: set[int], layer_param_shapes: set[tuple[int, ...]]) -> tuple[int, int]:
    """(input-gradient, weight-gradient) FLOPs of one backward kernel (see the module docstring)."""
    if op.name == "aten.convolution_backward":
        return _conv_split(op)
    if any(t.tid in params for t in op.inputs):
        return op.flops, 0
    if op.outputs and layer_param_shapes and all(_param_shaped(t.shape, layer_param_shapes) for t in op.outputs):
        return 0, op.flops
    return op.flops, 0


# --- the result ---------------------------------------------------------------------------------------
@dataclass
class LayerCost:
    """One layer's forward and backward work under the pattern, and what autograd skipped against all-trainable."""

    name: str
    type: str
    params: int
    trainable_params: int
    flops_forward: int
    flops_backward_input: int
    flops_backward_weight: int
    flops_backward_other: int  # elementwise/normalisation backward work (not multiply-add)
    skipped_input: int  # multiply-add work all-trainable does here and this pattern does not
    skipped_weight: int
    ran: bool  # did any backward kernel run here under the pattern
    ran_all: bool  # ... and with every parameter trainable

    @property
    def flops_backward(self) -> int:
        return self.flops_backward_input + self.flops_backward_weight

    @property
    def status(self) -> str:
        """trains | passes (frozen, gradient flows through) | skipped | none (no backward even all-trainable)."""
        if self.flops_backward_weight or (self.trainable_params and self.ran):
            return "trains"
        if self.ran:
            return "passes"
        return "skipped" if self.ran_all else "none"


@dataclass
class CostReport:
    """Backward of one `requires_grad` pattern beside backward with every parameter trainable."""

    model: str
    inputs: list[tuple[int, ...]]
    trainable: list[str]  # parameter names that train under the pattern
    frozen: list[str]
    layers: list[LayerCost]
    flops_forward: int
    flops_backward: int
    flops_backward_all: int
    flops_backward_other: int
    flops_backward_other_all: int
    saved_bytes: int  # activations autograd keeps for this pattern's backward (parameters excluded)
    saved_bytes_all: int
    params_trainable: int
    params_total: int
    unattributed: int = 0  # backward multiply-add work outside any layer (e.g. in the root's own ops)
    explanation: list[str] = field(default_factory=list)
    timing: Timing | None = None  # when measure=True (--measure) ran
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.flops_backward / self.flops_backward_all if self.flops_backward_all else 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model, "inputs": [list(s) for s in self.inputs],
            "trainable": self.trainable, "frozen": self.frozen,
            "params_trainable": self.params_trainable, "params_total": self.params_total,
            "flops_forward": self.flops_forward, "flops_backward": self.flops_backward,
            "flops_backward_all": self.flops_backward_all,
            "flops_backward_ratio": round(self.ratio, 6) if self.flops_backward_all else None,  # 0/0: null, not 0
            "flops_backward_other": self.flops_backward_other,
            "flops_backward_other_all": self.flops_backward_other_all,
            "saved_bytes": self.saved_bytes, "saved_bytes_all": self.saved_bytes_all,
            "flops_backward_unattributed": self.unattributed,
            "layers": [{
                "name": lc.name, "type": lc.type, "params": lc.params, "trainable_params": lc.trainable_params,
                "status": lc.status, "flops_forward": lc.flops_forward,
                "flops_backward_input": lc.flops_backward_input, "flops_backward_weight": lc.flops_backward_weight,
                "flops_backward_other": lc.flops_backward_other,
                "skipped_input": lc.skipped_input, "skipped_weight": lc.skipped_weight,
            } for lc in self.layers],
            "explanation": self.explanation, "notes": self.notes,
        }
        if self.timing is not None:
            out["timing"] = self.timing.to_dict()
        return out


@dataclass
class _Tally:
    forward: int = 0
    input: int = 0
    weight: int = 0
    other: int = 0
    ran: bool = False


def _tally(trace: Trace) -> tuple[dict[str, _Tally], dict[str, CallEvent], int]:
    """Per layer name: forward matmul, backward input/weight matmul, other backward; and the unattributed rest."""
    params = parameter_tids(trace)
    layers = call_layers(trace)

    def layer_of(cid: int | None) -> int | None:
        return None if cid is None else layers[cid]

    consumed: dict[int, set[tuple[int, ...]]] = {}
    for op in trace.ops:
        if op.phase == "forward":
            layer = layer_of(op.call)
            if layer is not None:
                consumed.setdefault(layer, set()).update(t.shape for t in op.inputs if t.tid in params)
    tallies: dict[str, _Tally] = {}
    calls: dict[str, CallEvent] = {}
    unattributed = 0
    for op in trace.ops:
        if op.phase == "loss":
            continue
        layer = layer_of(op.call)
        if layer is None:
            if op.phase == "backward" and op.category == "matmul":
                unattributed += op.flops
            continue
        call = trace.calls[layer]
        calls.setdefault(call.name, call)
        tally = tallies.setdefault(call.name, _Tally())
        if op.phase == "forward":
            tally.forward += op.flops if op.category == "matmul" else 0
            continue
        if op.name != "aten.detach":  # detach: autograd unpacking a saved tensor, not gradient work
            tally.ran = True
        if op.category != "matmul":
            tally.other += op.flops
            continue
        part_in, part_w = split_op(op, params, consumed.get(layer, set()))
        tally.input += part_in
        tally.weight += part_w
    return tallies, calls, unattributed


def saved_bytes(trace: Trace) -> int:
    """Bytes of activations autograd keeps for backward (the recorder lists each tensor once, parameters and
    their views left out), copies of parameters (`parameter_tids`) excluded too."""
    params = parameter_tids(trace)
    return sum(t.nbytes for t in trace.saved_for_backward if t.tid not in params)


def backward_cost(pattern: Trace, everything: Trace, *, model: str | None = None) -> CostReport:
    """Compare backward under a `requires_grad` pattern with backward when every parameter trains."""
    for t, what in ((pattern, "the pattern"), (everything, "all-trainable")):
        if t.error is not None:
            first = t.error.message.strip().splitlines()[0] if t.error.message.strip() else ""
            raise ModelError(f"the forward failed ({t.error.exc_type}: {first}) while recording {what}; "
                             "run `aelab doctor` on the same model and inputs")
    tallies, calls, unattributed = _tally(pattern)
    tallies_all, _, _ = _tally(everything)
    layers = []
    for name, tally in tallies.items():
        call = calls[name]
        owned = owned_params(pattern, call)
        total, trainable = sum(p.numel for p in owned), sum(p.numel for p in owned if p.trainable)
        base = tallies_all.get(name, _Tally())
        layers.append(LayerCost(
            name=name, type=call.type, params=total, trainable_params=trainable, flops_forward=tally.forward,
            flops_backward_input=tally.input, flops_backward_weight=tally.weight, flops_backward_other=tally.other,
            skipped_input=max(0, base.input - tally.input), skipped_weight=max(0, base.weight - tally.weight),
            ran=tally.ran, ran_all=base.ran))

    def matmul(trace: Trace, phase: str) -> int:
        return sum(op.flops for op in trace.ops if op.phase == phase and op.category == "matmul")

    def other(trace: Trace) -> int:
        return sum(op.flops for op in trace.ops
                   if op.phase == "backward" and op.category not in (None, "matmul"))

    cost = CostReport(
        model=model or pattern.model_type, inputs=[t.shape for t in pattern.inputs],
        trainable=[p.name for p in pattern.params if p.trainable],
        frozen=[p.name for p in pattern.params if not p.trainable], layers=layers,
        flops_forward=matmul(pattern, "forward"), flops_backward=matmul(pattern, "backward"),
        flops_backward_all=matmul(everything, "backward"), flops_backward_other=other(pattern),
        flops_backward_other_all=other(everything), saved_bytes=saved_bytes(pattern),
        saved_bytes_all=saved_bytes(everything),
        params_trainable=sum(p.numel for p in pattern.params if p.trainable),
        params_total=sum(p.numel for p in pattern.params), unattributed=unattributed,
        notes=list(dict.fromkeys(pattern.notes + everything.notes)))
    if not pattern.backward_ran:
        cost.notes.append("nothing trainable under this pattern (or no differentiable output): no backward ran")
    return cost
