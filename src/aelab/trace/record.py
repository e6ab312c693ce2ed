"""Prepare inputs for a model (meta, fake or real) and record one run: the trace's front door.

The ladder, each rung tried only when the one before cannot answer (the notes say which ran and why):
1. meta (a model built on meta) or fake (a model with weights: FakeTensorMode keeps its device, so the
   kernels are the ones a real run on it picks) execution at the user's batch, with the real values of
   everything that does not depend on the weights computed beside it (`trace.shadow`), so masks, position
   ids and lengths are read exactly; a meta/fake kernel stricter than the CPU one is run on CPU zeros of the
   same shapes for its output shapes (`Trace.probes`). Shapes only first: most models read no value, and
   following none saves ~7% of a small model's inspect; at the first op that needs one (a read, a kernel
   that raised) every RNG is put back and the run is redone with values (the forward's Python runs twice).
2. a value read depends on the weights: one real forward at the user's batch, weights made one module at a
   time and freed after it (`trace.materialize`), then rung 1 again replaying its answers (backward too).
3. the replay diverges, or rung 1 failed in Python code: a recorded real forward (module by module on a
   meta model, forward only). The model is called wrong (`Trace.error`) only when a real forward fails too.
Every RNG is restored afterwards (torch's, Python's, NumPy's, the generators a module holds); the model comes
back unchanged.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from aelab.errors import UsageError
from aelab.trace.build import build_notes
from aelab.trace.hostrng import all_rng_restored, draw_words, held_states
from aelab.trace.inputs import InputSpec, synthetic_input
from aelab.trace.materialize import real_answers, streamed
from aelab.trace.params import restore, snapshot
from aelab.trace.recorder import NeedsRealForward, NeedsValues, run
from aelab.trace.records import HostDraw, Read, Trace
from aelab.trace.shadow import RANDOM, REPLAYED, SYNTHETIC
from aelab.trace.walk import ModelParts, walk

InputLike = InputSpec | torch.Tensor | Sequence[int]
_MAX_KNOWN = 1 << 24  # a user's tensor larger than this (elements) is not copied for its values


def as_input_spec(obj: Any) -> InputSpec | torch.Tensor:
    """A tensor stays a tensor (a meta tensor becomes its shape); a shape tuple/list or InputSpec an InputSpec."""
    if isinstance(obj, torch.Tensor):
        return InputSpec(tuple(obj.shape), obj.dtype) if obj.device.type == "meta" else obj
    if isinstance(obj, InputSpec):
        return obj
    if isinstance(obj, torch.Size) or (isinstance(obj, (tuple, list)) and all(isinstance(d, int) for d in obj)):
        dims = tuple(int(d) for d in obj)
        if not dims or any(d <= 0 for d in dims):
            raise UsageError(f"input shape {dims} must have positive sizes")
        return InputSpec(dims)
    raise UsageError(f"an input must be a tensor or a shape, not {type(obj).__name__}")


def is_meta_model(model: nn.Module) -> bool:
    """Built on meta: some parameter or buffer has no values."""
    return any(t.device.type == "meta" for t in itertools.chain(model.parameters(), model.buffers()))


def model_device(model: nn.Module) -> torch.device:
    """meta for a model with any meta tensor, else the device of its first parameter or buffer (cpu if none)."""
    if is_meta_model(model):
        return torch.device("meta")
    for t in itertools.chain(model.parameters(), model.buffers()):
        return t.device
    return torch.device("cpu")


@dataclass
class PreparedInputs:
    """Inputs prepared for one run: the stand-ins the model gets, their real values, the real inputs."""

    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    known: list[tuple[torch.Tensor, torch.Tensor, int]] = field(default_factory=list)
    real_args: list[torch.Tensor] = field(default_factory=list)
    real_kwargs: dict[str, torch.Tensor] = field(default_factory=dict)


def prepare_inputs(specs: Sequence[InputSpec | torch.Tensor], kwspecs: Mapping[str, InputSpec | torch.Tensor],
                   device: torch.device, fake_mode: FakeTensorMode | None, *, values: bool = True) -> PreparedInputs:
    """The inputs of one run on `device`: stand-ins (fake under `fake_mode`, else meta), the real values
    the shadow answers reads with (the user's small tensors, synthetic values for a shape), and the real
    inputs for a real forward. Every room that runs a model on stand-ins prepares its inputs here.
    `values=False`: the stand-ins only (a shapes-only run: `recorder.run(values=False)`)."""
    out = PreparedInputs()
    real_device = torch.device("cpu") if device.type == "meta" else device
    for i, (key, spec) in enumerate([*((None, s) for s in specs), *kwspecs.items()]):
        stand = _stand_in(spec, device, fake_mode)
        if key is None:
            out.args.append(stand)
        else:
            out.kwargs[key] = stand
        if not values:
            continue
        if isinstance(spec, torch.Tensor):
            value, taint = spec.detach(), 0
            real = spec.to(real_device)
            known = spec.numel() <= _MAX_KNOWN
        else:
            value, taint = synthetic_input(spec.shape, spec.dtype, key, i), SYNTHETIC
            real, known = value.to(real_device), True
        if known:
            out.known.append((stand, value.cpu().clone(), taint))
        if key is None:
            out.real_args.append(real)
        else:
            out.real_kwargs[key] = real
    return out


def _stand_in(spec: InputSpec | torch.Tensor, device: torch.device, fake_mode: FakeTensorMode | None) -> torch.Tensor:
    """What the model gets for one input: a fake tensor under `fake_mode` (the user's tensor converted), else a
    meta one of its shape and dtype."""
    shape, dtype = (tuple(spec.shape), spec.dtype)
    if fake_mode is None:
        return torch.empty(shape, dtype=dtype, device="meta")
    with fake_mode:
        return fake_mode.from_tensor(spec) if isinstance(spec, torch.Tensor) else \
            torch.empty(shape, dtype=dtype, device=device)


@contextlib.contextmanager
def _flags_kept(model: nn.Module, eval_mode: bool) -> Iterator[None]:
    snap = snapshot(model)
    if eval_mode:
        model.eval()
    try:
        yield
    finally:
        restore(model, snap)


def _rung1(model: nn.Module, specs: Any, kwspecs: Any, *, backward: bool, eval_mode: bool,
           oracle: Any = None, redo: Callable[[], None] | None = None, parts: ModelParts | None = None) -> Trace:
    """Rung 1: shapes only first (no value followed, cheaper), unless a real run's answers are replayed; at the
    first op that needs a value (`NeedsValues`), `redo()` puts every RNG back and the run is redone with the
    values that do not depend on the weights followed (`trace.shadow`)."""
    device = model_device(model)

    def attempt(values: bool) -> Trace:
        fake_mode = None if device.type == "meta" else FakeTensorMode(allow_non_fake_inputs=True)
        inp = prepare_inputs(specs, kwspecs, device, fake_mode, values=values)
        return run(model, inp.args, inp.kwargs, execution="meta" if fake_mode is None else "fake",
                   backward=backward, fake_mode=fake_mode, known=inp.known, oracle=oracle, eval_mode=eval_mode,
                   values=values, parts=parts)

    if oracle is None and redo is not None:
        try:
            return attempt(values=False)
        except NeedsValues:
            redo()
    return attempt(values=True)


def _recorded_real(model: nn.Module, specs: Any, kwspecs: Any, *, backward: bool, eval_mode: bool) -> Trace:
    """Rung 3: record a real forward at the user's batch (a meta model's weights made module by module)."""
    meta = is_meta_model(model)
    inp = prepare_inputs(specs, kwspecs, model_device(model), None)
    inner = streamed(model) if meta else contextlib.nullcontext()
    try:
        return run(model, inp.real_args, inp.real_kwargs, execution="real", backward=backward and not meta,
                   inner=inner, eval_mode=eval_mode)
    except NeedsRealForward as exc:  # a meta tensor outside the model's parameters, buffers and attributes
        where = f" in {exc.module}" if exc.module else ""
        raise UsageError(f"{exc.op}{where} reads the value of a meta tensor that no initialisation makes (held "
                         "outside the model's parameters, buffers and tensor attributes): build the model on "
                         "CPU (--device cpu) to trace it") from exc


def record(model: nn.Module, inputs: Sequence[InputLike] = (), kwinputs: Mapping[str, InputLike] | None = None, *,
           backward: bool = True, eval_mode: bool = False) -> Trace:
    """Record one run of `model` at the batch asked for, without allocating activations where the values
    are not needed (see the module doc for the ladder). `eval_mode` traces with `model.eval()` (restored
    afterwards): dropout and LayerDrop then take no random draws."""
    specs = [as_input_spec(x) for x in inputs]
    kwspecs = {k: as_input_spec(v) for k, v in (kwinputs or {}).items()}
    notes: list[str] = []
    parts = walk(model)
    with all_rng_restored() as rngs, held_states(model, parts) as held:
        def redo() -> None:
            rngs.reset()
            held.reset()

        try:
            trace = _rung1(model, specs, kwspecs, backward=backward, eval_mode=eval_mode, redo=redo, parts=parts)
            if trace.error is not None and trace.error.op is None:
                trace = _blame(model, specs, kwspecs, trace, notes, backward=backward, eval_mode=eval_mode)
        except NeedsRealForward as exc:
            trace = _rung2(model, specs, kwspecs, exc, notes, backward=backward, eval_mode=eval_mode)
        trace.host_draws += held.draws(eval_mode)
    trace.notes = build_notes(model) + _notes(trace) + notes + trace.notes
    return trace


def _blame(model: nn.Module, specs: Any, kwspecs: Any, failed: Trace, notes: list[str], *, backward: bool,
           eval_mode: bool) -> Trace:
    """Rung 1 failed in Python code, not in a kernel: is it the model, or the tracing? A real forward decides."""
    inp = prepare_inputs(specs, kwspecs, model_device(model), None)
    try:
        with _flags_kept(model, eval_mode):
            real_answers(model, inp.real_args, inp.real_kwargs)
    except Exception:
        notes.append("A real forward at the same inputs fails too: the error is the model's.")
        return failed
    trace = _recorded_real(model, specs, kwspecs, backward=backward, eval_mode=eval_mode)
    notes.append(f"The {failed.execution} run failed ({failed.error.exc_type if failed.error else '?'}: "
                 f"{_first_line(failed.error.message if failed.error else '')}) but a real forward runs: traced "
                 f"with a real forward at the same batch{_streamed_words(model)}.")
    return trace


def _rung2(model: nn.Module, specs: Any, kwspecs: Any, exc: NeedsRealForward, notes: list[str], *,
           backward: bool, eval_mode: bool) -> Trace:
    where = f" in {exc.module}" if exc.module else ""
    why = f"{exc.op}{where} reads a value computed from the weights, which meta/fake execution does not have"
    inp = prepare_inputs(specs, kwspecs, model_device(model), None)
    try:
        with _flags_kept(model, eval_mode):
            oracle, unrecovered = real_answers(model, inp.real_args, inp.real_kwargs)
    except Exception as real_exc:
        trace = _recorded_real(model, specs, kwspecs, backward=backward, eval_mode=eval_mode)
        notes.append(f"{why}; a real forward at the same batch fails too ({type(real_exc).__name__}): "
                     "the error is the model's.")
        return trace
    if unrecovered:
        notes.append(_unrecovered(unrecovered))
    try:
        trace = _rung1(model, specs, kwspecs, backward=backward, eval_mode=eval_mode, oracle=oracle)
    except NeedsRealForward:
        trace = _recorded_real(model, specs, kwspecs, backward=backward, eval_mode=eval_mode)
        notes.append(f"{why}; replaying a real forward's answers diverged, so a real forward at the same batch "
                     f"was recorded instead{_streamed_words(model)}"
                     + (" (forward only: backward would need every weight at once)." if is_meta_model(model)
                        else "."))
        return trace
    how = "weights initialised one module at a time and freed after it, " if is_meta_model(model) else ""
    notes.append(f"{why}: a real forward at the same batch ran first ({how}no autograd) and this "
                 f"{trace.execution} run replayed its {oracle.count} value reads.")
    return trace


def _streamed_words(model: nn.Module) -> str:
    return " (weights initialised one module at a time and freed after it)" if is_meta_model(model) else ""


def _unrecovered(names: list[str]) -> str:
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return (f"Values not recoverable on meta (no initialisation writes them): {shown}; the real run used "
            "zeros for them. Build the model with --device cpu for its own values.")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:160] if text.strip() else ""


def _notes(trace: Trace) -> list[str]:
    """Which mode ran and why: the values read, where their answers came from, kernels retried on CPU, random
    draws (torch's, Python's, NumPy's) the count depends on."""
    out: list[str] = []
    if trace.probes:
        for op, why in trace.probes.items():
            out.append(f"The {trace.execution} kernel of {op} refused ({_first_line(why)}); the CPU kernel runs "
                       "it, so its output shapes were taken from a CPU run on zeros of the same shapes.")
    if not trace.reads and not trace.host_draws:
        return out
    exact = [r for r in trace.reads if not r.taint & (RANDOM | REPLAYED)]
    if exact:
        where = _where(exact)
        synthetic = any(r.taint & SYNTHETIC for r in exact)
        out.append(f"{len(exact)} value read{'s' if len(exact) > 1 else ''} ({where}) computed from the inputs "
                   f"alone, answered exactly beside the {trace.execution} run without the weights"
                   + ("; inputs given as shapes stand for integers 0, masks and booleans 1, floats N(0, 1): pass "
                      "tensors through the API for your values." if synthetic else "."))
    causes = random_causes(trace.reads, [d for d in trace.host_draws if d.training])
    if causes:
        out.append(f"This count is one random draw: {'; '.join(causes)}; trace in eval mode with `--eval` for a "
                   "deterministic one.")
    idle = [d for d in trace.host_draws if not d.training]
    if idle:
        out.append(f"In eval mode, {draw_words(idle)}: the count is exact unless that number changes what runs "
                   "(a LayerDrop written without a training check).")
    replayed = [r for r in trace.reads if r.taint & REPLAYED and not r.random]
    if replayed:
        out.append(f"{_where(replayed)}: values computed from the weights (e.g. which experts run) come from one "
                   "real forward" + (" on initialised weights, not trained ones" if trace.execution == "meta" else "")
                   + ".")
    return out


def random_causes(reads: Sequence[Read], draws: Sequence[HostDraw]) -> list[str]:
    """What makes a run one random draw, in words: `reads` of torch's random numbers that choose control flow,
    `draws` from Python's `random` or NumPy (by module). Every room that notes it says it with these."""
    random_reads = [r for r in reads if r.random]
    causes = [f"{_where(random_reads)} {'chooses' if len(random_reads) == 1 else 'choose'} control flow from a "
              "random number (e.g. LayerDrop in train mode)"] if random_reads else []
    if draws:
        causes.append(draw_words(list(draws)))
    return causes


def _where(reads: Sequence[Any]) -> str:
    counts: dict[str, int] = {}
    for r in reads:
        key = f"{r.op} in {r.module or 'the root'}"
        counts[key] = counts.get(key, 0) + 1
    items = [f"{k} ×{n}" if n > 1 else k for k, n in counts.items()]
    return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")
