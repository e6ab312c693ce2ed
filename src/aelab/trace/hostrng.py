"""Random numbers a forward draws outside torch: Python's `random`, NumPy's global RNG, NumPy Generators.

torch's own draws are ops (`shadow.RANDOM` marks what they decide); these are not, so a LayerDrop written
`if np.random.random() < p` or `random.uniform(0, 1) < p`, or SpecAugment's `np.random.rand` and
`np.random.choice` (transformers' Wav2Vec2, HuBERT, Whisper; MusicGen's LayerDrop), would make the count one
random draw without a word. Nothing here runs per op or per module call:
- while a run is recorded (`record()`'s, or `trace.step`'s training step), the draw functions of `random`
  and `numpy.random` are wrapped where code looks them up (`random.uniform`, `np.random.rand`, an unseeded
  `np.random.default_rng()`): a call records which function and the module running, with its training flag;
- around the run, a fingerprint of each global RNG's state (Python's, NumPy's) is compared: a change no
  wrapped call explains (a name imported before the run, `from numpy.random import rand`; scipy's `rvs()`)
  is reported at no module;
- around `record()` and `step.simulate`, every NumPy Generator/RandomState or `random.Random` a module holds
  as an attribute is saved, compared (a moved one is a draw of the module holding it) and put back
  (`held_states`).
Not seen: an RNG made and used inside the forward with its own seed source (`random.Random()`,
`np.random.RandomState()`); a NumPy draw through such an imported name that only takes the legacy cached
Gaussian. `all_rng_restored` puts the global states back.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import operator
import random
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from aelab.trace.records import HostDraw
from aelab.trace.walk import ModelParts

NUMPY, PYTHON = "numpy", "python"
_RNG_NAMES = {NUMPY: "NumPy's RNG", PYTHON: "Python's random"}
_NOT_DRAWS = frozenset({"seed", "getstate", "setstate", "get_state", "set_state"})
_MT_BYTES = 624 * 4 + 4  # numpy's mt19937_state: uint32 key[624], int pos


def _numpy() -> Any:
    return sys.modules.get("numpy")  # torch imports it when installed; a run never imports it for us


class Watch:
    """The draws of one recorded run, by (rng, call, module, training), counted in the order first seen;
    `where()` is the path of the module running (the recorder's, or a training step's)."""

    def __init__(self, model: nn.Module, where: Callable[[], str]) -> None:
        self.model = model
        self.where = where
        self.counts: dict[tuple[str, str, str | None, bool], int] = {}
        self.explained: set[str] = set()  # the global RNGs a wrapped call drew from
        self._modules: dict[str, nn.Module] | None = None

    def drew(self, rng: str, call: str, global_: bool) -> None:
        if global_:
            self.explained.add(rng)
        path = self.where()
        self.add(rng, call, path, self._training(path))

    def add(self, rng: str, call: str, module: str | None, training: bool) -> None:
        key = (rng, call, module, training)
        self.counts[key] = self.counts.get(key, 0) + 1

    def _training(self, path: str) -> bool:
        if self._modules is None:
            self._modules = dict(self.model.named_modules(remove_duplicate=False))
        module = self._modules.get(path, self.model)
        return module.training

    def draws(self) -> list[HostDraw]:
        return [HostDraw(rng, call, module, training, n) for (rng, call, module, training), n in self.counts.items()]


_WATCH: Watch | None = None  # the run being watched, if any


def _wrapped(rng: str, label: str, fn: Callable[..., Any], generator: bool = False) -> Callable[..., Any]:
    """`fn`, recording each call into the running Watch; `generator`: `default_rng`, a draw only unseeded."""
    @functools.wraps(fn)
    def drawing(*args: Any, **kwargs: Any) -> Any:
        watch = _WATCH
        if watch is not None and not (generator and _seeded(args, kwargs)):
            watch.drew(rng, label, not generator)
        return fn(*args, **kwargs)

    return drawing


def _seeded(args: Any, kwargs: Any) -> bool:
    return (args[0] if args else kwargs.get("seed")) is not None


@functools.lru_cache(maxsize=2)
def _patches(np: Any) -> tuple[tuple[dict[str, Any], Any, dict[str, Any]], ...]:
    """Per module (its namespace, a getter of what it holds under the names, name -> wrapper): every draw
    function of `random` and `numpy.random` (the bound methods of their hidden global instances), and
    `default_rng` (a draw when unseeded: OS entropy). Patching is two C-level dict updates per module."""
    out = []
    rngs = [(random, random._inst, PYTHON, "random")]
    if np is not None:
        rngs.append((np.random, np.random.mtrand._rand, NUMPY, "np.random"))
    for module, instance, rng, prefix in rngs:
        wrappers = {n: _wrapped(rng, f"{prefix}.{n}", f) for n, f in sorted(vars(module).items())
                    if getattr(f, "__self__", None) is instance and n not in _NOT_DRAWS}
        if rng == NUMPY:
            wrappers["default_rng"] = _wrapped(NUMPY, "np.random.default_rng()", module.default_rng, generator=True)
        out.append((vars(module), operator.itemgetter(*wrappers), wrappers))
    return tuple(out)


# --- fingerprints: a state's bytes where their layout checks out (~1 µs), else the public getter -----------
@functools.lru_cache(maxsize=4)
def _python_address(instance: Any) -> int | None:
    """Where CPython keeps a `random.Random`'s Mersenne Twister (`int index; uint32_t state[624]` after the
    object header), if reading it there gives what `getstate()` says: checked once per instance (the cache
    keeps it alive). 2.5 kB copied in ~1 µs, against ~25 µs to build and compare `getstate()` twice."""
    address = id(instance) + object.__basicsize__
    if type(instance).__basicsize__ < object.__basicsize__ + _MT_BYTES:
        return None
    raw = ctypes.string_at(address, _MT_BYTES)
    index = int.from_bytes(raw[:4], sys.byteorder, signed=True)
    words = tuple(int.from_bytes(raw[i:i + 4], sys.byteorder) for i in range(4, _MT_BYTES, 4))
    state = instance.getstate()[1]
    return address if state == (*words, index) else None


def _python_fingerprint() -> object:
    instance = random._inst
    address = _python_address(instance)
    if address is None:
        return instance.getstate()
    return ctypes.string_at(address, _MT_BYTES), getattr(instance, "gauss_next", None)  # gauss() caches one


@functools.lru_cache(maxsize=4)
def _numpy_address(bitgen: Any) -> int | None:
    """Where an MT19937 keeps its state (its documented `ctypes.state_address`: `uint32 key[624]; int pos`),
    if reading it there gives what its `state` says: checked once per bit generator (the cache keeps it
    alive). ~1 µs, against ~50 µs for `np.random.get_state()`."""
    np = _numpy()
    if type(bitgen).__name__ != "MT19937":
        return None
    address = bitgen.ctypes.state_address
    raw = ctypes.string_at(address, _MT_BYTES)
    state = bitgen.state["state"]
    key = np.frombuffer(raw[:624 * 4], dtype=np.uint32)
    pos = int.from_bytes(raw[624 * 4:], sys.byteorder, signed=True)
    return address if pos == state["pos"] and np.array_equal(key, state["key"]) else None


def _numpy_fingerprint(np: Any) -> object:
    legacy = np.random.mtrand._rand
    bitgen = legacy._bit_generator
    address = _numpy_address(bitgen)
    if address is None:
        return _frozen(legacy.get_state())
    return bitgen, ctypes.string_at(address, _MT_BYTES)


def _frozen(obj: Any) -> Any:
    """A state (tuples, dicts, arrays) as something == compares."""
    if isinstance(obj, dict):
        return tuple((k, _frozen(v)) for k, v in obj.items())
    if isinstance(obj, (tuple, list)):
        return tuple(_frozen(v) for v in obj)
    return obj.tobytes() if hasattr(obj, "tobytes") else obj


@contextlib.contextmanager
def watched(model: nn.Module, where: Callable[[], str]) -> Iterator[Watch]:
    """Record the draws from the global RNGs of the run inside (see the module doc) into the Watch yielded;
    `where()` names the module running when one is drawn."""
    global _WATCH
    np = _numpy()
    watch = Watch(model, where)
    patches = _patches(np)
    python_before = _python_fingerprint()
    numpy_before = _numpy_fingerprint(np) if np is not None else None
    previous, _WATCH = _WATCH, watch
    found = [(namespace, getter(namespace)) for namespace, getter, _ in patches]  # the originals, unless nested
    for namespace, _, wrappers in patches:
        namespace.update(wrappers)
    try:
        yield watch
    finally:
        for (namespace, _, wrappers), (_, values) in zip(patches, found, strict=True):
            namespace.update(zip(wrappers, values, strict=True))
        _WATCH = previous
        if PYTHON not in watch.explained and _python_fingerprint() != python_before:
            watch.add(PYTHON, "", None, model.training)
        if np is not None and NUMPY not in watch.explained and _numpy_fingerprint(np) != numpy_before:
            watch.add(NUMPY, "", None, model.training)


class GlobalStates:
    """The global RNG states when `all_rng_restored` began: torch's (CPU, and CUDA once initialised), Python's
    and NumPy's; `reset()` puts them back (a run that is redone starts from the same draws)."""

    def __init__(self) -> None:
        self.python = random.getstate()
        try:
            import numpy as np
        except ImportError:  # pragma: no cover - numpy ships with torch's wheels
            np = None  # type: ignore[assignment]
        self.np = np
        self.numpy: Any = np.random.get_state() if np is not None else None  # ('MT19937', key, pos, has_gauss, ..)
        self.numpy_print = _numpy_fingerprint(np) if np is not None else None
        self.torch = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

    def reset(self) -> None:
        """Every state back. NumPy's only when it moved (its fingerprint changed, or it held a cached Gaussian a
        draw may take without moving the twister): `set_state` costs ~35 us, a third of the whole."""
        random.setstate(self.python)
        np = self.np
        if np is not None and (self.numpy[3] or _numpy_fingerprint(np) != self.numpy_print):
            np.random.set_state(self.numpy)
        torch.set_rng_state(self.torch)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


