"""`MemoryReport`: what one training step needs, as the text, JSON and HTML reports show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class WhatIf:
    """The same step with one thing changed: its peaks beside the main run's."""

    name: str  # "checkpoint", "optimizer", "trainable"
    description: str
    peak_bytes: int
    first_step_peak_bytes: int
    peak_at: str


@dataclass
class MaxBatch:
    """The largest batch (first input dimension) whose predicted peak fits the budget."""

    budget_bytes: int
    batch: int  # 0: not even a batch of 1 fits
    peak_bytes: int  # predicted steady-state peak at `batch` (0 when batch is 0)
    next_peak_bytes: int  # predicted at batch + 1: above the budget
    predictions: int  # how many steps were simulated to find it


@dataclass
class LayerRow:
    name: str
    saved_bytes: int
    output_bytes: int
    saved_at_peak_bytes: int


@dataclass
class MemoryReport:
    """One training step's memory, predicted on fake/meta tensors."""

    model: str
    inputs: list[list[int]]  # shapes, batch first
    optimizer: str
    amp: str
    device: str  # the allocator the sizes are rounded for: "cpu" (none) or "cuda" (512-byte blocks)
    peak_bytes: int  # steady state (the optimizer's state exists)
    first_step_peak_bytes: int
    peak_at: str
    first_step_peak_at: str
    peak_phase: str
    peak_module: str
    breakdown: dict[str, int]
    first_step_breakdown: dict[str, int]
    layers: list[LayerRow]
    params_bytes: int
    trainable_params: int
    total_params: int
    timeline: list[int] = field(default_factory=list)  # live bytes after each op of the steady step
    timeline_phases: list[str] = field(default_factory=list)
    what_if: list[WhatIf] = field(default_factory=list)
    max_batch: MaxBatch | None = None
    not_modelled: list[dict[str, str]] = field(default_factory=list)
    corrections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unrounded_peak_bytes: int = 0  # the steady peak without allocator rounding
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (keys as issue 11 names them; see schemas/memory.schema.json)."""
        doc: dict[str, Any] = {
            "model": self.model,
            "inputs": [list(x) for x in self.inputs],
            "optimizer": self.optimizer,
            "amp": self.amp,
            "device": self.device,
            "peak_bytes": self.peak_bytes,
            "first_step_peak_bytes": self.first_step_peak_bytes,
            "peak_at": {"where": self.peak_at, "phase": self.peak_phase, "module": self.peak_module,
                        "first_step": self.first_step_peak_at},
            "breakdown": dict(self.breakdown),
            "first_step_breakdown": dict(self.first_step_breakdown),
            "layers": [{"name": r.name, "saved_bytes": r.saved_bytes, "output_bytes": r.output_bytes,
                        "saved_at_peak_bytes": r.saved_at_peak_bytes} for r in self.layers],
            "what_if": [{"name": w.name, "description": w.description, "peak_bytes": w.peak_bytes,
                         "first_step_peak_bytes": w.first_step_peak_bytes, "peak_at": w.peak_at}
                        for w in self.what_if],
            "not_modelled": [dict(n) for n in self.not_modelled],
            "corrections": list(self.corrections),
            "notes": list(self.notes),
            "params": {"total": self.total_params, "trainable": self.trainable_params, "bytes": self.params_bytes},
            "unrounded_peak_bytes": self.unrounded_peak_bytes,
        }
        if self.max_batch is not None:
            m = self.max_batch
            doc["max_batch"] = {"budget_bytes": m.budget_bytes, "batch": m.batch, "peak_bytes": m.peak_bytes,
                                "next_peak_bytes": m.next_peak_bytes, "predictions": m.predictions}
        return doc
