"""`aelab doctor` end to end: exit codes, the report's fix lines, JSON, and golden reports.

Regenerate the golden reports with AELAB_REGEN_GOLDEN=1 (then read the diff like code).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aelab.doctor.diagnose import diagnose
from aelab.render.doctor_text import render_text
from goldens import check_golden

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
CASES = "tests/doctor/test_cases.py"

#: golden name -> (model file, class, input shape)
GOLDEN_CASES: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "ConvNet2dWrong": ("examples/broken.py", "ConvNet2dWrong", (1, 1, 28, 28)),
    "ConvNet2dWrong_unbatched": ("examples/broken.py", "ConvNet2dWrong", (1, 28, 28)),
    "Conv1dNetWrong": ("examples/broken.py", "Conv1dNetWrong", (2, 8, 50)),
    "ThreeWrong": (CASES, "ThreeWrong", (2, 1, 28, 28)),
    "ViewWrong": (CASES, "ViewWrong", (2, 1, 28, 28)),
    "CatSkipWrong": (CASES, "CatSkipWrong", (2, 1, 28, 28)),
    "ConvAEWrong": (CASES, "ConvAEWrong", (2, 1, 28, 28)),
    "ChannelLinearWrong": (CASES, "ChannelLinearWrong", (2, 8, 50)),
    "TokensWrong": (CASES, "TokensWrong", (2, 10)),
}


def _model(file: str, name: str) -> torch.nn.Module:
    from aelab.cli.load import ModelSpec, build_model

    return build_model(ModelSpec(str(ROOT / file), name), {}, device="meta")


def _compare(name: str, text: str) -> None:
    check_golden(f"doctor_{name}.txt", text)


@pytest.mark.parametrize("name", list(GOLDEN_CASES))
def test_golden_reports(name: str) -> None:
    file, cls, shape = GOLDEN_CASES[name]
    _compare(name, render_text(diagnose(_model(file, cls), shape, name=cls)))


def test_golden_seed_reports() -> None:
    import seeds

    text = "".join(render_text(diagnose(cls(), shape)) + "\n" for cls, shape in seeds.SEED_MODELS.values())
    _compare("seeds", text)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "160"}


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def test_cli_names_the_number_and_exits_1(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("doctor", "examples/broken.py:ConvNet2dWrong", "--input", "1x1x28x28")
    assert r.returncode == 1, r.stderr
    assert "nn.Linear(12544, 10)  # 12544 = 16 × 28 × 28, the flattened output of conv (16, 28, 28)" in r.stdout
    assert "nn.LazyLinear(10)" in r.stdout and "the model runs: output (N, 10)" in r.stdout
    assert "Traceback" not in r.stderr and r.stderr == ""
    assert r.stdout == (GOLDEN / "doctor_ConvNet2dWrong.txt").read_text(encoding="utf-8")


def test_cli_json(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("doctor", "examples/broken.py:Conv1dNetWrong", "--input", "2x8x50", "--format", "json")
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    f = data["findings"][0]
    assert (f["layer"], f["kind"], f["fix"]) == ("fc", "linear_in_features", "nn.Linear(768, 4)")
    assert "768 = 16 × 48" in f["derivation"] and "48 = 50 − 3 + 1" in f["derivation"]
    assert f["got"] == "input (N, 768)" and "800" in f["expected"] and data["output_shapes"] == [[2, 4]]


@pytest.mark.parametrize("max_fixes", [0, 1])
def test_cli_a_model_still_broken_at_max_fixes_exits_1_and_names_the_problem_left(cli, max_fixes: int) -> None:  # type: ignore[no-untyped-def]
    """--max-fixes 0 once exited 0 with "ok": true and no finding on a broken model; fixes or not, it fails."""
    from aelab import schemas

    argv = ("doctor", f"{CASES}:ThreeWrong", "--input", "2x1x28x28", "--max-fixes", str(max_fixes))
    r = cli(*argv)
    assert r.returncode == 1, (r.stdout, r.stderr)
    fix = "fix" if max_fixes == 1 else "fixes"
    assert f"Stopped: stopped after {max_fixes} {fix}; problem {max_fixes + 1} is not fixed." in r.stdout
    j = cli(*argv, "--format", "json")
    assert j.returncode == 1, j.stderr
    data = json.loads(j.stdout)
    schemas.validate("doctor", data)
    assert data["status"] == "limit" and data["ok"] is False and data["output_shapes"] == []
    assert [f["applied"] for f in data["findings"]] == [True] * max_fixes + [False]


_BATCH = """
import contextlib, io, json, sys
from aelab.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def _seed_argv() -> list[list[str]]:
    import seeds

    return [["doctor", f"examples/seeds.py:{name}", "--input", _shape(shape)]
            for name, (_, shape) in seeds.SEED_MODELS.items()]


