"""Real values for a model built on meta, one module at a time, and the answers of one real forward.

When a value the program reads depends on the weights (an MoE router's `nonzero`, a data-dependent loop),
no meta trick knows it: a real forward must run. `real_answers` runs one at the user's batch without ever
holding the whole model: a dispatch mode swaps each meta parameter or buffer, at the first op that touches
it, for a real CPU value (`Materializer`), and frees it when the module that needed it returns (no autograd,
so nothing keeps it alive); a meta tensor kept on its storage (a view made in `__init__`) gets the same bytes
of that value, so a write through it lands there. Memory is about the largest module plus the activations.
The answers of every value read (`.item()`, `nonzero`, ...) are kept in an `Oracle`, keyed by op and input
shapes, and the meta run is then replayed with them: same control flow, the user's batch, backward included,
no weights.

Where the values come from, for a meta model (a real model's own weights are used as they are):
- parameters: each module's own initialisation on an empty CPU copy of the module (transformers'
  `PreTrainedModel._init_weights(module)`, else torch's `reset_parameters()`), seeded by the owner's path, so
  a tied parameter gets the same values wherever it is used; what no init covers is drawn from N(0, 0.02).
  They are an initialisation, not the user's trained weights: a read that depends on them is one draw.
- buffers: values recorded while the model was built (`remember_buffers`, the CLI's build), else the same
  inits (transformers 5 initialises `position_ids` and rotary `inv_freq` in `_init_weights`; BatchNorm resets
  its statistics). A buffer no init writes is not recoverable: it is zeros and the notes say so.
Every RNG (torch CPU and CUDA, Python's, NumPy's) is restored afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import weakref
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map

from aelab.trace.hostrng import all_rng_restored
from aelab.trace.modes import DispatchMode
from aelab.trace.shadow import NOTHING, Shadow, _kind, _storage
from aelab.trace.standins import followed, stand_ins
from aelab.trace.walk import ModelParts, walk

# model -> {buffer name: real value}, recorded while the CLI built it on meta (see `remember_buffers`)
_BUILT_BUFFERS: weakref.WeakKeyDictionary[nn.Module, dict[str, torch.Tensor]] = weakref.WeakKeyDictionary()


def remember_buffers(model: nn.Module, values: dict[str, torch.Tensor]) -> None:
    """Keep the real values of a meta model's buffers, known while it was constructed."""
    _BUILT_BUFFERS[model] = values


def _seed(path: str) -> int:
    return zlib.crc32(path.encode()) & 0x7FFFFFFF


