"""`aelab memory` end to end: the JSON keys, every format, the timeline picture, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

MLP = "examples/seeds.py:NeuralNetwork"
SCHEMA = Path(__file__).parents[2] / "src" / "aelab" / "schemas" / "memory.schema.json"


def test_json_keys_and_schema(cli) -> None:
    proc = cli("memory", MLP, "--input", "64x1x28x28", "--freeze", "linear_relu_stack.0", "--fit", "1GB",
               "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for key in ("peak_bytes", "first_step_peak_bytes", "peak_at", "breakdown", "layers", "what_if", "max_batch",
                "not_modelled"):
        assert key in doc
    assert doc["first_step_peak_bytes"] <= doc["peak_bytes"]
    assert sum(doc["breakdown"].values()) == doc["peak_bytes"]
    assert doc["max_batch"]["peak_bytes"] <= 10**9 < doc["max_batch"]["next_peak_bytes"]
    assert {w["name"] for w in doc["what_if"]} == {"optimizer", "trainable"}
    assert doc["peak_bytes"] % 512 == 0  # CUDA's blocks by default
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))


def test_text_markdown_html_and_timeline(cli, tmp_path: Path) -> None:
    png = tmp_path / "t.png"
    proc = cli("memory", MLP, "--input", "8x1x28x28", "--optimizer", "sgd-momentum", "--no-what-if",
               "--device", "cpu", "--timeline", str(png))
    assert proc.returncode == 0, proc.stderr
    assert "Peak (steady state)" in proc.stdout and "Not modelled" in proc.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"
    md = cli("memory", MLP, "--input", "8x1x28x28", "--no-what-if", "--format", "markdown")
    assert md.returncode == 0 and "| **total** |" in md.stdout
    html = cli("memory", MLP, "--input", "8x1x28x28", "--no-what-if", "--format", "html", "--amp", "bf16")
    assert html.returncode == 0 and "<svg" in html.stdout and 'id="memory"' in html.stdout


def test_checkpoint_what_if(cli) -> None:
    proc = cli("memory", "examples/seeds.py:NeuralNetwork", "--input", "256x1x28x28", "--optimizer", "sgd",
               "--checkpoint", "linear_relu_stack", "--format", "json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    what = {w["name"]: w for w in json.loads(proc.stdout)["what_if"]}
    assert "checkpoint" in what


@pytest.mark.parametrize("args,words", [
    (("--optimizer", "lion"), "unknown --optimizer 'lion'"),
    (("--amp", "int8"), "unknown --amp"),
    (("--fit", "0"), "more than 0 bytes"),
    (("--fit", "12XB"), "write a size like"),
    (("--freeze", "nothing_here"), "matches no parameter"),
    (("--trainable", "nope*"), "matches no parameter"),
    (("--checkpoint", "nope"), "matches no module"),
    (("--timeline", "t.gif"), "write .png"),
])
def test_bad_input_exits_2_with_one_line(cli, args: tuple[str, ...], words: str) -> None:
    proc = cli("memory", MLP, "--input", "8x1x28x28", *args)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr


def test_value_reads_are_answered_or_refused_in_one_line() -> None:
    """A mask read (`mask.all()`, `int(mask.sum())`) is answered from its real values, as inspect's tracer does;
    a read of a value that depends on the weights is a UsageError, not a crash."""
    import torch
    from torch import nn

    import aelab
    from aelab.errors import UsageError
    from aelab.trace.inputs import InputSpec

    class Reads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(16, 16)

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            y = self.lin(x)
            return y[:, : int(mask.sum()) // 8] if mask.all() else y

    class ReadsWeights(Reads):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            y = self.lin(x)
            return y * 2 if y.mean() > 0 else y

    for device in ("cpu", "meta"):
        with torch.device(device):
            reads, reads_weights = Reads(), ReadsWeights()
        report = aelab.memory(reads, (8, 16), mask=InputSpec((8, 16), torch.bool), optimizer="sgd", device="cpu",
                              what_if=False)
        assert report.peak_bytes > 0
        with pytest.raises(UsageError, match="depends on the weights"):
            aelab.memory(reads_weights, (8, 16), what_if=False)