@contextlib.contextmanager
def all_rng_restored() -> Iterator[GlobalStates]:
    """Run a block and put back every random state it may draw from: torch CPU/CUDA, `random`, NumPy."""
    states = GlobalStates()
    try:
        yield states
    finally:
        states.reset()


# --- generators a module holds: one check per record(), not per run ----------------------------------------
def held_rngs(model: nn.Module, parts: ModelParts | None = None) -> list[tuple[str, str, Any]]:
    """(module path, attribute, RNG) of every NumPy Generator/RandomState or `random.Random` a module holds.
    One C-level pass over the types of every module's attributes (~50 ns each); paths only when one is held.
    `parts`: the model's, if walked."""
    np = _numpy()
    kinds = {random.Random} | ({np.random.Generator, np.random.RandomState} if np is not None else set())
    if parts is not None:
        modules = [m for _, m in parts.unique_modules]
    else:
        modules, seen = [model], {id(model)}
        for module in modules:
            for child in module._modules.values():
                if child is not None and id(child) not in seen:
                    seen.add(id(child))
                    modules.append(child)
    if kinds.isdisjoint(map(type, itertools.chain.from_iterable(map(dict.values, map(vars, modules))))):
        return []
    return [(path, name, v) for path, module in model.named_modules() for name, v in vars(module).items()
            if type(v) in kinds]