class Materializer:
    """Real CPU values of a meta model's parameters and buffers, made per owning module on demand."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.owner: dict[int, tuple[str, nn.Module, str]] = {}  # id(tensor) -> (module path, module, attr)
        self.init_fn: dict[int, Any] = {}  # id(module) -> the PreTrainedModel whose _init_weights covers it
        self.built = _BUILT_BUFFERS.get(model, {})
        self.unrecovered: list[str] = []
        self.cache: dict[int, torch.Tensor] = {}
        self._sentinel_left: set[str] = set()
        self._modules: dict[int, str] = {}
        self._buffers_of: dict[int, dict[str, torch.Tensor]] = {}  # id(module) -> its buffers' values (buffer_value)
        self._on_storage: dict[int, torch.Tensor] | None = None  # storage -> a parameter/buffer on it (`alias_base`)

        def walk(module: nn.Module, path: str, hf: Any) -> None:
            if id(module) in self._modules:
                return
            self._modules[id(module)] = path
            kind = type(module)  # asked of the class: a missing attribute through nn.Module.__getattr__ costs ~5 us
            if hasattr(kind, "_init_weights") and ("config" in vars(module) or hasattr(kind, "config")):
                hf = module
            self.init_fn[id(module)] = hf
            for attr, t in [*module._parameters.items(), *module._buffers.items()]:
                if t is not None and id(t) not in self.owner:
                    self.owner[id(t)] = (path, module, attr)
            for name, child in module._modules.items():
                if child is not None:
                    walk(child, f"{path}.{name}" if path else name, hf)

        walk(model, "", None)

    def knows(self, t: torch.Tensor) -> bool:
        return id(t) in self.owner

    def value(self, t: torch.Tensor) -> torch.Tensor:
        """The real value standing for meta parameter/buffer `t` (cached until `evict`)."""
        hit = self.cache.get(id(t))
        if hit is not None:
            return hit
        path, module, _ = self.owner[id(t)]
        for attr, real in self.module_values(module, path).items():
            src = module._parameters.get(attr, module._buffers.get(attr))
            if src is not None:
                self.cache[id(src)] = real
        return self.cache[id(t)]

    def alias_base(self, t: torch.Tensor) -> torch.Tensor | None:
        """The parameter or buffer on whose storage meta tensor `t` lies, when `t` is none of them: a view kept
        as a plain attribute (`self.alias = self.width.view(1)` in `__init__`), made before any run."""
        if self._on_storage is None:  # built at the first such tensor: most real runs meet none
            self._on_storage = {}
            for _, module, attr in self.owner.values():
                src = module._parameters.get(attr, module._buffers.get(attr))
                if src is not None:
                    self._on_storage.setdefault(_storage(src), src)
        return self._on_storage.get(_storage(t))

    def alias_value(self, base: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """`t`'s bytes of `base`'s real value (`value`, cached): the same offset, sizes and strides on the real
        storage as on the meta one, so a write through `t` lands in the value the module's ops see. A value laid
        out otherwise than `base` (a fresh contiguous one for a strided buffer) is first copied into a real
        storage of base's storage's size, at base's geometry, and cached as such."""
        real = self.value(base)
        geometry = (tuple(base.shape), tuple(base.stride()), base.storage_offset())
        size = base.untyped_storage().nbytes()
        with _disable_current_modes():
            if (tuple(real.shape), tuple(real.stride()), real.storage_offset()) != geometry \
                    or real.dtype != base.dtype or real.untyped_storage().nbytes() < size:
                store = torch.zeros(-(-size // max(base.element_size(), 1)), dtype=base.dtype)
                placed = store.as_strided(*geometry)
                placed.copy_(real)
                self.cache[id(base)] = real = placed
            return torch.empty(0, dtype=t.dtype).set_(real.untyped_storage(), t.storage_offset(), t.shape, t.stride())

    def evict(self, ids: list[int]) -> None:
        for i in ids:
            self.cache.pop(i, None)

    def buffer_value(self, t: torch.Tensor) -> torch.Tensor | None:
        """The exact value of meta buffer `t`, or None when nothing recovers it (no build record, no init).

        Always a fresh tensor the caller may mutate (the shadow runs `num_batches_tracked += 1` on it). A
        module's init runs at most once per `Materializer` for all its buffers, and torch's own norm layers'
        statistics are answered without running it (`_norm_statistic`): re-running a BatchNorm's init under
        a seeded, RNG-restored copy costs ~2 ms, which was half of a ResNet-50 trace."""
        path, module, attr = self.owner[id(t)]
        full = f"{path}.{attr}" if path else attr
        if full in self.built:
            return self.built[full].clone()
        fast = _norm_statistic(module, attr, t) if self.init_fn.get(id(module)) is None else None
        if fast is not None:
            return fast
        values = self._buffers_of.get(id(module))
        if values is None:
            values = self._buffers_of[id(module)] = self.module_values(module, path, note=False)
        value = values.get(attr)
        if value is None or full in self._sentinel_left:
            return None
        return value.clone()

    def module_values(self, module: nn.Module, path: str, *, note: bool = True) -> dict[str, torch.Tensor]:
        """Real values of `module`'s own parameters and buffers (not its children's), see the module doc."""
        with _disable_current_modes(), torch._C.DisableTorchFunction(), torch.no_grad(), all_rng_restored():
            torch.manual_seed(_seed(path))
            shell = copy.copy(module)
            shell._parameters = {}
            shell._buffers = {}
            for attr, p in module._parameters.items():
                if p is not None:
                    real = torch.empty(p.shape, dtype=p.dtype).normal_(0.0, 0.02) if p.is_floating_point() \
                        else torch.zeros(p.shape, dtype=p.dtype)
                    shell._parameters[attr] = nn.Parameter(real, requires_grad=p.requires_grad)
            sentinel: dict[str, torch.Tensor] = {}
            for attr, b in module._buffers.items():
                if b is None:
                    continue
                full = f"{path}.{attr}" if path else attr
                if full in self.built:
                    shell._buffers[attr] = self.built[full].clone()
                elif not b.is_meta:  # a stray real buffer (a legacy `torch.Tensor(...)`) has its own values
                    shell._buffers[attr] = b.detach().clone()
                else:
                    # a bool buffer gets a uint8 7 that no bool holds: an init that writes True/False leaves 1/0,
                    # one that writes nothing is seen as such (a False mark was taken for a recovered False)
                    mark = torch.full(b.shape, float("nan") if b.is_floating_point() else -7, dtype=b.dtype) \
                        if b.dtype != torch.bool else torch.full(b.shape, 7, dtype=torch.uint8)
                    shell._buffers[attr] = mark
                    sentinel[attr] = mark.clone()
            hf = self.init_fn.get(id(module))
            try:
                if hf is not None:
                    hf._init_weights(shell)
                else:
                    for method in ("reset_parameters", "_reset_parameters", "reset_running_stats"):
                        fn = getattr(shell, method, None)
                        if callable(fn):
                            fn()
            except Exception:  # an init that needs more than the module itself: keep the N(0, 0.02) draw
                pass
            out: dict[str, torch.Tensor] = {a: p.detach() for a, p in shell._parameters.items() if p is not None}
            for attr, b in shell._buffers.items():
                if b is None:
                    continue
                full = f"{path}.{attr}" if path else attr
                if attr in sentinel:
                    mark = sentinel[attr]
                    same = (b == mark) | (b.isnan() & mark.isnan()) if b.is_floating_point() else b == mark
                    if bool(same.any()):
                        self._sentinel_left.add(full)
                        if note and full not in self.unrecovered:
                            self.unrecovered.append(full)
                        b = torch.where(same, torch.zeros((), dtype=b.dtype), b)
                    b = b.to(module._buffers[attr].dtype)  # type: ignore[union-attr]
                out[attr] = b
            return out


_NORM_INIT = ("reset_parameters", "_reset_parameters", "reset_running_stats")  # what module_values calls, in order
_NORM_VALUE = {"running_mean": 0, "running_var": 1, "num_batches_tracked": 0}


def _norm_statistic(module: nn.Module, attr: str, t: torch.Tensor) -> torch.Tensor | None:
    """What `module_values` gives a torch norm layer's running statistic, without running the init: torch's
    `_NormBase.reset_running_stats` zeroes `running_mean` and `num_batches_tracked` and fills `running_var`
    with ones. Only when every init method `module_values` would call on `module` is torch's own (a subclass
    that overrides one takes the general path) and the statistics are tracked (else the reset writes nothing
    and the buffer is unrecoverable); None otherwise."""
    from torch.nn.modules.batchnorm import _NormBase

    if attr not in _NORM_VALUE or not isinstance(module, _NormBase) or not module.track_running_stats:
        return None
    for method in _NORM_INIT:
        if getattr(type(module), method, None) is not getattr(_NormBase, method, None):
            return None
    return torch.full(tuple(t.shape), _NORM_VALUE[attr], dtype=t.dtype)


def real_copy(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """A copy of `model` with real weights on `device` (`aelab cost --measure` times it): always a copy, since
    a timed forward in training mode updates BatchNorm's running statistics and the user's model must come
    back unchanged. A meta model's parameters and buffers are made as in `Materializer` (each module's own
    init, exact buffers, dtypes kept), a tied parameter one tensor in the copy too. This allocates the whole
    model: for timing, never for tracing."""
    if not any(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()]):
        return copy.deepcopy(model).to(device)
    mat = Materializer(model)
    clone = copy.deepcopy(model)
    made: dict[int, Any] = {}  # id(original tensor) -> its real copy (shared by every module that ties it)
    originals = dict(model.named_modules(remove_duplicate=False))
    for path, module in clone.named_modules(remove_duplicate=False):
        source = originals[path]
        values: dict[str, torch.Tensor] | None = None
        for kind in ("_parameters", "_buffers"):
            own: dict[str, Any] = getattr(source, kind)
            for attr, t in own.items():
                if t is None:
                    continue
                if id(t) not in made:
                    if t.device.type != "meta":
                        real = t.detach().clone()
                    else:
                        _, owner, _ = mat.owner[id(t)]
                        if owner is source:
                            values = values if values is not None else mat.module_values(source, path)
                            real = values[attr]
                        else:
                            real = mat.value(t)
                    real = real.to(device)
                    made[id(t)] = nn.Parameter(real, requires_grad=t.requires_grad) if kind == "_parameters" \
                        else real
                getattr(module, kind)[attr] = made[id(t)]
    return clone


class Oracle:
    """The answers of one real run's value reads, by (op, input shapes), each key's answers in order."""

    def __init__(self) -> None:
        self.answers: dict[tuple[Any, ...], deque[Any]] = {}
        self.count = 0

    @staticmethod
    def key(name: str, args: Any, kwargs: dict[str, Any]) -> tuple[Any, ...]:
        shapes = tuple(tuple(t.shape) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor))
        return (name, shapes)

    def record(self, name: str, args: Any, kwargs: dict[str, Any], out: Any) -> None:
        kept = tree_map(lambda t: t.detach().clone() if isinstance(t, torch.Tensor) else t, out)
        self.answers.setdefault(self.key(name, args, kwargs), deque()).append(kept)
        self.count += 1

    def pop(self, name: str, args: Any, kwargs: dict[str, Any]) -> Any:
        queue = self.answers.get(self.key(name, args, kwargs))
        return queue.popleft() if queue else NOTHING


class _RealRun(DispatchMode):
    """Swap meta parameters/buffers for real values at the op that touches them; note every value read."""

    def __init__(self, mat: Materializer | None, oracle: Oracle, device: torch.device) -> None:
        super().__init__()
        self.mat = mat
        self.oracle = oracle
        self.device = device
        self.made_in: list[list[int]] = [[]]  # per open module call: ids materialised inside it

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        mat = self.mat

        def swap(x: Any) -> Any:
            if isinstance(x, torch.Tensor) and x.is_meta and mat is not None:
                base = x if mat.knows(x) else mat.alias_base(x)
                if base is not None:
                    fresh = id(base) not in mat.cache
                    value = mat.value(x) if base is x else mat.alias_value(base, x)
                    if fresh:
                        self.made_in[-1].append(id(base))
                    return value
            if isinstance(x, torch.device) and x.type == "meta":
                return self.device
            return x

        args, kwargs = tree_map(swap, args), tree_map(swap, kwargs)
        if kwargs.get("device") == torch.device("meta"):
            kwargs["device"] = self.device
        out = func(*args, **kwargs)
        if _kind(func)[0]:
            name = func.overloadpacket.__name__
            self.oracle.record(f"aten.{name}", args, kwargs, out)
        return out


@contextlib.contextmanager
def streamed(model: nn.Module, oracle: Oracle | None = None,
             device: torch.device | None = None) -> Iterator[_RealRun]:
    """While active, ops see real values for `model`'s meta parameters/buffers, made at first touch and freed
    when the module call that made them returns; value reads go to `oracle`. RNGs are restored afterwards.
    The model's real tensors are the caller's to swap for copies (`standins.stand_ins(parts, "real")`)."""
    meta = any(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()])
    mat = Materializer(model) if meta else None
    mode = _RealRun(mat, oracle if oracle is not None else Oracle(), device or torch.device("cpu"))

    def pre(module: nn.Module, _args: Any) -> None:
        mode.made_in.append([])

    def post(module: nn.Module, _args: Any, _out: Any) -> None:
        made = mode.made_in.pop() if len(mode.made_in) > 1 else []
        if mat is not None:
            mat.evict(made)

    hooks = [nn.modules.module.register_module_forward_pre_hook(pre),
             nn.modules.module.register_module_forward_hook(post, always_call=True)]
    try:
        with all_rng_restored(), mode:
            yield mode
    finally:
        for h in hooks:
            h.remove()


