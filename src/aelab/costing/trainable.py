"""Which parameters train: `--trainable` / `--freeze` globs over parameter names and the module paths that
own them, turned into `requires_grad` flags, and a context that sets them and puts every flag back."""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterator, Mapping, Sequence

from torch import nn

from aelab.errors import UsageError


def _candidates(param: str) -> list[str]:
    """A parameter name and the paths of every module that owns it: 'a.0.weight' -> ['a.0.weight', 'a.0', 'a']."""
    parts = param.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def matches(param: str, pattern: str) -> bool:
    """Does a glob name this parameter, or a module that owns it? ('encoder' matches 'encoder.0.weight')."""
    return any(fnmatch.fnmatchcase(c, pattern) for c in _candidates(param))


def choose_trainable(current: Mapping[str, bool], trainable: Sequence[str] = (), freeze: Sequence[str] = (),
                     aliases: Mapping[str, Sequence[str]] | None = None) -> dict[str, bool]:
    """The `requires_grad` flag of every parameter after applying the globs.

    With `trainable` globs, exactly the matching parameters train; without, the current flags stay.
    `freeze` globs then turn matching parameters off. `aliases` gives a tied parameter's other names
    (`lm_head.weight` for `embed.weight`): a glob matching any of them matches the parameter.
    A glob that matches no parameter, and a --trainable glob whose every parameter --freeze turns off,
    are UsageErrors.
    """
    names = list(current)
    known = {n: [n, *(aliases or {}).get(n, ())] for n in names}

    def hit(name: str, glob: str) -> bool:
        return any(matches(alias, glob) for alias in known[name])

    for flag, globs in (("--trainable", trainable), ("--freeze", freeze)):
        for g in globs:
            if not any(hit(n, g) for n in names):
                modules = sorted({a.rsplit(".", 1)[0] for n in names for a in known[n] if "." in a})
                sample = ", ".join(modules[:6]) or "none"
                raise UsageError(f"{flag} {g!r} matches no parameter or module with parameters "
                                 f"(modules with parameters: {sample}{', ...' if len(modules) > 6 else ''})")
    flags = dict(current)
    if trainable:
        flags = {n: any(hit(n, g) for g in trainable) for n in names}
    for n in names:
        if any(hit(n, g) for g in freeze):
            flags[n] = False
    for g in trainable:  # overlapping globs carve exceptions; a --trainable glob frozen whole is a contradiction
        if not any(flags[n] for n in names if hit(n, g)):
            raise UsageError(f"--trainable {g!r}: --freeze {', '.join(map(repr, freeze))} freezes every parameter it "
                             "matches; drop one of them, or narrow the --freeze glob")
    return flags


def current_flags(model: nn.Module) -> dict[str, bool]:
    """`requires_grad` of every parameter by its first name (a tied parameter appears once)."""
    return {n: p.requires_grad for n, p in model.named_parameters()}


def parameter_aliases(model: nn.Module) -> dict[str, list[str]]:
    """First name of a tied parameter -> its other names (`embed.weight` -> [`lm_head.weight`])."""
    first: dict[int, str] = {}
    out: dict[str, list[str]] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            out.setdefault(first[id(p)], []).append(n)
        else:
            first[id(p)] = n
    return out


def choose(model: nn.Module, trainable: Sequence[str] = (), freeze: Sequence[str] = ()) -> dict[str, bool]:
    """The flags the globs give this model's parameters (see `choose_trainable`)."""
    return choose_trainable(current_flags(model), trainable, freeze, parameter_aliases(model))


@contextlib.contextmanager
def requires_grad_pattern(model: nn.Module, flags: Mapping[str, bool]) -> Iterator[None]:
    """Set `requires_grad` per parameter name for the duration; restore every flag exactly afterwards."""
    params = dict(model.named_parameters())
    unknown = sorted(set(flags) - set(params))
    if unknown:
        raise UsageError(f"no parameter named {unknown[0]!r} in {type(model).__name__}")
    before = {p: p.requires_grad for p in model.parameters()}
    try:
        for name, flag in flags.items():
            params[name].requires_grad_(flag)
        yield
    finally:
        for p, flag in before.items():
            p.requires_grad_(flag)
