"""Record the life of every tensor storage during whole training steps, on fake or meta tensors.

One step is what a training loop does: forward (under autocast when asked), the loss, `backward()`,
`optimizer.step()`, `optimizer.zero_grad(set_to_none=True)`. It runs for real on fake/meta tensors,
so autograd, autocast and `torch.optim` behave exactly as they do on real ones, and nothing is
allocated. A `TorchDispatchMode` sees every aten op; each new storage an op returns is born there,
and a weak reference on the storage says when it dies. So views share their base's storage,
in-place ops reuse it, saved tensors die when their autograd node has run, gradients accumulate
into one buffer, the optimizer's state appears on the first step and `.grad` dies at `zero_grad`.

Kernels whose fake/meta implementation returns a smaller buffer than the real one (the oneDNN LSTM
workspace) are corrected here from the real kernel's size, and each correction is listed.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import unset_fake_temporarily
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from aelab.trace import fastmeta
from aelab.trace.shadow import NOTHING, Shadow, _kind
from aelab.trace.tensors import flatten_tensors


class _WeakKnown(dict[int, Any]):
    """`Shadow._known` holding its stand-ins weakly: a known mask must die when the program drops it, as on
    real tensors, or the recording would keep it alive (entries are (tensor, value, taint) to the shadow)."""

    def __setitem__(self, key: int, entry: tuple[torch.Tensor, torch.Tensor, int]) -> None:
        t, value, taint = entry
        me = weakref.ref(self)

        def gone(_ref: Any, key: int = key, me: Any = me) -> None:
            table = me()
            if table is not None and dict.get(table, key, (None,))[0] is _ref:
                dict.pop(table, key, None)

        super().__setitem__(key, (weakref.ref(t, gone), value, taint))

    def get(self, key: int, default: Any = None) -> Any:
        hit = super().get(key)
        return default if hit is None else (hit[0](), hit[1], hit[2])

    def pop(self, key: int, default: Any = None) -> Any:
        hit = super().pop(key, None)
        return default if hit is None else (hit[0](), hit[1], hit[2])


class ValueReadError(Exception):
    """The step reads a tensor value that depends on the weights (the op, and the module it ran in)."""

#: optimizer names -> (class, keyword arguments); the learning rate is irrelevant to memory
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {"lr": 1e-3}),
    "sgd-momentum": ("SGD", {"lr": 1e-3, "momentum": 0.9}),
    "adam": ("Adam", {"lr": 1e-3}),
    "adamw": ("AdamW", {"lr": 1e-3}),
}
AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PHASES = ("forward", "loss", "backward", "optimizer", "zero_grad")


@dataclass
class Storage:
    """One storage: its bytes, what it is, where it was born and died (event indices)."""

    sid: int
    nbytes: int
    kind: str  # parameter | buffer | input | activation | temporary | gradient | optimizer_state | amp_copy
    step: int  # the step it was born in (0: before the first step)
    phase: str  # phase at birth ("setup" for what existed before the steps)
    module: str  # module scope at birth ("" root)
    op: str  # the aten op that returned it first
    saved_by: str | None = None  # the module whose forward saved it for backward
    correction: int = 0  # bytes added because the fake kernel under-reports the real one


@dataclass(frozen=True)
class Op:
    """One aten op of the step, in order: where it ran."""

    name: str
    step: int
    phase: str
    module: str


@dataclass
class StepLog:
    """Every storage and every birth/death, in order, over the recorded steps."""

    storages: list[Storage]
    ops: list[Op]
    events: list[tuple[int, int, int]]  # (index of the last op recorded, sid, +1 born or -1 died)
    marks: dict[str, int] = field(default_factory=dict)  # part of the run -> index into `events` where it begins
    outputs: dict[str, int] = field(default_factory=dict)  # module path -> bytes of its outputs (first step)
    corrections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- corrections of fake kernels -------------------------------------------------------------------
#: above this (estimated from batches 1 and 2) the workspace is extrapolated instead of measured
MEASURE_LIMIT = 1 << 30


@functools.lru_cache(maxsize=256)
def _measured_mkldnn_workspace(shapes: tuple[Any, ...], dtype: torch.dtype) -> tuple[int, bool]:
    """(nbytes, measured) of the workspace `aten.mkldnn_rnn_layer` returns on CPU for these argument
    shapes: the real kernel runs once on zeros (its size is page-aligned per part, not affine in the
    batch); a workspace estimated above `MEASURE_LIMIT` from batches 1 and 2 is extrapolated instead."""
    (inp, w0, w1, w2, w3, hx, cx), rest = shapes[:7], shapes[7:]
    batch = hx[0]
    batch_dim = 1 if inp[1] == batch else 0

    def run(b: int) -> int:
        def z(shape: tuple[int, ...], bdim: int | None) -> torch.Tensor:
            s = list(shape)
            if bdim is not None:
                s[bdim] = b
            return torch.zeros(s, dtype=dtype)

        with unset_fake_temporarily():
            t = [z(inp, batch_dim), z(w0, None), z(w1, None), z(w2, None), z(w3, None), z(hx, 0), z(cx, 0)]
            out = torch.ops.aten.mkldnn_rnn_layer(*t, *(list(x) if isinstance(x, tuple) else x for x in rest))
            return int(out[3].untyped_storage().nbytes())

    one, two = run(1), run(2)
    estimate = one + (two - one) * (batch - 1)
    if estimate > MEASURE_LIMIT:
        return estimate, False
    return run(batch), True


def _real_mkldnn_bytes(args: Sequence[Any]) -> tuple[int, bool]:
    shapes: list[Any] = []
    for a in args[:7]:
        shapes.append(tuple(int(d) for d in a.shape) if isinstance(a, torch.Tensor) else None)
    rest = tuple(tuple(x) if isinstance(x, list) else x for x in args[7:])
    return _measured_mkldnn_workspace((*shapes, *rest), args[0].dtype)


#: normalisation ops whose saved statistics FakeTensor types wrongly -> index of their weight argument
_NORM_WEIGHT: dict[str, int] = {"native_batch_norm": 1, "native_layer_norm": 2}


# --- the recording -----------------------------------------------------------------------------------
class _Lifetimes(TorchDispatchMode):
    """Births of the storages ops return; deaths come from weak references."""

    def __init__(self, log: StepLog, where: Callable[[], tuple[int, str, str]], shadow: Shadow | None = None,
                 meta: bool = False) -> None:
        super().__init__()
        self.log = log
        self.where = where
        self.shadow = shadow  # real values of what does not depend on the weights (the trace ladder's rung 1)
        self.meta = meta
        self.known: dict[int, tuple[weakref.ref[Any], int]] = {}  # id(storage) -> (ref, sid)
        self.corrected: set[str] = set()
        self.param_ids: set[int] = set()

    def adopt(self, t: torch.Tensor, kind: str, *, step: int = 0, phase: str = "setup", module: str = "",
              op: str = "") -> int | None:
        """Track `t`'s storage (once); returns its sid."""
        if not isinstance(t, torch.Tensor) or t.is_sparse or t.is_nested:
            return None
        try:
            st = t.untyped_storage()
        except Exception:  # tensors without a storage (functional wrappers)
            return None
        key = id(st)
        hit = self.known.get(key)
        if hit is not None and hit[0]() is st:
            return hit[1]
        log = self.log
        sid = len(log.storages)
        nbytes = int(st.nbytes())
        log.storages.append(Storage(sid, nbytes, kind, step, phase, module, op))
        log.events.append((len(log.ops) - 1, sid, 1))

        def died(_ref: Any, sid: int = sid, key: int = key) -> None:
            log.events.append((len(log.ops) - 1, sid, -1))
            cur = self.known.get(key)
            if cur is not None and cur[1] == sid:
                del self.known[key]

        self.known[key] = (weakref.ref(st, died), sid)
        return sid

    def sid_of(self, t: torch.Tensor) -> int | None:
        try:
            hit = self.known.get(id(t.untyped_storage()))
        except Exception:
            return None
        return hit[1] if hit is not None else None

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        step, phase, module = self.where()
        out = self._run(func, args, kwargs, module)
        name = func.overloadpacket.__name__
        self.log.ops.append(Op(f"aten.{name}", step, phase, module))
        # autocast's cast of a weight (cached until the autocast region ends, saved for backward)
        kind = ("amp_copy" if name == "_to_copy" and phase == "forward" and args
                and id(args[0]) in self.param_ids else "temporary")
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.adopt(t, kind, step=step, phase=phase, module=module, op=f"aten.{name}")
        if name == "mkldnn_rnn_layer" and isinstance(out, tuple) and len(out) > 3:
            self._correct_workspace(args, out[3])
        elif name in _NORM_WEIGHT and isinstance(out, tuple) and len(out) == 3:
            self._correct_norm_stats(name, args, out)
        return out

    def _run(self, func: Any, args: Any, kwargs: dict[str, Any], module: str) -> Any:
        """The op, as the trace's recorder runs it: a read of a value the shadow knows (a mask's `.all()`,
        position ids) is answered from it; meta kernels go through `fastmeta`."""
        sh = self.shadow
        if sh is None:
            return func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if name in ("index", "index_put", "index_put_", "_index_put_impl_"):
            args = sh.masks_to_indices(args)
        if _kind(func)[0]:
            out = sh.answer(func, args, kwargs, module)
            if out is not NOTHING:
                return out
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                raise ValueReadError(f"aten.{name}" + (f" in {module}" if module else "")) from exc
        out = fastmeta.run(func, args, kwargs) if self.meta else func(*args, **kwargs)
        sh.after(func, args, kwargs, out)
        return out

    def _correct_norm_stats(self, name: str, args: Any, out: tuple[Any, ...]) -> None:
        """Under autocast a bf16/fp16 input meets an fp32 weight: the CPU kernel (and the meta one) return
        the saved mean and inverse std in fp32, FakeTensor's in the input's dtype."""
        x, weight = args[0], args[_NORM_WEIGHT[name]] if len(args) > _NORM_WEIGHT[name] else None
        if (type(x).__name__ != "FakeTensor" or weight is None or x.dtype not in (torch.bfloat16, torch.float16)
                or weight.dtype != torch.float32):
            return
        for stat in out[1:]:
            sid = self.sid_of(stat) if isinstance(stat, torch.Tensor) else None
            if sid is None or stat.dtype == torch.float32:
                continue
            s = self.log.storages[sid]
            real = stat.numel() * 4
            if real > s.nbytes and s.correction == 0:
                s.correction, s.nbytes = real - s.nbytes, real
        text = (f"aten.{name}: FakeTensor returns the saved statistics of a {str(x.dtype).removeprefix('torch.')} "
                "input with fp32 weights in the input's dtype; the CPU and meta kernels return fp32 (sizes corrected)")
        if text not in self.corrected:
            self.corrected.add(text)
            self.log.corrections.append(text)

    def _correct_workspace(self, args: Any, ws: torch.Tensor) -> None:
        if not _is_fake_or_meta(ws):
            return
        sid = self.sid_of(ws)
        if sid is None:
            return
        real, measured = _real_mkldnn_bytes(args)
        s = self.log.storages[sid]
        extra = real - s.nbytes
        if extra <= 0:
            return
        s.correction = extra
        s.nbytes = real
        how = "measured by running the CPU kernel once on zeros of the same shape" if measured else \
            "extrapolated from the CPU kernel's at batch 1 and 2 (too large to measure)"
        text = (f"aten.mkldnn_rnn_layer (oneDNN LSTM): the fake kernel returns an empty workspace; the CPU "
                f"kernel's is {real} bytes for input {tuple(args[0].shape)} ({how})")
        if text not in self.corrected:
            self.corrected.add(text)
            self.log.corrections.append(text)


