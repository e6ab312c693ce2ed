"""The trace: what happened when a model ran once. Plain records, no torch objects inside.

Analyses read these and nothing else, so they are pure functions that need no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, init=False)
class TensorInfo:
    """One tensor seen during the run: an identity within the trace, shape, dtype, bytes."""

    tid: int
    shape: tuple[int, ...]
    dtype: str
    nbytes: int

    def __init__(self, tid: int, shape: tuple[int, ...], dtype: str, nbytes: int) -> None:
        # one is made per tensor of a trace: filling __dict__ costs a third of a frozen dataclass's setattrs
        d = self.__dict__
        d["tid"], d["shape"], d["dtype"], d["nbytes"] = tid, shape, dtype, nbytes


@dataclass(init=False)
class OpEvent:
    """One aten op that ran, forward or backward, with the calls enclosing it."""

    index: int
    name: str  # "aten.mm"
    phase: str  # "forward" | "backward"
    call: int | None  # innermost enclosing CallEvent.cid (for backward: the call that created the grad node)
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    category: str | None  # None: no FLOP formula (not counted)
    flops: int
    is_view: bool
    attrs: dict[str, object]  # non-tensor arguments some analyses need

    def __init__(self, index: int, name: str, phase: str, call: int | None, inputs: tuple[TensorInfo, ...],
                 outputs: tuple[TensorInfo, ...], category: str | None, flops: int, is_view: bool = False,
                 attrs: dict[str, object] | None = None) -> None:
        # one per op of every trace: plain assignments, not a dataclass __init__ with a factory field
        self.index, self.name, self.phase, self.call, self.inputs = index, name, phase, call, inputs
        self.outputs, self.category, self.flops, self.is_view = outputs, category, flops, is_view
        self.attrs = {} if attrs is None else attrs


@dataclass(init=False)
class CallEvent:
    """A module call, a torch function call, or a distribution sample (rsample/sample)."""

    cid: int
    kind: str  # "module" | "function" | "sample"
    name: str  # module path ("encoder.local_net.1"), or "<module path>.<function>" for functions
    type: str  # class name ("Linear") or function name ("sigmoid", "Tensor.view", "Normal.rsample")
    parent: int | None
    depth: int
    module: str  # module path this call is or runs inside ("" is the root)
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    op_start: int
    op_end: int
    children: list[int]
    failed: bool

    def __init__(self, cid: int, kind: str, name: str, type: str, parent: int | None, depth: int, module: str,
                 inputs: list[TensorInfo] | None = None, outputs: list[TensorInfo] | None = None, op_start: int = 0,
                 op_end: int = 0, children: list[int] | None = None, failed: bool = False) -> None:
        # one per call of every trace: plain assignments, not a dataclass __init__ with three factory fields
        self.cid, self.kind, self.name, self.type, self.parent, self.depth = cid, kind, name, type, parent, depth
        self.module, self.op_start, self.op_end, self.failed = module, op_start, op_end, failed
        self.inputs = [] if inputs is None else inputs
        self.outputs = [] if outputs is None else outputs
        self.children = [] if children is None else children

    @property
    def is_leaf(self) -> bool:
        return not self.children


@dataclass(frozen=True, init=False)
class ParamInfo:
    """A parameter (or buffer), counted once per storage; `tied_to` names the first owner of a shared one."""

    name: str
    module: str
    shape: tuple[int, ...]
    numel: int
    nbytes: int
    trainable: bool
    tied_to: str | None = None

    def __init__(self, name: str, module: str, shape: tuple[int, ...], numel: int, nbytes: int, trainable: bool,
                 tied_to: str | None = None) -> None:
        d = self.__dict__  # one per parameter of every trace: as TensorInfo, not a frozen dataclass's setattrs
        d["name"], d["module"], d["shape"], d["numel"], d["nbytes"] = name, module, shape, numel, nbytes
        d["trainable"], d["tied_to"] = trainable, tied_to


@dataclass(frozen=True)
class DistributionInfo:
    """A distribution object a method handed on (diffusers' `DiagonalGaussianDistribution`, a
    `torch.distributions.Normal`): its class and its tensor attributes (`mean`, `logvar`, `loc`, ...)."""

    type: str
    fields: dict[str, TensorInfo]


@dataclass(frozen=True)
class MethodCall:
    """A call of the model's own `encode()` / `decode()` during the forward: where the model says its encoder
    ends and its decoder begins. `calls` is the range of `Trace.calls` indices made inside it."""

    name: str  # "encode" | "decode"
    type: str  # "AutoencoderKL.encode"
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    calls: tuple[int, int]  # [first, end) cids
    distributions: tuple[DistributionInfo, ...] = ()


@dataclass(frozen=True)
class TraceError:
    """A forward that raised: where (innermost call path and op) and the original error."""

    exc_type: str
    message: str
    call_stack: tuple[int, ...]  # cids, outermost first
    op: str | None  # the aten op that raised, if one did
    op_inputs: tuple[TensorInfo, ...] = ()
    function: str | None = None  # the torch function that raised, if one did
    function_inputs: tuple[TensorInfo, ...] = ()


@dataclass(frozen=True)
class Read:
    """One value the program read during the run (`.item()`, `.all()`, `nonzero`), and whose answer it got."""

    op: str  # "aten._local_scalar_dense"
    module: str  # the module path running when it was read ("" = the root)
    taint: int  # aelab.trace.shadow RANDOM | SYNTHETIC | REPLAYED bits of the value read; 0 = exact

    @property
    def random(self) -> bool:
        return bool(self.taint & 1)


@dataclass(frozen=True)
class HostDraw:
    """Random numbers the run drew outside torch, from Python's `random` or NumPy (`aelab.trace.hostrng`)."""

    rng: str  # "numpy" | "python"
    call: str  # "np.random.rand", "random.uniform", "its Generator `rng`"; "" when only the RNG's state showed it
    module: str | None  # the module path running ("" = the root); None: not placed (seen only by its state)
    training: bool  # that module was in training mode (--eval may make the draw steer nothing)
    count: int = 1  # calls of `call` there


@dataclass
class Trace:
    """Everything recorded from one run of a model."""

    model_type: str
    execution: str  # "meta" | "fake" | "real"
    inputs: list[TensorInfo]
    input_names: list[str]
    outputs: list[TensorInfo]
    calls: list[CallEvent]
    ops: list[OpEvent]
    params: list[ParamInfo]
    buffers: list[ParamInfo]
    shared_params: list[ParamInfo] = field(default_factory=list)  # repeats of a storage already counted
    saved_for_backward: list[TensorInfo] = field(default_factory=list)
    backward_ran: bool = False
    backward_requested: bool = True  # False under --no-backward: backward counts are unknown, not zero
    error: TraceError | None = None
    notes: list[str] = field(default_factory=list)
    module_types: dict[str, str] = field(default_factory=dict)  # path -> class name, for every named module
    methods: list[MethodCall] = field(default_factory=list)  # the model's encode()/decode() calls, in order
    reads: list[Read] = field(default_factory=list)  # values the program read, answered without the weights
    probes: dict[str, str] = field(default_factory=dict)  # op -> why its meta/fake kernel refused (CPU ran it)
    host_draws: list[HostDraw] = field(default_factory=list)  # draws from Python's `random` or NumPy

    def call(self, cid: int) -> CallEvent:
        return self.calls[cid]

    def path(self, cid: int) -> list[CallEvent]:
        """The calls from the outermost to `cid`."""
        out = []
        current: int | None = cid
        while current is not None:
            out.append(self.calls[current])
            current = self.calls[current].parent
        return out[::-1]
