"""`inspect(model, *inputs)`: record a run, analyse it, and hold the results in a `Report`.

The report is the one record the renderers format: `str(report)` is the table,
`report.to_dict()` the JSON (keys in DESIGN.md), `report._repr_html_()` the notebook view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from aelab.errors import UsageError
from aelab.inspection.bottleneck import Bottleneck, find_bottleneck
from aelab.inspection.hints import collect_hints
from aelab.inspection.summary import Summary, summarize
from aelab.trace.gcpause import paused_gc
from aelab.trace.record import InputLike, record
from aelab.trace.records import Trace

if TYPE_CHECKING:
    from aelab.doctor.records import Diagnosis
    from aelab.explain.layers import LayerExplanation


@dataclass
class Report:
    """What aelab found about one model on given inputs."""

    model: str
    trace: Trace
    summary: Summary
    bottleneck: Bottleneck | None = None  # None when the forward failed or no output depends on an input
    depth: int | None = None
    notes: list[str] = field(default_factory=list)
    explanations: dict[str, LayerExplanation] = field(default_factory=dict)  # row name -> its size formulas
    diagnosis: Diagnosis | None = None  # when the forward failed and the doctor ran

    @property
    def rows(self) -> list[Any]:
        if self.depth is None:
            return self.summary.rows
        return [r for r in self.summary.rows if r.depth <= self.depth]

    def to_dict(self) -> dict[str, Any]:
        from aelab.render.jsonout import report_dict

        return report_dict(self)

    def __str__(self) -> str:
        from aelab.render.table import render_text

        return render_text(self)

    def _repr_html_(self) -> str:
        from aelab.render.html import render_html

        return render_html(self)


def _bottleneck(trace: Trace, model: nn.Module) -> Bottleneck | None:
    if trace.error is not None:
        return None
    return find_bottleneck(trace, collect_hints(model))


def _explanations(report: Report, model: nn.Module) -> dict[str, Any]:
    """Output-size formulas with the numbers filled in, for conv/pool/linear/flatten rows."""
    from aelab.explain.layers import explain_module

    out: dict[str, Any] = {}
    for row in report.summary.rows:
        if row.kind != "module" or not row.input_shapes or "#" in row.name or not row.input_shapes[0]:
            continue
        try:
            module = model.get_submodule(row.name)
            shape = row.input_shapes[0]
            exp = explain_module(module, tuple(shape[1:]), batch=shape[0])
        except Exception:  # a layer the formulas do not model (or a subclass that changes its forward)
            continue
        if exp is not None:
            out[row.name] = exp
    return out


def inspect(model: nn.Module, *inputs: InputLike, depth: int | None = None, backward: bool = True,
            name: str | None = None, explain: bool = False, eval_mode: bool = False,
            **kwinputs: InputLike) -> Report:
    """Shapes, parameters, FLOPs and the bottleneck of `model` on `inputs` (shapes or tensors).

    Runs on meta or fake tensors, so no activation memory is used and the model comes back exactly
    as it went in (see `aelab.trace.record` for when a real forward runs, and `Report.notes` for which
    did). `eval_mode` traces with `model.eval()` (dropout, LayerDrop off), restored afterwards.
    Keyword arguments other than the options are keyword inputs of `forward`.
    """
    if not isinstance(model, nn.Module):
        raise UsageError(f"inspect() needs a torch.nn.Module, not {type(model).__name__}")
    if depth is not None and depth < 1:
        raise UsageError("depth must be at least 1")
    with paused_gc():
        trace = record(model, inputs, kwinputs, backward=backward, eval_mode=eval_mode)
        report = Report(model=name or type(model).__name__, trace=trace, summary=summarize(trace), depth=depth,
                        notes=list(trace.notes))
        report.bottleneck = _bottleneck(trace, model)
        if explain:
            report.explanations = _explanations(report, model)
    return report
