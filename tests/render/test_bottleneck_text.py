"""The bottleneck section as text: it shows what the record holds, docs/bottleneck.md is real output, and the
CLI prints it with --bottleneck-only."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import seeds
from torch import nn

from aelab.cli import main
from aelab.inspection.bottleneck import Bottleneck, find_bottleneck
from aelab.inspection.hints import collect_hints
from aelab.render.bottleneck_text import bottleneck_lines
from aelab.trace.record import record

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "bottleneck.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```console\n\$ (aelab [^\n]*)\n(.*?)```", TEXT, flags=re.S)


def analyse(model: nn.Module, shape: tuple[int, ...]) -> Bottleneck:
    b = find_bottleneck(record(model, [shape], backward=False), collect_hints(model))
    assert b is not None
    return b


def test_lines_hold_the_record() -> None:
    b = analyse(seeds.SeqVAE(), (4, 50, 201))
    lines = bottleneck_lines(b)
    assert lines[0].startswith("Bottleneck: encoder.rsample (Normal.rsample) (N, 50, 256): 12,800 per sample, 256 "
                               "per step; compression 0.79x (per step 0.79x)")
    assert " ".join(line.strip() for line in lines[1:4]).startswith(b.verdict)
    table = lines[lines.index(next(x for x in lines if x.startswith("Widths"))) + 2:lines.index("Notes:")]
    # every path entry is either shown or counted in the "+k more at this width" of the row above it
    shown = len(table) + sum(int(m) for row in table for m in re.findall(r"\+(\d+) more", row))
    assert shown == len(b.path)
    latent_row = next(row for row in table if "<- latent" in row)
    assert latent_row.split()[:2] == ["encoder.rsample", "Normal.rsample"] and "12,800" in latent_row
    assert sum(1 for line in lines if line.startswith("  - ")) == len(b.notes)


def test_flat_models_have_no_per_position_column() -> None:
    lines = bottleneck_lines(analyse(seeds.AE(), (2, 784)))
    header = next(line for line in lines if line.strip().startswith("layer"))
    assert header.split() == ["layer", "type", "shape", "per", "sample"]


def test_the_page_has_the_seed_examples() -> None:
    commands = [cmd for cmd, _ in BLOCKS]
    assert "aelab inspect examples/seeds.py:SeqVAE --input 4x50x201 --bottleneck-only" in commands
    assert any("seeds.py:AE" in c for c in commands) and any("NeuralNetwork" in c for c in commands)
    assert any("UNet" in c for c in commands)


@pytest.mark.parametrize(("command", "expected"), BLOCKS, ids=[c.split()[2].split(":")[1] for c, _ in BLOCKS])
def test_console_block_is_real_output(command: str, expected: str, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as info:
        main(shlex.split(command)[1:])
    captured = capsys.readouterr()
    assert (info.value.code, captured.out) == (0, expected)


def test_python_block_runs() -> None:
    (code,) = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
    exec(compile(code, str(DOC), "exec"), {})


def test_cli_bottleneck_only_in_a_subprocess(run_cli) -> None:  # type: ignore[no-untyped-def]
    out = run_cli("inspect", "examples/architectures.py:LSTMAE", "--input", "4x30x8", "--bottleneck-only")
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert out.stdout.startswith("Bottleneck: encoder (LSTM) (1, N, 16): 16 per sample; compression 15x")
