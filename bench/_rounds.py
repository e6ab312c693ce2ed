"""Interleaved rounds: time several tools on a machine whose speed drifts by up to 2× over minutes.

A round runs every tool once, in an order rotated by one tool each round, so the drift hits every tool
alike; a ratio between two tools is taken in each round (the two ran seconds apart) and summarised by its
median over rounds, with its min–max as the noise the run had."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Runs:
    """One tool on one case: each round's result by round number, or the error that stopped it (a tool
    that failed runs in no later round: a timeout would only repeat)."""

    rounds: dict[int, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None

    def median(self, key: str) -> float | None:
        values = [r[key] for r in self.rounds.values() if r.get(key) is not None]
        return statistics.median(values) if values else None

    def first(self, key: str) -> Any:
        return next((r[key] for r in self.rounds.values() if key in r), None)


def paired(a: Runs, b: Runs, key: str) -> list[float]:
    """a / b of `key` in each round both ran, in run order: a drift between rounds cancels in each ratio."""
    if a.error or b.error:
        return []
    both = sorted(a.rounds.keys() & b.rounds.keys())
    return [a.rounds[r][key] / b.rounds[r][key] for r in both if a.rounds[r].get(key) and b.rounds[r].get(key)]


def spread(values: list[float]) -> str:
    """A ratio over rounds: the median (min–max)."""
    mid, lo, hi = (f"{v:.2f}" for v in (statistics.median(values), min(values), max(values)))
    return f"{mid}×" if lo == hi else f"{mid}× ({lo}–{hi}×)"


def run_rounds(tools: list[str], rounds: int, one: Callable[[str], dict[str, Any]], *, label: str,
               not_run: dict[str, str], describe: Callable[[dict[str, Any]], str]) -> dict[str, Runs]:
    """`rounds` rounds of `one(tool)` for every tool but those `not_run` names (with why), the order
    rotated by one tool each round; `one` returns a result or {"error": why}. Prints each result."""
    runs = {tool: Runs(error=not_run.get(tool)) for tool in tools}
    for r in range(rounds):
        k = r % len(tools)
        for tool in tools[k:] + tools[:k]:
            if runs[tool].error:
                continue
            res = one(tool)
            if "error" in res:
                runs[tool].error = res["error"] if r == 0 else f"round {r + 1}: {res['error']}"
            else:
                runs[tool].rounds[r] = res
            print(f"{label} round {r + 1}/{rounds} {tool}: {describe(res)}", flush=True)
    return runs
