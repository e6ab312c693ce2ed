"""The mutable bookkeeping of one recording, shared by the hooks and modes while a model runs."""

from __future__ import annotations

from typing import Any

import torch

from aelab.trace.aten_args import ATOMS
from aelab.trace.materialize import Oracle
from aelab.trace.records import CallEvent, OpEvent, TensorInfo, TraceError
from aelab.trace.shadow import Shadow
from aelab.trace.tensors import flatten_tensors, shallow_tensors

_DTYPES: dict[torch.dtype, tuple[str, int]] = {}  # torch.float32 -> ("float32", 4)
_ACTIVE: State | None = None  # the recording in progress; global hooks and patched samplers look here


def active() -> State | None:
    """The recording in progress, if any."""
    return _ACTIVE


def set_active(state: State | None) -> State | None:
    """Make `state` the recording in progress; returns the previous one (to restore)."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, state
    return previous


class State:
    """Mutable bookkeeping shared by the hooks and modes during one run."""

    def __init__(self, module_names: dict[int, str], param_ids: set[int]) -> None:
        self.module_names = module_names
        self.param_ids = param_ids
        self.calls: list[CallEvent] = []
        self.ops: list[OpEvent] = []
        self.stack: list[int] = []
        self.tensors: dict[int, tuple[torch.Tensor, TensorInfo]] = {}
        self.phase = "forward"
        self.bw_scope: int | None = None
        self.node_scope: dict[Any, int] = {}
        self.saved: dict[int, TensorInfo] = {}
        self.suppress_functions = 0
        self.error: TraceError | None = None
        self.data_dependent: str | None = None
        self.needs_values: str | None = None  # a shapes-only run met an op that needs values (`NeedsValues`)
        self.function_names: dict[tuple[int | None, str], int] = {}
        self.module_calls: dict[str, int] = {}
        self.execution = "fake"
        self.grad = True  # autograd records the run: its graph nodes are attributed to calls (`claim_nodes`)
        self.raise_stack: tuple[int, ...] | None = None  # call stack when an exception first left a module
        self.data_dependent_module = ""
        self.shadow = Shadow()  # real values of what does not depend on the weights
        self.oracle: Oracle | None = None  # answers of a real run, when this run replays one
        self.probes: dict[str, str] = {}  # op -> why its meta/fake kernel refused (the CPU kernel ran it)

    def current_module(self) -> str:
        """Path of the innermost module running now ("" for the root or outside any module)."""
        return self.calls[self.stack[-1]].module if self.stack else ""

    # --- tensors ----------------------------------------------------------------------------------
    def info(self, t: torch.Tensor) -> TensorInfo:
        key = id(t)
        hit = self.tensors.get(key)
        if hit is not None and hit[0] is t:
            return hit[1]
        shape = tuple(t.shape)  # ints: traces are recorded with static shapes
        numel = 1
        for d in shape:
            numel *= d
        dtype = t.dtype
        known = _DTYPES.get(dtype)
        if known is None:
            known = _DTYPES[dtype] = (str(dtype).removeprefix("torch."), t.element_size())
        ti = TensorInfo(len(self.tensors), shape, known[0], numel * known[1])
        self.tensors[key] = (t, ti)  # keep alive: ids stay unique for the whole trace
        return ti

    def infos(self, obj: Any) -> list[TensorInfo]:
        """The tensors of `obj` (a call's `(args, kwargs)`, its output), as `flatten_tensors` orders them."""
        if type(obj) is tuple and len(obj) == 2 and type(obj[1]) is dict:
            if not obj[1]:
                obj = obj[0]  # (args, {}): a call without keyword arguments, the common case
            elif type(obj[0]) is tuple:  # (args, kwargs): each flat (`F.batch_norm(..., training=...)`)
                flat, more = shallow_tensors(obj[0]), shallow_tensors(obj[1].values())
                if flat is not None and more is not None:
                    ids = {id(t) for t in flat}
                    return [self.info(t) for t in (*flat, *(t for t in more if id(t) not in ids))]
        return [self.info(t) for t in flatten_tensors(obj)]

    def op_infos(self, args: Any, kwargs: dict[str, Any]) -> tuple[TensorInfo, ...]:
        """Tensors of an aten call: flat args, lists of tensors, tensor kwargs (the hot path)."""
        out = []
        info = self.info
        for a in args:
            ta = type(a)
            if ta in ATOMS:
                continue
            if ta is list or ta is tuple:
                for x in a:
                    if type(x) not in ATOMS and isinstance(x, torch.Tensor):
                        out.append(info(x))
            elif isinstance(a, torch.Tensor):
                out.append(info(a))
        if kwargs:
            for a in kwargs.values():
                if isinstance(a, torch.Tensor):
                    out.append(info(a))
        return tuple(out)

    # --- calls ------------------------------------------------------------------------------------
    def open_call(self, kind: str, name: str, type_: str, module: str) -> CallEvent:
        stack, calls = self.stack, self.calls
        parent = stack[-1] if stack else None
        cid = len(calls)
        call = CallEvent(cid, kind, name, type_, parent, len(stack), module, op_start=len(self.ops))
        calls.append(call)
        if parent is not None:
            calls[parent].children.append(cid)
        stack.append(cid)
        return call

    def close_call(self, call: CallEvent) -> None:
        call.op_end = len(self.ops)
        stack = self.stack
        if stack and stack[-1] == call.cid:  # the common case: it is the innermost call
            stack.pop()
            return
        while stack and stack[-1] != call.cid:
            stack.pop()  # a child that raised never closed
        if stack:
            stack.pop()

    def discard_last_call(self, call: CallEvent) -> None:
        """Forget a function call that produced no tensor (e.g. `x.size()`); its ops go to the parent."""
        assert self.calls[-1] is call
        for op in self.ops[call.op_start:]:
            op.call = call.parent
        self.calls.pop()
        if call.parent is not None:
            self.calls[call.parent].children.remove(call.cid)
        key = (call.parent, call.type)
        if self.function_names.get(key):
            self.function_names[key] -= 1

    def function_name(self, short: str, type_: str) -> tuple[str, str]:
        """(name, module) of a function call about to open: "<module path>.<short>", then "_1", "_2", ... for
        the same type called again inside the same parent."""
        parent = self.stack[-1] if self.stack else None
        module = self.calls[parent].module if parent is not None else ""
        key = (parent, type_)
        names = self.function_names
        n = names.get(key, 0)
        names[key] = n + 1
        base = f"{module}.{short}" if module else short
        return (base if n == 0 else f"{base}_{n}"), module

    def record_call(self, kind: str, short: str, type_: str, inputs: Any, fn: Any, fargs: Any = (),
                    fkwargs: dict[str, Any] | None = None, *, opaque: bool = False) -> Any:
        """Run `fn(*fargs, **fkwargs)` as a recorded function/sample call named after `short`, its tensors from
        `inputs`.

        `opaque`: torch functions inside are not calls of their own (a sample is one step, not its
        arithmetic). A call that returns no tensor (`x.size()`) is forgotten and its ops go to the parent.
        """
        name, module = self.function_name(short, type_)
        call = self.open_call(kind, name, type_, module)
        self.suppress_functions += opaque
        try:
            call.inputs = self.infos(inputs)
            out = fn(*fargs, **fkwargs) if fkwargs else fn(*fargs)
        except BaseException as exc:
            call.failed = True
            self.record_error(exc, function=type_, function_inputs=tuple(call.inputs))
            raise
        finally:
            self.suppress_functions -= opaque
            self.close_call(call)
        outs = flatten_tensors(out)
        if not outs:
            self.discard_last_call(call)
            return out
        call.outputs = [self.info(t) for t in outs]
        if self.grad:
            self.claim_nodes(outs, call.cid)
        return out

    def claim_nodes(self, outputs: list[torch.Tensor], cid: int) -> None:
        """Attribute autograd nodes created by this call, so backward kernels know whose they are."""
        todo: list[Any] = [t.grad_fn for t in outputs if t.grad_fn is not None]
        while todo:
            node = todo.pop()
            if node is None or node in self.node_scope:
                continue
            self.node_scope[node] = cid
            todo.extend(nxt for nxt, _ in node.next_functions)

    def record_error(self, exc: BaseException, *, op: str | None = None, op_inputs: tuple[TensorInfo, ...] = (),
                     function: str | None = None, function_inputs: tuple[TensorInfo, ...] = (),
                     stack: tuple[int, ...] | None = None) -> None:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):  # Ctrl-C and the model's exit are not shape errors
            raise exc
        if self.error is not None and self.error.message == str(exc):
            # the same exception bubbling up: fill in what the inner level did not know
            if function and not self.error.function:
                self.error = TraceError(self.error.exc_type, self.error.message, self.error.call_stack,
                                        self.error.op, self.error.op_inputs, function, function_inputs)
            return
        self.error = TraceError(type(exc).__name__, str(exc), stack if stack is not None else tuple(self.stack), op,
                                op_inputs, function, function_inputs)
