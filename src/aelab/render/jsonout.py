"""The JSON form of a report (`--format json`); keys as DESIGN.md fixes them."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aelab.inspection.report import Report


def report_dict(report: Report) -> dict[str, Any]:
    from aelab.render.table import explanation_lines

    trace, totals = report.trace, report.summary.totals
    names = trace.input_names
    bottleneck = report.bottleneck
    return {
        "model": report.model,
        "inputs": [{"name": names[i] if i < len(names) else f"arg{i}", "shape": list(t.shape), "dtype": t.dtype}
                   for i, t in enumerate(trace.inputs)],
        "execution": trace.execution,
        "flops_convention": "a multiply-add counts 2 (torch.utils.flop_counter); 'flops' is matrix work "
                            "(matmul/conv/attention), 'flops_other' elementwise, normalisation, softmax, pooling",
        "layers": [
            {"name": r.name, "type": r.type, "kind": r.kind, "depth": r.depth,
             "input_shapes": [list(s) for s in r.input_shapes], "output_shapes": [list(s) for s in r.output_shapes],
             "params": r.params, "trainable_params": r.trainable_params,
             # a row the failure stopped computed nothing countable: null, not a 0 that reads as "free"
             "flops": None if r.failed else r.flops, "flops_other": None if r.failed else r.flops_other,
             "flops_backward": r.flops_backward, "output_bytes": None if r.failed else r.output_bytes,
             **({"formula": explanation_lines(report.explanations[r.name])} if r.name in report.explanations else {})}
            for r in report.rows
        ],
        "totals": {k: v for k, v in asdict(totals).items() if k not in ("not_counted",)},
        "not_counted": totals.not_counted,
        "bottleneck": bottleneck.to_dict() if bottleneck is not None else None,
        "encoder": list(bottleneck.encoder) if bottleneck is not None else [],
        "decoder": list(bottleneck.decoder) if bottleneck is not None else [],
        "error": asdict(trace.error) if trace.error is not None else None,
        "doctor": report.diagnosis.to_dict() if report.diagnosis is not None else None,
        "notes": report.notes,
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2)