def _is_fake_or_meta(t: torch.Tensor) -> bool:
    return t.device.type == "meta" or type(t).__name__ == "FakeTensor"


# --- where in the step are we ---------------------------------------------------------------------
class _Scope:
    """The current step, phase and module: forward from module hooks, backward from node pre-hooks."""

    def __init__(self, names: Mapping[int, str], log: StepLog, mode: _Lifetimes | None = None) -> None:
        self.names = names
        self.log = log
        self.mode = mode
        self.step = 0
        self.phase = "setup"
        self.stack: list[str] = []
        self.bw_module = ""
        self.claimed: set[Any] = set()
        self.handles: list[Any] = []

    def where(self) -> tuple[int, str, str]:
        if self.phase == "backward":
            return self.step, self.phase, self.bw_module
        return self.step, self.phase, self.stack[-1] if self.stack else ""

    def pre(self, module: nn.Module, args: Any) -> None:
        if self.phase == "forward" or self.stack:
            self.stack.append(self.names.get(id(module), type(module).__name__))

    def post(self, module: nn.Module, args: Any, kwargs: Any = None, output: Any = None) -> None:
        if not self.stack:
            return
        path = self.stack.pop()
        if self.phase != "forward" or output is None:
            return
        outs = flatten_tensors(output)
        if self.step == 1 and self.mode is not None:
            seen = set()
            for t in outs:
                sid = self.mode.sid_of(t)
                if sid is not None and sid not in seen:
                    seen.add(sid)
                    self.log.outputs[path] = self.log.outputs.get(path, 0) + self.log.storages[sid].nbytes
        todo: list[Any] = [t.grad_fn for t in outs if t.grad_fn is not None]
        while todo:
            node = todo.pop()
            if node is None or node in self.claimed:
                continue
            self.claimed.add(node)
            with contextlib.suppress(Exception):
                self.handles.append(node.register_prehook(self._enter(path)))
            todo.extend(n for n, _ in node.next_functions)

    def _enter(self, path: str) -> Callable[[Any], None]:
        def hook(grad_outputs: Any) -> None:
            self.bw_module = path

        return hook


