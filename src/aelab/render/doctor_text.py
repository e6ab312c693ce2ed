"""The shape doctor's report as text (one block per finding, then the verdict) or JSON. Formats only.

A documented public module: docs and user code may import from it.
"""

from __future__ import annotations

import json

from aelab.doctor.records import Diagnosis, Finding, shape_text

_LABEL = 11


def _row(label: str, text: str) -> str:
    return f"   {label:<{_LABEL}}{text}"


def _finding(i: int, f: Finding, model: str) -> list[str]:
    where = f.layer or model
    lines = [f"{i}. {where} ({f.layer_type})" if f.layer_type != where else f"{i}. {where}",
             f"   {f.problem}", _row("got", f.got), _row("expected", f.expected)]
    if f.fix:
        lines.append(_row("fix", f.fix + (f"  # {f.derivation}" if f.derivation else "")))
    elif f.derivation:
        lines.append(_row("why", f.derivation))
    lines += [_row("or", alt) for alt in f.alternatives]
    if f.error:
        lines.append(_row("error", f.error.splitlines()[0]))
    if f.applied:
        lines.append(_row("", "→ traced on with this fix applied"))
    return lines


def _outputs(d: Diagnosis) -> str:
    shapes = ", ".join(shape_text(s, d.batch) for s in d.output_shapes) or "no tensor"
    n = f" with N = {d.batch}" if d.batch is not None and any(len(s) >= 2 and s[0] == d.batch
                                                             for s in d.output_shapes) else ""
    return f"output {shapes}{n}"


def verdict(d: Diagnosis) -> str:
    """The last line: fine, runs after the fixes, or where the doctor had to stop."""
    inputs = ", ".join(shape_text(s) for s in d.final_inputs)
    if d.status == "ok":
        return f"No problem found: the model runs on {inputs}: {_outputs(d)}."
    if d.status == "fixed":
        changed = f" on {inputs}" if d.final_inputs != d.inputs else ""
        fixes = "this fix" if len(d.findings) == 1 else f"these {len(d.findings)} fixes"
        return f"After {fixes} the model runs{changed}: {_outputs(d)}."
    if d.status == "limit":
        return f"Stopped: {d.stopped}."
    return (f"Stopped at problem {len(d.findings)}: {d.stopped}; the layers after it were not traced.")


def render_text(d: Diagnosis) -> str:
    """The report `aelab doctor` prints."""
    inputs = ", ".join(shape_text(s) for s in d.inputs)
    lines = [f"aelab doctor: {d.model} on input {inputs}", ""]
    for i, f in enumerate(d.findings, 1):
        lines += [*_finding(i, f, d.model), ""]
    lines.append(verdict(d))
    return "\n".join(lines) + "\n"


def render_json(d: Diagnosis) -> str:
    """`aelab doctor --format json`: findings with layer, kind, got, expected, fix, derivation, ..."""
    return json.dumps(d.to_dict(), indent=2, ensure_ascii=False) + "\n"