_OTHERS = [["doctor", f"{CASES}:TokensWrong", "--input", "2x10"],
           ["doctor", "examples/broken.py:ConvNet2dWrong", "--input", "1xx28"],
           ["doctor", "examples/broken.py:Nope", "--input", "1x1x28x28"],
           ["doctor", "examples/broken.py:ConvNet2dWrong"],
           ["doctor", "examples/broken.py:ConvNet2dWrong", "--input", "1x1x28x28", "--format", "yaml"]]


@pytest.fixture(scope="module")
def batch() -> list[tuple[int, str, str]]:
    """Many `aelab` command lines through the CLI's own main() in ONE fresh process (one torch import):
    (exit code, stdout, stderr) each."""
    argv = _seed_argv() + _OTHERS
    r = subprocess.run([sys.executable, "-c", _BATCH, json.dumps(argv)], cwd=ROOT, env=_env(), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    results: list[tuple[int, str, str]] = [tuple(x) for x in json.loads(r.stdout.strip().splitlines()[-1])]
    assert len(results) == len(argv)  # the tests below zip them with their command lines
    return results


def test_cli_every_seed_model_exits_0(batch: list[tuple[int, str, str]]) -> None:
    for argv, (code, out, err) in zip(_seed_argv(), batch):
        assert code == 0, (argv, out, err)
        assert "No problem found" in out and err == "", argv


def test_cli_not_a_shape_problem_exits_1(batch: list[tuple[int, str, str]]) -> None:
    code, out, err = batch[len(_seed_argv())]
    assert code == 1 and "embed (Embedding)" in out and "RuntimeError: Expected tensor" in out
    assert "Traceback" not in err


def test_cli_bad_usage_exits_2(batch: list[tuple[int, str, str]]) -> None:
    for argv, (code, out, err) in zip(_OTHERS[1:], batch[len(_seed_argv()) + 1:]):
        assert code == 2 and out == "", argv
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("aelab: ") and "Traceback" not in err, (argv, err)


def test_cli_bad_usage_in_a_real_process(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("doctor", "examples/broken.py:ConvNet2dWrong", "--input", "0x28")
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("aelab: ") and "Traceback" not in r.stderr


def _doc_examples() -> list[tuple[list[str], str, int | None]]:
    """(argv after 'aelab', expected output, expected exit code or None) for each command in docs/doctor.md."""
    text = (ROOT / "docs" / "doctor.md").read_text(encoding="utf-8")
    found = []
    for block in text.split("```console\n")[1:]:
        body = block.split("```", 1)[0]
        for chunk in body.split("$ ")[1:]:
            command, _, output = chunk.partition("\n")
            if command.startswith("aelab "):
                found.append((command.split()[1:], output, None))
            elif command == "echo $?" and found:
                found[-1] = (found[-1][0], found[-1][1], int(output.strip()))
    return found


def test_docs_examples_are_real_output() -> None:
    from aelab.cli.load import parse_model_spec
    from aelab.doctor.explainers import EXPLAINERS
    from aelab.trace.inputs import parse_shape

    examples = _doc_examples()
    assert len(examples) >= 8
    for argv, expected, code in examples:
        assert argv[0] == "doctor" and argv[2] == "--input" and len(argv) == 4, argv
        spec = parse_model_spec(argv[1])
        d = diagnose(_model(spec.source, spec.name), parse_shape(argv[3]), name=spec.name)
        assert render_text(d) == expected, argv
        assert code is None or d.exit_code == code, argv
    doc = (ROOT / "docs" / "doctor.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in doc for name in EXPLAINERS)