def real_answers(model: nn.Module, args: list[Any], kwargs: dict[str, Any],
                 device: torch.device | None = None) -> tuple[Oracle, list[str]]:
    """Run `model` once for real at these real inputs, module by module for a meta model, without autograd;
    return the answers of every value read and the buffers whose values were not recoverable.

    The model is not changed: a meta model keeps its meta tensors, and its real buffers and plain tensor
    attributes, like a real model's, are copies for the run (a forward in training mode updates BatchNorm's
    statistics in place, a counter counts), copies that share storages as the originals do, with a view kept
    beside a buffer as a plain attribute on its copy (`trace.standins`): a write through it lands in the copy the
    forward reads, not in the user's buffer. Raises whatever the forward raises.
    """
    oracle = Oracle()
    stands = stand_ins(walk(model), "real")
    with torch.no_grad(), streamed(model, oracle, device) as mode, followed(stands.attributes):
        if stands.tensors:
            torch.func.functional_call(model, stands.tensors, tuple(args), kwargs, tie_weights=True)
        else:
            model(*args, **kwargs)
    return oracle, (list(mode.mat.unrecovered) if mode.mat is not None else []) + stands.attributes.zeroed


def known_buffers(shadow: Shadow, model: nn.Module, stand_ins: Mapping[str, torch.Tensor],
                  parts: ModelParts | None = None) -> None:
    """Defer each buffer's value to the first read of its stand-in (`stand_ins[name]`, else the buffer
    itself): a real buffer's own values (on CPU); a meta buffer's as `Materializer` recovers them (a rotary
    `inv_freq` computed in `__init__`, BatchNorm's statistics), unknown when it cannot. The trace's run and
    the training step's both look buffers up here."""
    parts = parts or walk(model)
    params = {id(p) for _, p in parts.params}  # a tensor that is a parameter too is never known
    # The Materializer walks the model: made at the first recovery (most runs read no meta buffer), unless the
    # run swaps stand-ins into the modules (functional_call), when it must see them as they are now.
    made: list[Materializer] = []

    def materializer() -> Materializer:
        if not made:
            made.append(Materializer(model))
        return made[0]

    for name, b in parts.unique_buffers:
        stand = stand_ins.get(name, b)
        if id(b) in params or id(stand) in params:
            continue
        if not b.is_meta:
            def own(r: torch.Tensor = b) -> tuple[torch.Tensor, int] | None:
                return r.detach().cpu().clone(), 0

            shadow.defer(stand, own)
            continue
        if stand_ins:
            materializer()

        def recover(b: torch.Tensor = b) -> tuple[torch.Tensor, int] | None:
            value = materializer().buffer_value(b)
            return (value, 0) if value is not None else None

        shadow.defer(stand, recover)
