"""The data path of a trace: which layer's output feeds which, from the model's input to its output.

Units are the leaf-level calls (leaf modules, and functions/samples called by modules that have
children: the rows of the table that are not containers). A value is one tensor as one unit left it
(an in-place op makes a new value of the same tensor). Edges follow tensor identities (`tid`).
Pure functions over a `Trace`; nothing here runs a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from aelab.trace.queries import module_parents, visible_calls
from aelab.trace.records import CallEvent, Trace

# --- what kinds of units there are (base names: "Tensor.view" -> "view", "F.relu" -> "relu", "Conv1d" -> "conv1d")
#: rearrange without changing a single value: not layers that compress or widen anything
MOVE = frozenset({"transpose", "permute", "view", "reshape", "flatten", "unflatten", "contiguous", "squeeze",
                  "unsqueeze", "t", "mt", "movedim", "moveaxis", "swapaxes", "swapdims", "view_as", "reshape_as",
                  "identity", "clone", "detach", "to", "float", "double", "half", "bfloat16", "type_as", "type"})
#: copy values (more numbers, no more information)
COPY = frozenset({"expand", "expand_as", "repeat", "tile", "broadcast_to", "broadcast_tensors", "repeat_interleave"})
#: read a part
SELECT = frozenset({"getitem", "chunk", "split", "narrow", "select", "index_select", "unbind", "tensor_split"})
#: their output depends only on the input's shape, never on its values: no data flows through them
SHAPE_ONLY = frozenset({"randn_like", "rand_like", "randint_like", "zeros_like", "ones_like", "empty_like",
                        "full_like", "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "normal_",
                        "uniform_", "bernoulli_", "exponential_", "fill_", "zero_", "random_"})
#: draw random numbers: a reparameterisation z = mean + eps * sigma starts at one of these
NOISE = frozenset({"randn_like", "rand_like", "randn", "rand", "normal", "normal_", "uniform_"})
#: functions that apply a weight tensor (a unit is also weighted when it is a module owning parameters)
WEIGHT_FUNCS = frozenset({"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                          "conv_transpose3d", "matmul", "mm", "bmm", "einsum", "addmm", "bilinear", "embedding",
                          "lstm", "gru", "rnn_tanh", "rnn_relu"})
#: elementwise functions of two tensors; a much smaller operand is a broadcast gate or statistic
ELEMENTWISE_JOIN = frozenset({"add", "sub", "mul", "div", "true_divide", "where", "addcmul", "maximum", "minimum",
                              "iadd", "imul", "rsub", "radd", "rmul", "truediv", "rtruediv"})
#: how a layer reads its input's axes: (N, C, *positions) or (N, *positions, C)
CHANNELS_FIRST = frozenset({"conv1d", "conv2d", "conv3d", "convtranspose1d", "convtranspose2d", "convtranspose3d",
                            "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "batchnorm1d",
                            "batchnorm2d", "batchnorm3d", "instancenorm1d", "instancenorm2d", "instancenorm3d",
                            "groupnorm", "group_norm", "maxpool1d", "maxpool2d", "maxpool3d", "avgpool1d",
                            "avgpool2d", "avgpool3d", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d",
                            "avg_pool2d", "avg_pool3d", "upsample", "interpolate", "pixelshuffle", "pixel_shuffle"})
#: read integer ids at each position: (N, *positions)
IDS = frozenset({"embedding", "embeddingbag"})
FEATURES_LAST = frozenset({"linear", "layernorm", "layer_norm", "rmsnorm", "rms_norm", "lstm", "gru", "rnn",
                           "multiheadattention", "bilinear"})


def base_name(type_: str) -> str:
    """'Tensor.__getitem__ ([])' -> 'getitem', 'F.relu' -> 'relu', 'Conv1d' -> 'conv1d', 'Normal.rsample' -> ..."""
    t = type_.split(" (")[0]
    for prefix in ("Tensor.", "torch.", "F.", "nn."):
        if t.startswith(prefix):
            t = t[len(prefix):]
            break
    return t.strip("_").lower()


_STEERING = ("int", "uint", "bool")  # dtypes of indices, masks and counts (`Value.dtype`: "int64", "bool")


@dataclass(init=False)
class Value:
    """One tensor as one unit produced it (or a trace input / a weight when `producer` is None)."""

    vid: int
    tid: int
    shape: tuple[int, ...]
    dtype: str
    producer: int | None  # unit index
    consumers: list[int]
    numel: int  # the analyses ask it of every value, many times: computed once

    def __init__(self, vid: int, tid: int, shape: tuple[int, ...], dtype: str, producer: int | None) -> None:
        # one per tensor of every analysed trace: a plain __init__ is half a dataclass's with a factory field
        self.vid, self.tid, self.shape, self.dtype, self.producer = vid, tid, shape, dtype, producer
        self.consumers = []
        self.numel = math.prod(shape)


@dataclass
class Unit:
    """One leaf-level call, in execution order."""

    index: int
    call: CallEvent
    base: str  # base name of its type, see `base_name`
    inputs: list[int]  # value ids that carry data into it (shape-only inputs dropped)
    outputs: list[int]
    weighted: bool = False
    children: tuple[str, ...] = ()  # base names of the functions a leaf module called
    straight_through: bool = False  # `z + (z_q - z).detach()`: its value is z_q's; z only gets the gradient

    @property
    def name(self) -> str:
        return self.call.name or "<model>"

    @property
    def is_move(self) -> bool:
        """A pure rearrangement: a movement function, a straight-through estimator (it hands on the value it
        estimates), or a leaf module that only calls movement functions."""
        if self.base in MOVE or self.straight_through:
            return True
        return self.call.kind == "module" and not self.weighted and bool(self.children) and all(
            c in MOVE for c in self.children)

    def axes(self) -> str | None:
        """'first' (N, C, *positions), 'last' (N, *positions, C), 'ids' (N, *positions), or None; custom modules
        by what they call."""
        for b in (self.base, *self.children):
            if b in IDS:
                return "ids"
            if b in CHANNELS_FIRST:
                return "first"
            if b in FEATURES_LAST:
                return "last"
        return None


class DataFlow:
    """Units and values of a trace, the primary input `x`, the chosen output `y`, and reachability."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.values: list[Value] = []
        self.units: list[Unit] = []
        self._build()
        self._straight_through()
        self.batch = trace.inputs[0].shape[0] if trace.inputs and trace.inputs[0].shape else 1
        self.x: int | None = None
        self.from_x: set[int] = set()
        self.y: int | None = None
        for i in range(len(trace.inputs)):  # the first input that some output depends on (values 0.. are inputs)
            self.x, self.from_x = i, self.downstream({i})
            self.y = self._pick_output()
            if self.y is not None:
                break
        self.to_y = self.upstream(self.y) if self.y is not None else set()
        self._on_path = [not self.from_x.isdisjoint(u.inputs) and not self.to_y.isdisjoint(u.outputs)
                         for u in self.units]  # `unit_on_path`, asked of each unit many times
        self.noise_units = [u.index for u in self.units if u.base in NOISE and u.call.kind == "function"]
        self.noisy = self.downstream({v for i in self.noise_units for v in self.units[i].outputs})
        for u in self.units:
            u.weighted = u.weighted or (u.base in WEIGHT_FUNCS and any(v not in self.from_x for v in u.inputs)
                                        and any(v in self.from_x for v in u.inputs))
        self.side = self._side_values()
        self._main = (self.from_x & self.to_y) - self.side  # `main`, asked of values many times

    # --- building -----------------------------------------------------------------------------
    def _build(self) -> None:
        trace = self.trace
        current: dict[int, int] = {}
        for t in trace.inputs:
            current[t.tid] = self._new_value(t.tid, t.shape, t.dtype, None)
        containers = module_parents(trace)
        calls = [c for c in visible_calls(trace) if c.kind != "module" or c.cid not in containers]
        if not calls and trace.calls and trace.calls[0].outputs:
            calls = [trace.calls[0]]  # the whole model is one leaf layer
        owners = {p.module for p in (*trace.params, *trace.shared_params)}
        # every module path that is an owner or holds one (what `weighted` asks of each call)
        holders = {".".join(parts[:i]) for parts in (o.split(".") for o in owners) for i in range(1, len(parts) + 1)}
        bases: dict[str, str] = {}  # type -> base name: most calls share their type with others

        def base_of(type_: str) -> str:
            if type_ not in bases:
                bases[type_] = base_name(type_)
            return bases[type_]

        values = self.values
        for call in calls:
            base = base_of(call.type)
            index = len(self.units)
            inputs: list[int] = []
            for t in call.inputs:
                vid = current.get(t.tid)
                if vid is None:
                    vid = current[t.tid] = self._new_value(t.tid, t.shape, t.dtype, None)
                if vid not in inputs:
                    inputs.append(vid)
            if base in SHAPE_ONLY:
                inputs = []
            outputs: list[int] = []
            made: set[int] = set()
            for t in call.outputs:
                if t.tid in made:
                    continue
                made.add(t.tid)
                vid = current[t.tid] = self._new_value(t.tid, t.shape, t.dtype, index)
                outputs.append(vid)
            for v in inputs:
                values[v].consumers.append(index)
            weighted = call.kind == "module" and bool(owners) and (call.module == "" or call.module in holders)
            children = tuple([base_of(trace.calls[k].type) for k in call.children]) if call.kind == "module" else ()
            self.units.append(Unit(index, call, base, inputs, outputs, weighted, children))
        self._current = current

    def _straight_through(self) -> None:
        """A straight-through estimator `z + (z_q - z).detach()` equals z_q: its forward value does not depend
        on z (z only receives z_q's gradient), so z's edges into it carry no data. Without this a VQ-VAE's z
        looks like a skip connection around the quantiser."""
        for unit in self.units:
            if unit.base not in ("add", "radd") or len(unit.inputs) != 2:
                continue
            for z, d in (unit.inputs, unit.inputs[::-1]):
                detach = self.producer_unit(d)
                if detach is None or detach.base != "detach" or len(detach.inputs) != 1:
                    continue
                sub = self.producer_unit(detach.inputs[0])
                if sub is None or sub.base != "sub" or len(sub.inputs) != 2 or sub.inputs[1] != z:
                    continue
                for reader in (unit, sub):
                    reader.inputs.remove(z)
                    self.values[z].consumers.remove(reader.index)
                    reader.straight_through = True
                break

    def _new_value(self, tid: int, shape: tuple[int, ...], dtype: str, producer: int | None) -> int:
        self.values.append(Value(len(self.values), tid, shape if type(shape) is tuple else tuple(shape), dtype,
                                 producer))
        return len(self.values) - 1

    def downstream(self, start: set[int]) -> set[int]:
        """`start` and every value computed from it."""
        seen = set(start)
        for unit in self.units:  # units are in execution order, so one sweep suffices
            if not seen.isdisjoint(unit.inputs):
                seen.update(unit.outputs)
        return seen

    def upstream(self, end: int) -> set[int]:
        """`end` and every value it was computed from."""
        seen = {end}
        for unit in reversed(self.units):
            if not seen.isdisjoint(unit.outputs):
                seen.update(unit.inputs)
        return seen

    def _pick_output(self) -> int | None:
        """The reconstruction if an output has the input's shape (or size per sample), else the first output
        that depends on the input."""
        if self.x is None:
            return None
        outs = [self._current[t.tid] for t in self.trace.outputs if t.tid in self._current]
        outs = [v for v in outs if v in self.from_x and v != self.x]
        x = self.values[self.x]
        for same in (lambda v: v.shape == x.shape, lambda v: v.numel == x.numel):
            for v in outs:
                if same(self.values[v]) and not self._feeds_another(v, outs):
                    return v
        return outs[0] if outs else None

    def _feeds_another(self, vid: int, outs: list[int]) -> bool:
        """An output another output is computed from is an intermediate the model also returns (an encoder's last
        state beside a decoder's logits), not a reconstruction, even when its size matches the input's."""
        reach = self.downstream({vid})
        return any(o in reach for o in outs if o != vid)

    def _side_values(self) -> set[int]:
        """Values that only gate or normalise the main data by broadcasting (a squeeze-excitation branch, a
        hand-written mean or variance): never the representation itself."""
        side: set[int] = set()
        path = self.from_x & self.to_y
        for value in reversed(self.values):
            if value.vid not in path or value.vid == self.y:
                continue
            users = [self.units[u] for u in value.consumers if self._on_path[u]]
            if users and all(self._gates(u, value, path) or side.issuperset(path.intersection(u.outputs))
                             for u in users):
                side.add(value.vid)
        return side

    def _gates(self, unit: Unit, value: Value, path: set[int]) -> bool:
        if unit.base not in ELEMENTWISE_JOIN:
            return False
        return any(self.values[v].numel > value.numel for v in unit.inputs if v != value.vid and v in path)

    # --- queries ------------------------------------------------------------------------------
    def on_path(self, vid: int) -> bool:
        return vid in self.from_x and vid in self.to_y

    def unit_on_path(self, index: int) -> bool:
        return self._on_path[index]

    def per_sample(self, vid: int) -> int | None:
        n = self.values[vid].numel
        return n // self.batch if self.batch and n % self.batch == 0 else None

    def per_sample_text(self, vid: int) -> str:
        """'1,024 per sample', or what is known when the batch does not divide the value (never a 0)."""
        n = self.per_sample(vid)
        numel = self.values[vid].numel
        return f"{n:,} per sample" if n is not None else f"{numel:,} in all, not divisible by the batch"

    def order(self, vid: int) -> int:
        """Position of a value on the time line: the index of the unit that produced it (-1: an input)."""
        p = self.values[vid].producer
        return -1 if p is None else p

    def main(self, vid: int) -> bool:
        return vid in self._main

    def best_path(self, src: int, dst: int) -> list[int] | None:
        """Values from src to dst along the route through the most weighted layers (then the fewest units):
        through the convolutions of a residual block, not around them; through the mean, not the variance.
        First of all through the fewest integer or bool values: indices, masks and counts steer the data, they
        are not it (an MoE's routing, gate and all, is more layers than its experts' input; a VQ code is taken
        only where no floating route, a straight-through estimator, goes around it)."""
        score: dict[int, tuple[int, int, int]] = {src: (0, 0, 0)}
        back: dict[int, int] = {}
        for unit in self.units[self.order(src) + 1:]:
            ins = [v for v in unit.inputs if v in score and self.main(v)]
            if not ins:
                continue
            best = max(ins, key=lambda v: score[v])
            ints, weighted, units = score[best]
            weighted += 1 if unit.weighted else 0
            for out in unit.outputs:
                cand = (ints - self.values[out].dtype.startswith(_STEERING), weighted, units - 1)
                if (self.main(out) or out == dst) and (out not in score or cand > score[out]):
                    score[out] = cand
                    back[out] = best
        if dst not in score:
            return None
        path = [dst]
        while path[-1] != src:
            path.append(back[path[-1]])
        return path[::-1]

    def last_use(self, vid: int) -> int:
        """The last unit on the path that reads `vid` (the number of units for the output itself, -1 if none)."""
        return self._last_uses[vid]

    @cached_property
    def _last_uses(self) -> list[int]:
        """`last_use` of every value, in one sweep (`live_after`, `live_totals` ask it of each value)."""
        out = [-1] * len(self.values)
        for unit in self.units:  # in execution order: the last reader on the path writes last
            if self._on_path[unit.index]:
                for v in unit.inputs:
                    out[v] = unit.index
        if self.y is not None:
            out[self.y] = len(self.units)
        return out

    def live_after(self, vid: int) -> list[int]:
        """Main-path values that exist right after `vid` is made and are still read later: `vid` and whatever
        bypasses it (skip connections, the input itself in a residual)."""
        point = self.order(vid)
        return [v.vid for v in self.values
                if self.main(v.vid) and self.order(v.vid) <= point and (self.last_use(v.vid) > point or v.vid == vid)]

    def live_totals(self) -> list[int]:
        """Per point (index + 1 of the unit just run; 0: before any), the values per sample then alive on the path."""
        diff = [0] * (len(self.units) + 3)
        for value in self.values:
            size = self.per_sample(value.vid) if self.main(value.vid) else None
            if size is None:
                continue
            start, end = self.order(value.vid), self.last_use(value.vid)
            if end > start:
                diff[start + 1] += size
                diff[end + 1] -= size
        totals, running = [], 0
        for d in diff[:-1]:
            running += d
            totals.append(running)
        return totals

    def producer_unit(self, vid: int) -> Unit | None:
        p = self.values[vid].producer
        return None if p is None else self.units[p]


# --- following one tensor back (the shape doctor) -------------------------------------------------------------
def walk_back(flow: DataFlow, tid: int, limit: int = 64) -> list[CallEvent]:
    """The calls that made tensor `tid` (its latest value), nearest first, each one's first data input followed,
    up to a model input."""
    vid = next((v.vid for v in reversed(flow.values) if v.tid == tid), None)
    path: list[CallEvent] = []
    while vid is not None and len(path) < limit:
        unit = flow.producer_unit(vid)
        if unit is None or not unit.inputs:
            break
        path.append(unit.call)
        vid = unit.inputs[0]
    return path
