"""Drive whole training steps under the lifetime recording: forward, loss, backward, each optimizer's steps.

One step is what a training loop does: forward (under autocast when asked), the loss, `backward()`,
`optimizer.step()`, `optimizer.zero_grad(set_to_none=True)`. It runs for real on fake/meta tensors, so
autograd, autocast and `torch.optim` behave exactly as they do on real ones, and nothing is allocated;
`aelab.trace.lifetimes` records every storage's life meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from aelab.trace.hostrng import all_rng_restored, held_states, watched
from aelab.trace.inputs import InputSpec
from aelab.trace.lifetimes import Op, StepLog, WeakKnown, _Lifetimes, _Scope
from aelab.trace.materialize import known_buffers
from aelab.trace.modes import fake_kernel_log_off, saved_alias
from aelab.trace.record import as_input_spec, model_device, prepare_inputs, random_causes
from aelab.trace.shadow import Shadow
from aelab.trace.standins import Attributes, followed, run_attributes
from aelab.trace.tensors import flatten_tensors
from aelab.trace.walk import walk

#: optimizer names -> (class, keyword arguments); the learning rate is irrelevant to memory
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {"lr": 1e-3}),
    "sgd-momentum": ("SGD", {"lr": 1e-3, "momentum": 0.9}),
    "adam": ("Adam", {"lr": 1e-3}),
    "adamw": ("AdamW", {"lr": 1e-3}),
}
AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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
                 attributes: Attributes | None = None) -> StepLog:
    """Record a training step of `model` with `params`/`buffers` standing in for its own (fake or meta
    tensors; `requires_grad` on a parameter says it trains), for each optimizer in `optimizers`.

    Forward, loss and backward run once: they do not depend on the optimizer, and the steady state's
    differ from the first step's only by the optimizer state being alive. Then, per optimizer, from
    the gradients backward left: its first `step()` (creating its state) and `zero_grad`; the
    gradients again (`zeros_like`: same storages, same sizes); its steady `step()` and `zero_grad`;
    the optimizer deleted. `StepLog.marks` names the event index where each part begins:
    "forward", "backward_end", "<opt>:first", "<opt>:first_end", "<opt>:steady", "<opt>:steady_grads",
    "<opt>:steady_end", "<opt>:gone".

    `context` is entered around forward and backward (a FakeTensorMode for fake execution); `attributes` puts
    the stand-ins of the modules' plain tensor attributes in place (`trace.standins`). `known` gives the real
    values of some stand-ins (the inputs'); the buffers' and the attributes' are looked up when the forward reads
    them (`aelab.trace.materialize.known_buffers`), so a value the forward reads is answered exactly
    (`aelab.trace.shadow`). `StepLog.reads` and `StepLog.host_draws` say what the step read and drew from
    Python's `random` or NumPy (`aelab.trace.hostrng`). The model's own tensors, flags and training mode are
    not touched; the RNGs are `simulate`'s to put back.
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
    shadow = Shadow(table=WeakKnown())  # a known mask dies when the step drops it
    shadow.writes.active = True  # real tensors the step writes in place are put back (`trace.realwrites`)
    for t, value, taint in known:
        shadow.set(t, value, taint)
    known_buffers(shadow, model, buffers)
    attributes = attributes if attributes is not None else Attributes()
    attributes.defer(shadow)
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
        return saved_alias(t)

    def mark(name: str) -> None:
        log.marks[name] = len(log.events)

    was_training = {m: m.training for m in model.modules()}
    pre = torch.nn.modules.module.register_module_forward_pre_hook(scope.pre)
    post = torch.nn.modules.module.register_module_forward_hook(scope.post, with_kwargs=True, always_call=True)
    ctx = context if context is not None else contextlib.nullcontext()
    model.train()
    try:
        with watched(model, lambda: scope.where()[2]) as watch, mode, checkpointed(model, checkpoint):
            scope.step = 1
            scope.phase = "forward"
            mark("forward")
            with ctx, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                autocast: Any = (torch.autocast("cpu", dtype=amp_dtype) if amp_dtype is not None
                                 else contextlib.nullcontext())
                with autocast, followed(attributes):
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
        log.reads = list(shadow.reads)
        log.host_draws = watch.draws()
    finally:
        shadow.writes.restore()
        pre.remove()
        post.remove()
        for h in scope.handles:
            h.remove()
        for m, flag in was_training.items():
            m.training = flag
    return log


def simulate(model: nn.Module, specs: Sequence[InputSpec | torch.Tensor], kwspecs: Mapping[str, Any],
             flags: Mapping[str, bool], *, optimizers: Sequence[str], amp: str, loss: str = "sum",
             checkpoint: Sequence[str] = (), foreach: bool | None = None) -> StepLog:
    """`record_steps` on stand-ins for `model`'s weights and the inputs: fake tensors (one FakeTensorMode,
    entered around the step) for a model with weights, meta ones for a meta model. `flags[name]` says
    whether a parameter trains. The inputs are prepared as `record` prepares them (`prepare_inputs`), so
    reads of masks and position ids are answered; a buffer the forward reads is answered from the model's
    own values (on meta, as `aelab.trace.materialize` recovers them). The model itself is not touched, and
    every RNG comes back as it was (torch's, Python's, NumPy's, the generators a module holds), as after
    `record`; a step whose forward drew a number that can change what runs says so in `StepLog.notes`.
    """
    with all_rng_restored(), held_states(model) as held, fake_kernel_log_off():
        log = _simulate(model, specs, kwspecs, flags, optimizers=optimizers, amp=amp, loss=loss,
                        checkpoint=checkpoint, foreach=foreach)
        log.host_draws += held.draws(eval_mode=False)
    causes = random_causes(log.reads, log.host_draws)  # the step trains: every draw may steer it
    if causes:
        log.notes.append(f"This prediction is one random draw: {'; '.join(causes)}; a step with other draws may "
                         "run other code and need other memory.")
    return log


def _simulate(model: nn.Module, specs: Sequence[InputSpec | torch.Tensor], kwspecs: Mapping[str, Any],
              flags: Mapping[str, bool], **options: Any) -> StepLog:
    where = model_device(model)
    fake = where.type != "meta"
    mode = FakeTensorMode(allow_non_fake_inputs=True) if fake else None
    inp = prepare_inputs([as_input_spec(s) for s in specs], {k: as_input_spec(s) for k, s in kwspecs.items()},
                         where, mode)
    parts = walk(model)
    if mode is None:
        params = {n: _meta(p).requires_grad_(bool(flags.get(n, False))) for n, p in model.named_parameters()}
        buffers = {n: _meta(b) for n, b in model.named_buffers()}
        attributes = run_attributes(parts)  # a meta stand-in shares a meta tensor's storage: a view follows
    else:
        with mode:
            params = {n: mode.from_tensor(p).detach().requires_grad_(bool(flags.get(n, False)))
                      for n, p in model.named_parameters()}
            buffers = {n: mode.from_tensor(b) for n, b in model.named_buffers()}
            attributes = run_attributes(parts, mode)
    return record_steps(model, params, buffers, inp.args, inp.kwargs, context=mode, known=inp.known,
                        attributes=attributes, **options)


def _meta(t: torch.Tensor) -> torch.Tensor:
    """A meta stand-in (a meta model's stray CPU tensor, a legacy `torch.Tensor(...)`, becomes meta too)."""
    return t.detach() if t.device.type == "meta" else torch.empty_strided(tuple(t.shape), tuple(t.stride()),
                                                                           dtype=t.dtype, device="meta")