def _state_of(rng: Any) -> Any:
    if isinstance(rng, random.Random):
        return rng.getstate()
    return rng.bit_generator.state if hasattr(rng, "bit_generator") else rng.get_state()


def _set_state(rng: Any, state: Any) -> None:
    if isinstance(rng, random.Random):
        rng.setstate(state)
    elif hasattr(rng, "bit_generator"):
        rng.bit_generator.state = state
    else:
        rng.set_state(state)


class Held:
    """The RNGs a model's modules hold and their states when `held_states` began."""

    def __init__(self, model: nn.Module, parts: ModelParts | None = None) -> None:
        self.model = model
        self.saved = [(path, name, rng, _state_of(rng)) for path, name, rng in held_rngs(model, parts)]

    def reset(self) -> None:
        """Each held RNG back in its state when `held_states` began."""
        for _, _, rng, state in self.saved:
            _set_state(rng, state)

    def draws(self, eval_mode: bool) -> list[HostDraw]:
        """One draw per held RNG whose state moved, at the module holding it (a forward that uses a module's
        generator is that module's). `eval_mode`: the runs were in eval mode, whatever the flags say now."""
        out = []
        for path, name, rng, before in self.saved:
            if _frozen(_state_of(rng)) != _frozen(before):
                training = self.model.get_submodule(path).training and not eval_mode
                out.append(HostDraw(PYTHON if isinstance(rng, random.Random) else NUMPY,
                                    f"its {type(rng).__name__} `{name}`", path, training))
        return out


@contextlib.contextmanager
def held_states(model: nn.Module, parts: ModelParts | None = None) -> Iterator[Held]:
    """Run a block and put back the state of every RNG the model's modules hold (`parts`: the model's, if
    walked)."""
    held = Held(model, parts)
    try:
        yield held
    finally:
        held.reset()


def draw_words(draws: list[HostDraw]) -> str:
    """'encoder.layers.1 drew from NumPy's RNG (np.random.rand ×2)', by module and RNG."""
    groups: dict[tuple[str | None, str], dict[str, int]] = {}
    for d in draws:
        calls = groups.setdefault((d.module, d.rng), {})
        calls[d.call] = calls.get(d.call, 0) + d.count
    items = []
    for (module, rng), calls in groups.items():
        named = [f"{c} ×{n}" if n > 1 else c for c, n in calls.items() if c]
        how = f" ({', '.join(named)})" if named else ""
        if module is None:
            how = f" (not through {'np.random' if rng == NUMPY else 'random'}.*, so not placed in a module)"
        items.append(f"{'the forward' if module is None else module or 'the root'} drew from {_RNG_NAMES[rng]}{how}")
    return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")