def default_loss(outputs: Any, inputs: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """The sum of the model's floating outputs (the rule `aelab cost` uses), in fp32."""
    diff = [t for t in flatten_tensors(outputs) if t.requires_grad and (t.is_floating_point() or t.is_complex())]
    if not diff:
        raise ValueError("no output of the model requires grad: nothing to train")
    return torch.stack([t.float().sum() for t in diff]).sum()


def mse_loss(outputs: Any, inputs: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """Mean squared error of the first floating output against the first input (an autoencoder's)."""
    out = next(t for t in flatten_tensors(outputs) if t.is_floating_point())
    return torch.nn.functional.mse_loss(out.float(), inputs[0].float())


LOSSES: dict[str, Callable[[Any, Sequence[torch.Tensor]], torch.Tensor]] = {"sum": default_loss, "mse": mse_loss}


@contextlib.contextmanager
def checkpointed(model: nn.Module, paths: Sequence[str]) -> Iterator[None]:
    """Run the named modules under `torch.utils.checkpoint` (non-reentrant) for the duration."""
    import torch.utils.checkpoint as ckpt

    mods = dict(model.named_modules())
    patched = []
    for p in paths:
        m = mods[p]
        orig = m.forward

        def fwd(*a: Any, _orig: Any = orig, **k: Any) -> Any:
            return ckpt.checkpoint(_orig, *a, use_reentrant=False, **k)

        m.forward = fwd
        patched.append(m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward


def _mark_kind(mode: _Lifetimes, tensors: Sequence[Any], kind: str, replace: tuple[str, ...]) -> None:
    for t in tensors:
        if isinstance(t, torch.Tensor):
            sid = mode.sid_of(t)
            if sid is not None and mode.log.storages[sid].kind in replace:
                mode.log.storages[sid].kind = kind


def record_steps(model: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                 args: Sequence[Any], kwargs: Mapping[str, Any], *, optimizers: Sequence[str] = ("adam",),
                 amp: str = "off", loss: str = "sum", checkpoint: Sequence[str] = (),
                 foreach: bool | None = None, context: Any = None,
                 known: Sequence[tuple[torch.Tensor, torch.Tensor, int]] = (),
                 lazy: Mapping[int, Callable[[], tuple[torch.Tensor, int] | None]] | None = None) -> StepLog:
    """Record a training step of `model` with `params`/`buffers` standing in for its own (fake or meta
    tensors; `requires_grad` on a parameter says it trains), for each optimizer in `optimizers`.

    Forward, loss and backward run once: they do not depend on the optimizer, and the steady state's
    differ from the first step's only by the optimizer state being alive. Then, per optimizer, from
    the gradients backward left: its first `step()` (creating its state) and `zero_grad`; the
    gradients again (`zeros_like`: same storages, same sizes); its steady `step()` and `zero_grad`;
    the optimizer deleted. `StepLog.marks` names the event index where each part begins:
    "forward", "backward_end", "<opt>:first", "<opt>:first_end", "<opt>:steady", "<opt>:steady_grads",
    "<opt>:steady_end", "<opt>:gone".

    `context` is entered around forward and backward (a FakeTensorMode for fake execution). `known` gives
    the real values of some stand-ins (the inputs') and `lazy` ways to get others (buffers), so a value the
    forward reads is answered exactly (`aelab.trace.shadow`). The model's own tensors, flags and training
    mode are not touched.
    """
    for name in optimizers:
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}")
    trainable = [t for t in params.values() if t.requires_grad]
    if not trainable:
        raise ValueError("no parameter trains: nothing to simulate")
    amp_dtype = AMP_DTYPES[amp]
    loss_fn = LOSSES[loss]
    log = StepLog([], [], [])
    scope = _Scope({id(m): n for n, m in model.named_modules(remove_duplicate=False)}, log)
    shadow = Shadow()
    shadow._known = _WeakKnown()  # see _WeakKnown
    for t, value, taint in known:
        shadow.set(t, value, taint)
    shadow.lazy.update(lazy or {})
    meta = any(t.device.type == "meta" for t in params.values())
    mode = _Lifetimes(log, scope.where, shadow, meta=meta)
    scope.mode = mode
    mode.param_ids = {id(t) for t in params.values()}
    for n, t in params.items():
        mode.adopt(t, "parameter", module=n.rsplit(".", 1)[0] if "." in n else "")
    for n, t in buffers.items():
        mode.adopt(t, "buffer", module=n.rsplit(".", 1)[0] if "." in n else "")
    inputs = [t for t in flatten_tensors((list(args), dict(kwargs)))]
    for t in inputs:
        mode.adopt(t, "input")
    tensors = {**params, **buffers}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if scope.phase == "forward":
            sid = mode.sid_of(t)
            if sid is not None:
                s = log.storages[sid]
                if s.kind in ("temporary", "amp_copy") and s.saved_by is None:
                    s.saved_by = scope.stack[-1] if scope.stack else ""
                    if s.kind == "temporary":
                        s.kind = "activation"
        return t

    def mark(name: str) -> None:
        log.marks[name] = len(log.events)

    was_training = {m: m.training for m in model.modules()}
    pre = torch.nn.modules.module.register_module_forward_pre_hook(scope.pre)
    post = torch.nn.modules.module.register_module_forward_hook(scope.post, with_kwargs=True, always_call=True)
    ctx = context if context is not None else contextlib.nullcontext()
    model.train()
    try:
        with mode, checkpointed(model, checkpoint):
            scope.step = 1
            scope.phase = "forward"
            mark("forward")
            with ctx, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                autocast: Any = (torch.autocast("cpu", dtype=amp_dtype) if amp_dtype is not None
                                 else contextlib.nullcontext())
                with autocast:
                    out = torch.func.functional_call(model, tensors, tuple(args), dict(kwargs), tie_weights=True)
                    scope.phase = "loss"
                    value = loss_fn(out, inputs)
                del out
                scope.phase = "backward"
                value.backward()
                del value
            _mark_kind(mode, [t.grad for t in trainable], "gradient", ("temporary", "activation"))
            grads = {id(t): t.grad is not None for t in trainable}
            mark("backward_end")
            for k, name in enumerate(optimizers):
                cls_name, opt_kwargs = OPTIMIZERS[name]
                if foreach is not None:
                    opt_kwargs = {**opt_kwargs, "foreach": foreach}
                opt = getattr(torch.optim, cls_name)(trainable, **opt_kwargs)
                for step in (1, 2):
                    scope.step = step
                    if step == 2 or k > 0:  # the gradients a backward leaves, again
                        scope.phase = "backward"
                        log.ops.append(Op("aten.zeros_like", step, "backward", ""))
                        for t in trainable:
                            if grads[id(t)]:
                                t.grad = torch.zeros_like(t)
                        _mark_kind(mode, [t.grad for t in trainable], "gradient", ("temporary",))
                    mark(f"{name}:{'first' if step == 1 else 'steady_grads'}")
                    scope.phase = "optimizer"
                    opt.step()
                    _mark_kind(mode, [v for st in opt.state.values() for v in st.values()], "optimizer_state",
                               ("temporary",))
                    scope.phase = "zero_grad"
                    log.ops.append(Op("zero_grad", step, "zero_grad", ""))
                    opt.zero_grad(set_to_none=True)
                    mark(f"{name}:{'first_end' if step == 1 else 'steady_end'}")
                    if step == 1:
                        mark(f"{name}:steady")
                del opt
                mark(f"{name}:gone")
    finally:
        pre.remove()
        post.remove()
        for h in scope.handles:
            h.remove()
        for m, flag in was_training.items():
            m.training = flag
    return log
