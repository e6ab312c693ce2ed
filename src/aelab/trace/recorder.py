"""Run a model once and record every module call, torch function call, sample and aten op.

The run happens on the meta device (a model built under `torch.device("meta")`) or under
`FakeTensorMode` (a model with real weights): shapes and dtypes propagate, no activation
memory is allocated and the weights are never read. Three layers of recording see the run:

- global module hooks: every `nn.Module` call, its inputs and outputs;
- a `TorchFunctionMode`: every functional op (`F.sigmoid`, `x @ W`, `view`, `softmax`, ...);
- a `TorchDispatchMode`: every aten kernel, with its FLOPs from `trace.flops`;
plus `Distribution.rsample`/`sample`, seen as calls of their own (the latent of a VAE).

Backward is recorded too, with `torch.autograd.grad` (never `.backward()`: the user's `.grad`
stays untouched), each backward kernel attributed to the call that created its graph node.
"""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from aelab.trace import attention, hostrng
from aelab.trace.function_names import function_names
from aelab.trace.materialize import known_buffers
from aelab.trace.methods import recorded_methods
from aelab.trace.modes import DispatchMode, fake_kernel_log_off, saved_alias
from aelab.trace.opfacts import OpFacts, facts
from aelab.trace.params import count_parameters, restore, snapshot
from aelab.trace.probe import needs_values, probe
from aelab.trace.records import OpEvent, Read, TensorInfo, Trace
from aelab.trace.samplers import patched_distributions
from aelab.trace.shadow import NOTHING, REPLAYED, is_real, target_device
from aelab.trace.standins import followed, stand_ins
from aelab.trace.state import State, active, set_active
from aelab.trace.tensors import flatten_tensors
from aelab.trace.walk import ModelParts, walk


class _FunctionRecorder(TorchFunctionMode):
    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        st = self.state
        names = function_names(func) if st.phase == "forward" and not st.suppress_functions else None
        inputs = args if not kwargs else (args, kwargs)
        if func in attention.SDPA and st.execution == "meta":  # the kernel a CPU run picks, not meta's math path
            func, args, kwargs = _attention, (func, args, kwargs), {}
        if names is None:
            return func(*args, **kwargs)
        short, type_ = names
        out = st.record_call("function", short, type_, inputs, func, args, kwargs)
        if short == "[]" and len(args) == 2 and not st.shadow.lite:
            st.shadow.getitem(args[0], args[1], out)
        return out


def _attention(func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    out = attention.redirect(func, args, kwargs)
    return func(*args, **kwargs) if out is None else out


_DATA_DEPENDENT = frozenset({"aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten.unique",
                             "aten._unique2", "aten.unique_dim", "aten.unique_consecutive", "aten.item",
                             "aten.repeat_interleave", "aten.bincount", "aten.histc"})


_INDEXING = frozenset({"aten.index", "aten.index_put", "aten.index_put_", "aten._index_put_impl_"})


class _DispatchRecorder(DispatchMode):
    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        f = facts(func)
        if f.skip:
            return func(*args, **(kwargs or {}))
        with torch._C.DisableTorchFunction():  # our own metadata reads must not re-enter the function mode
            return self._record(func, f, self.state, args, kwargs or {})

    def _record(self, func: Any, f: OpFacts, st: State, args: Any, kwargs: dict[str, Any]) -> Any:
        sh = st.shadow
        name = f.name
        shadowed = st.execution != "real"
        out: Any = NOTHING
        if name in _INDEXING:
            args = sh.masks_to_indices(args)
        if f.reads and shadowed:  # an op that reads values: from the shadow, or the real run's
            if sh.lite:
                st.needs_values = name
                raise NeedsValues(name)
            out = self._read(func, name, st, args, kwargs)
        if out is NOTHING:
            pre = sh.before(func, args, kwargs) if f.mutated and shadowed else None
            try:
                if st.execution != "meta" or f.kernel is None:
                    out = func(*args, **kwargs)
                else:  # the shape-only kernel where one accepts the arguments (`aelab.trace.fastmeta`), else torch's
                    out = f.kernel(*args, **kwargs)
                    if out is NotImplemented:
                        out = func(*args, **kwargs)
            except BaseException as exc:
                out = self._retry(func, name, st, args, kwargs, exc)
            else:
                if not sh.lite or f.mutated or _has_real(out):  # (shapes only: a real write is still followed)
                    sh.after(func, args, kwargs, out, pre)
        flops, category = 0, None
        rule = f.rule
        if rule is not None:
            try:
                flops, category = int(rule.formula(args, kwargs, out)), rule.category
            except Exception:
                flops = 0
        phase = st.phase
        inputs = st.op_infos(args, kwargs)  # (before the outputs: a trace numbers tensors in the order first seen)
        outputs = (st.info(out),) if isinstance(out, torch.Tensor) else st.op_infos(
            out if isinstance(out, (list, tuple)) else (out,), {})
        st.ops.append(OpEvent(len(st.ops), name, phase, (st.stack[-1] if st.stack else None) if phase == "forward"
                              else st.bw_scope, inputs, outputs, category, flops, f.is_view,
                              _attrs(name, args) if name == "aten.convolution_backward" else None))
        return out

    def _read(self, func: Any, name: str, st: State, args: Any, kwargs: dict[str, Any]) -> Any:
        module = st.current_module()
        replayed = st.oracle.pop(name, args, kwargs) if st.oracle is not None else NOTHING
        out = st.shadow.answer(func, args, kwargs, module)
        if out is NOTHING and replayed is not NOTHING:
            st.shadow.reads.append(Read(name, module, REPLAYED))
            out = st.shadow.stand_in(replayed, target_device(args, kwargs), REPLAYED)
        return out

    def _retry(self, func: Any, name: str, st: State, args: Any, kwargs: dict[str, Any],
               exc: BaseException) -> Any:
        """A kernel raised. A read of an unknown value is for the caller (a real run answers it); a meta/fake
        kernel stricter than the real one (dtype rules, a CPU tensor beside meta ones) is retried on the CPU
        kernel with zeros of the same shapes: if that runs, its output shapes stand in and the run goes on;
        if it fails too, the model is wrong and the error is recorded. A shapes-only run is redone with values."""
        if st.shadow.lite:
            st.needs_values = name
            raise NeedsValues(name) from exc
        data_dep = needs_values(exc)
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        copies_out = st.execution == "meta" and (  # `.cpu()`, `.tolist()`, `real[...] = meta`: values leave
            target_device(args, kwargs).type != "meta"
            or (name == "aten.copy_" and tensors and is_real(tensors[0]) and not all(map(is_real, tensors))))
        if data_dep or name in _DATA_DEPENDENT or facts(func).reads:
            st.data_dependent = name
            st.data_dependent_module = st.current_module()
            raise exc
        answered = st.shadow.answer(func, args, kwargs, st.current_module())  # e.g. `.cpu()` of known values
        if answered is not NOTHING:
            return answered
        if copies_out:
            st.data_dependent = name
            st.data_dependent_module = st.current_module()
            raise exc
        probed = probe(st.shadow, func, args, kwargs)
        if probed is NOTHING:
            st.record_error(exc, op=name, op_inputs=st.op_infos(args, kwargs))
            raise exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        st.probes.setdefault(name, first)
        return probed


def _has_real(out: Any) -> bool:
    if isinstance(out, torch.Tensor):
        return is_real(out)
    return isinstance(out, (list, tuple)) and any(isinstance(t, torch.Tensor) and is_real(t) for t in out)


def _attrs(name: str, args: Any) -> dict[str, object]:
    """Non-tensor arguments worth keeping: which parts a convolution backward computes, and whether the
    convolution is transposed (they decide input- vs weight-gradient work)."""
    if name == "aten.convolution_backward" and len(args) >= 11:
        return {"transposed": bool(args[7]), "output_mask": [bool(m) for m in args[10]]}
    return {}


# --- module hooks -----------------------------------------------------------------------------------
def _module_pre_hook(module: nn.Module, args: Any) -> None:
    st = active()  # (no torch function runs here: no need to disable the function mode)
    if st is None or st.phase != "forward":
        return
    path = st.module_names.get(id(module))
    if path is None:
        path = f"<{type(module).__name__}>"
    n = st.module_calls.get(path, 0)
    st.module_calls[path] = n + 1
    name = path if n == 0 else f"{path}#{n + 1}"
    st.open_call("module", name, type(module).__name__, path)


def _module_post_hook(module: nn.Module, args: Any, kwargs: Any = None, output: Any = None) -> None:
    # on an exception torch calls always_call hooks as hook(module, args, None): kwargs is then None too
    st = active()
    if st is None:
        return
    if kwargs is None and st.raise_stack is None:
        st.raise_stack = tuple(st.stack)  # an exception is unwinding: where it was raised, innermost first seen
    if st.phase != "forward" or not st.stack:
        return
    with torch._C.DisableTorchFunction():
        _close_module_call(st, args, kwargs, output)


def _close_module_call(st: State, args: Any, kwargs: Any, output: Any) -> None:
    # find this module's open call (the innermost module call on the stack)
    for cid in reversed(st.stack):
        call = st.calls[cid]
        if call.kind == "module":
            break
    else:
        return
    st.suppress_functions += 1  # flattening outputs must not itself be recorded
    try:
        call.inputs = st.infos((args, kwargs))
        outs = flatten_tensors(output)
        call.outputs = [st.info(t) for t in outs]
    finally:
        st.suppress_functions -= 1
    if st.error is not None and cid in st.error.call_stack:
        call.failed = True
    st.close_call(call)
    if st.grad:
        st.claim_nodes(outs, cid)


# --- the run ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _recording(state: State) -> Iterator[None]:
    previous = set_active(state)
    pre = torch.nn.modules.module.register_module_forward_pre_hook(_module_pre_hook)
    post = torch.nn.modules.module.register_module_forward_hook(_module_post_hook, with_kwargs=True,
                                                                always_call=True)
    try:
        with patched_distributions():
            yield
    finally:
        pre.remove()
        post.remove()
        set_active(previous)


class NeedsValues(Exception):
    """A shapes-only run (`run(values=False)`) met an op that needs values (a read, a kernel that failed): it is
    redone with them."""

    def __init__(self, op: str) -> None:
        super().__init__(op)
        self.op = op


class NeedsRealForward(Exception):
    """Fake/meta execution read a value that depends on the weights (`.item()`, `nonzero` of activations)."""

    def __init__(self, op: str, module: str = "") -> None:
        super().__init__(op)
        self.op = op
        self.module = module


def run(model: nn.Module, args: list[Any], kwargs: dict[str, Any], *, execution: str,
        backward: bool = True, fake_mode: Any = None, known: Sequence[tuple[torch.Tensor, torch.Tensor, int]] = (),
        oracle: Any = None, inner: Any = None, eval_mode: bool = False, values: bool = True,
        parts: ModelParts | None = None) -> Trace:
    """Record one forward (and, if anything is trainable, one backward) of `model` on prepared inputs.

    `args`/`kwargs` are already meta, fake or real tensors matching `execution`; `known` gives the real
    values of some of them (see `aelab.trace.shadow`), `oracle` a real run's answers to replay, `inner` a
    dispatch mode under the recorder (the module-by-module real values of `aelab.trace.materialize`).
    The model's training flags and `requires_grad` are restored afterwards; nothing else is touched.
    Raises `NeedsRealForward` when a value the run reads depends on the weights. `values=False` follows no
    values (no `known`, no buffer values, no shadow beside non-writing ops: ~7% of a small model's run) and
    raises `NeedsValues` at the first op that needs one; real tensors written in place are still put back.
    """
    parts = parts or walk(model)  # (`parts`: the model's, if walked)
    names = {id(m): n for n, m in parts.modules}
    params, buffers, shared = count_parameters(model, parts)
    # The user's weights, buffers and plain tensor attributes never enter the run: stand-ins do (functional_call,
    # `followed`: `trace.standins`), so in-place updates (BatchNorm running stats, a counter) cannot touch them.
    stands = stand_ins(parts, execution, fake_mode)
    swapped = stands.tensors
    unique_params = [p for _, p in parts.unique_params]
    trainable: list[torch.Tensor] = ([t for n, t in swapped.items() if t.requires_grad] if swapped
                 else [p for p in unique_params if p.requires_grad])
    param_ids = {id(t) for t in swapped.values()} if swapped else {id(p) for p in unique_params}
    st = State(names, param_ids)
    st.execution = execution
    st.grad = backward
    st.oracle = oracle
    st.shadow.writes.active = execution != "real"  # what a meta/fake run writes of real tensors is put back
    st.shadow.lite = not values
    if values:
        for t, value, taint in known:
            st.shadow.set(t, value, taint)
        known_buffers(st.shadow, model, swapped, parts)
        stands.attributes.defer(st.shadow)
    snap = snapshot(model, parts)
    if eval_mode:
        model.eval()
    inputs = st.infos((args, kwargs))
    input_names = [f"arg{i}" for i in range(len(flatten_tensors(args)))] + list(kwargs)
    output: Any = None
    saved: dict[int, TensorInfo] = {}

    state = weakref.ref(st)  # autograd keeps `pack` with every saved tensor: it must not keep the run's state

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = state()
        alias = saved_alias(t)  # (no cycle through autograd's node: `modes.saved_alias`)
        if s is None:
            return alias
        base = t._base if t._base is not None else t
        if id(t) not in s.param_ids and id(base) not in s.param_ids and s.phase == "forward":
            info = s.info(t)
            saved[info.tid] = info
        s.tensors[id(alias)] = (alias, s.info(t))  # backward reads it as the tensor it stands for
        return alias

    fake_ctx = fake_mode if fake_mode is not None else contextlib.nullcontext()
    gc_enabled = gc.isenabled()
    gc.disable()  # a run allocates records by the thousand: cyclic GC passes over them cost 20-30%
    try:
        inner_ctx = inner if inner is not None else contextlib.nullcontext()
        with fake_kernel_log_off(), hostrng.watched(model, st.current_module) as host, fake_ctx, inner_ctx, \
                _recording(st), recorded_methods(model) as methods, _DispatchRecorder(st), _FunctionRecorder(st):
            try:
                grad_mode = contextlib.nullcontext() if backward else torch.no_grad()
                with grad_mode, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
                        followed(stands.attributes):
                    if swapped:
                        output = torch.func.functional_call(model, swapped, tuple(args), kwargs, tie_weights=True)
                    else:
                        output = model(*args, **kwargs)
            except BaseException as exc:
                if st.needs_values:
                    raise NeedsValues(st.needs_values) from exc
                if st.data_dependent:
                    raise NeedsRealForward(st.data_dependent, st.data_dependent_module) from exc
                if st.error is None:  # raised by Python code (e.g. a rank check), not by a kernel
                    st.record_error(exc, stack=st.raise_stack or ())
                if st.calls:
                    st.calls[0].failed = True
            if st.needs_values:  # the model's own code caught the exception that stopped the op
                raise NeedsValues(st.needs_values)
            outs = flatten_tensors(output)
            ran_backward = False
            if backward and st.error is None:
                try:
                    ran_backward = _record_backward(trainable, st, outs)
                except BaseException as exc:
                    if st.needs_values:
                        raise NeedsValues(st.needs_values) from exc
                    if st.data_dependent:
                        raise NeedsRealForward(st.data_dependent, st.data_dependent_module) from exc
                    raise
    finally:
        if gc_enabled:
            gc.enable()
        st.shadow.writes.restore()
        restore(model, snap)
    outputs = st.calls[0].outputs if st.calls else []
    return Trace(model_type=type(model).__name__, execution=execution, inputs=inputs, input_names=input_names,
                 outputs=list(outputs), calls=st.calls, ops=st.ops, params=params, buffers=buffers,
                 shared_params=shared, saved_for_backward=list(saved.values()), backward_ran=ran_backward,
                 backward_requested=backward,
                 error=st.error, module_types={n: type(m).__name__ for n, m in parts.unique_modules},
                 methods=methods, reads=list(st.shadow.reads), probes=dict(st.probes), host_draws=host.draws())


def _record_backward(trainable: list[torch.Tensor], st: State, outs: list[torch.Tensor]) -> bool:
    """Backward of a scalar that touches every differentiable output, w.r.t. the trainable parameters."""
    diff = [t for t in outs if t.requires_grad and (t.is_floating_point() or t.is_complex())]
    if not trainable or not diff:
        return False
    handles = []

    def scope_hook(cid: int) -> Any:
        def hook(grad_outputs: Any) -> None:
            st.bw_scope = cid

        return hook

    for node, cid in st.node_scope.items():
        with contextlib.suppress(Exception):
            handles.append(node.register_prehook(scope_hook(cid)))
    st.phase = "loss"
    st.bw_scope = None
    try:
        loss = torch.stack([t.float().sum() for t in diff]).sum()
        st.phase = "backward"
        st.bw_scope = None
        torch.autograd.grad(loss, trainable, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        st.phase = "forward"
    return True
