"""The JSON contract: every golden and a live run of every verb validate against the verb's schema, a mutated
document fails it, and docs/json.md names every key the schemas declare."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from aelab import schemas
from aelab.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
GOLDENS = sorted(p for p in (ROOT / "tests").rglob("*.json") if p.parent.name == "golden")
#: golden file name prefix -> (verb, the part of its schema the file is)
GOLDEN_KIND = {"inspect": ("inspect", ""), "bottleneck": ("inspect", "#/$defs/bottleneck"), "cost": ("cost", "")}
VERBS = ["build", "cost", "detect", "doctor", "evaluate", "explain", "inspect", "memory"]


def check(verb: str, document: Any, pointer: str = "") -> None:
    """Validate `document` against `verb`'s schema (or the sub-schema at `pointer`), all errors in the message."""
    v = schemas.validator(verb)
    if pointer:
        v = v.evolve(schema={"$ref": f"urn:aelab:schema:{verb}{pointer}"})
    errors = sorted(v.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10])


def fails(verb: str, document: Any, pointer: str = "") -> bool:
    v = schemas.validator(verb)
    if pointer:
        v = v.evolve(schema={"$ref": f"urn:aelab:schema:{verb}{pointer}"})
    return not v.is_valid(document)


def run(*args: str) -> tuple[int, str]:
    """`aelab ARGS` in this process: (exit code, stdout)."""
    from aelab.cli import main

    out, err = StringIO(), StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code in (0, 1), f"aelab {' '.join(args)} exited {code}: {err.getvalue()}"
    return code, out.getvalue()


def run_json(*args: str) -> tuple[int, Any]:
    code, text = run(*args)
    return code, json.loads(text)


# --- the schemas themselves -------------------------------------------------------------------------------
@pytest.mark.parametrize("verb", schemas.verbs())
def test_schema_is_draft_2020_12_and_named_after_its_verb(verb: str) -> None:
    schema = schemas.load(verb)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:aelab:schema:{verb}"


def test_every_verb_of_the_contract_has_a_schema() -> None:
    assert set(VERBS) <= set(schemas.verbs())


def test_every_verb_with_a_json_format_has_a_schema() -> None:
    """A verb that gains `--format json` gains a schema (and a docs/json.md section) with it."""
    import click

    from aelab.cli.main import VERBS, cli

    ctx = click.Context(cli)
    with_json = []
    for name in VERBS:
        command = cli.get_command(ctx, name)
        assert command is not None, name
        for param in command.params:
            if "--format" in getattr(param, "opts", ()) and "json" in getattr(param.type, "choices", ()):
                with_json.append(name)
    assert set(with_json) >= {"inspect", "doctor", "cost", "explain", "build", "memory"}
    assert set(with_json) <= set(schemas.verbs()), set(with_json) - set(schemas.verbs())


def test_load_refuses_an_unknown_verb_and_returns_a_fresh_dict() -> None:
    with pytest.raises(UsageError, match=r"no JSON schema for 'train'.*inspect"):
        schemas.load("train")
    schemas.load("inspect")["title"] = "changed"
    assert schemas.load("inspect")["title"] != "changed"


# --- every golden -----------------------------------------------------------------------------------------
def test_goldens_exist() -> None:
    assert len(GOLDENS) >= 15


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.name)
def test_golden_validates(path: Path) -> None:
    prefix = path.name.split("_")[0]
    assert prefix in GOLDEN_KIND, f"{path.name}: which verb's output is it? add its prefix to GOLDEN_KIND"
    verb, pointer = GOLDEN_KIND[prefix]
    check(verb, json.loads(path.read_text()), pointer)


# --- a live run of every verb -----------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("examples/seeds.py:SeqVAE", "--input", "2x20x201"),
    ("examples/seeds.py:AE", "--input", "x=3x784", "--no-backward", "--explain"),
    ("examples/seeds.py:ConvNet2d", "--input", "1x1x28x28", "--explain"),
], ids=["SeqVAE", "AE-no-backward", "ConvNet2d-explain"])
def test_inspect_live(args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, doc = run_json("inspect", *args, "--format", "json")
    assert code == 0
    check("inspect", doc)
    if "--no-backward" in args:
        assert doc["totals"]["flops_backward"] is None and all(r["flops_backward"] is None for r in doc["layers"])
        assert doc["totals"]["saved_bytes"] is None  # not recorded, not 0
    else:
        assert doc["totals"]["flops_backward"] > 0


def test_inspect_live_when_nothing_trains(tmp_path: Path) -> None:
    """Backward was asked for and nothing needs a gradient: a true 0, not null, and no backward kernel ran."""
    (tmp_path / "frozen.py").write_text(
        "from torch import nn\n\n\nclass Frozen(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(4, 3).requires_grad_(False)\n\n    def forward(self, x):\n"
        "        return self.fc(x).relu()\n")
    code, doc = run_json("inspect", f"{tmp_path / 'frozen.py'}:Frozen", "--input", "2x4", "--format", "json")
    assert code == 0 and doc["totals"]["backward_ran"] is False and doc["totals"]["flops_backward"] == 0
    check("inspect", doc)


def test_inspect_live_on_a_network_that_only_widens(tmp_path: Path) -> None:
    """Not an autoencoder and never narrower than its input: whatever the bottleneck says, it says it typed."""
    (tmp_path / "wide.py").write_text(
        "from torch import nn\n\n\nclass Wide(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(4, 8)\n\n    def forward(self, x):\n        return self.fc(x).relu()\n")
    code, doc = run_json("inspect", f"{tmp_path / 'wide.py'}:Wide", "--input", "2x4", "--format", "json")
    assert code == 0 and doc["bottleneck"]["latent_source"] == "none"
    assert doc["bottleneck"]["per_sample"] is None and doc["bottleneck"]["compression_ratio"] is None  # not 0
    check("inspect", doc)


def test_inspect_and_doctor_live_on_a_broken_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, doc = run_json("inspect", "examples/broken.py:ConvNet2dWrong", "--input", "1x1x28x28", "--format", "json")
    assert code == 1 and doc["error"] is not None and doc["doctor"]["status"] == "fixed"
    check("inspect", doc)
    stopped = [r for r in doc["layers"] if r["flops"] is None]  # the failing layer: null, not a "free" 0
    assert stopped and all(r["flops_other"] is None and r["output_bytes"] is None for r in stopped)
    assert doc["layers"][0]["flops"] is not None and doc["layers"][0]["flops"] > 0  # a layer that ran is counted
    code, doc = run_json("doctor", "examples/broken.py:ConvNet2dWrong", "--input", "1x1x28x28", "--format", "json")
    assert code == 1 and doc["findings"]
    check("doctor", doc)
    code, doc = run_json("doctor", "examples/seeds.py:AE", "--input", "1x784", "--format", "json")
    assert code == 0 and doc["ok"]
    check("doctor", doc)


def test_cost_live_with_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, doc = run_json("cost", "examples/seeds.py:NeuralNetwork", "--input", "8x1x28x28", "--trainable",
                         "linear_relu_stack.4*", "--measure", "--device", "cpu", "--repeats", "1", "--warmup", "0",
                         "--threads", "1", "--format", "json")
    assert code == 0 and "timing" in doc
    check("cost", doc)


def test_cost_live_with_nothing_to_train(tmp_path: Path) -> None:
    (tmp_path / "act.py").write_text("from torch import nn\n\n\nclass Act(nn.Module):\n    def forward(self, x):\n"
                                     "        return x.relu()\n")
    code, doc = run_json("cost", f"{tmp_path / 'act.py'}:Act", "--input", "2x4", "--format", "json")
    assert code == 0 and doc["flops_backward_all"] == 0 and doc["flops_backward_ratio"] is None  # 0/0, not 0
    check("cost", doc)


@pytest.mark.parametrize("args", [
    ("conv2d", "--input", "1x28x28", "--out-channels", "4", "--kernel", "5"),
    ("flatten", "--input", "16x7x7"),
    ("conv_transpose2d", "--input", "16x7x7", "--kernel", "3", "--stride", "2", "--padding", "1", "--want", "15"),
], ids=["conv2d", "flatten", "want"])
def test_explain_live(args: tuple[str, ...]) -> None:
    code, doc = run_json("explain", *args, "--format", "json")
    assert code == 0
    check("explain", doc)


def test_build_live(tmp_path: Path) -> None:
    code, doc = run_json("build", "conv-vae", "--input", "1x12x12", "--latent", "3", "--option", "channels=[4]",
                         "--format", "json", "--out", str(tmp_path / "m.py"))
    assert code == 0 and doc["source"] == str(tmp_path / "m.py")
    check("build", doc)
    code, doc = run_json("build", "dense", "--input", "20", "--latent", "2", "--format", "json")
    assert code == 0 and doc["source"] is None
    check("build", doc)


def test_memory_live_and_mutated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, doc = run_json("memory", "examples/seeds.py:AE", "--input", "8x784", "--fit", "1MB", "--format", "json")
    assert code == 0 and "max_batch" in doc
    check("memory", doc)
    for bad in (_drop("peak_bytes"), _set("peak_bytes", "1 MB"), _set("breakdown/parameters", -1), _set("x", 1)):
        mutated = copy.deepcopy(doc)
        bad(mutated)
        assert fails("memory", mutated)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Three tiny trained runs on `digits`: a built VAE, a built plain autoencoder, and the user's own model
    (the seed AE, `--model`)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for kind in ("dense-vae", "dense"):
        out[kind] = root / kind
        run("train", "--kind", kind, "--data", "digits", "--epochs", "1", "--limit", "200", "--latent", "3",
            "--hidden", "16", "--device", "cpu", "--quiet", "--out", str(out[kind]))
    out["user"] = root / "user"
    run("train", "--model", str(ROOT / "examples" / "seeds.py") + ":AE", "--arg", "x_dim=64", "--arg", "z_dim=3",
        "--arg", "h_dim=8", "--data", "digits", "--epochs", "1", "--limit", "200", "--device", "cpu", "--quiet",
        "--out", str(out["user"]))
    yield out


def test_evaluate_live(runs: dict[str, Path]) -> None:
    for kind, path in runs.items():
        run("evaluate", str(path), "--nll-samples", "4", "--nll-rows", "8", "--limit", "60", "--no-plots")
        doc = json.loads((path / "metrics.json").read_text())
        assert ("nll" in doc["metrics"]) == (kind == "dense-vae")
        check("evaluate", doc)


def test_detect_live(runs: dict[str, Path]) -> None:
    run("detect", str(runs["user"]), "--fpr", "0.1", "--per-feature")
    flagged = json.loads((runs["user"] / "scores.json").read_text())
    assert {"fpr", "threshold", "flagged", "per_feature_csv"} <= set(flagged)
    check("detect", flagged)
    summaries = []
    for extra in (["--normal-class", "0"], []):
        csv = runs["dense-vae"] / f"scores{len(extra)}.csv"
        run("detect", str(runs["dense-vae"]), "--samples", "2", "--out", str(csv), *extra)
        summaries.append(json.loads(csv.with_suffix(".json").read_text()))
        check("detect", summaries[-1])
    labelled, classes = summaries
    assert labelled["auroc"] is not None and classes["auroc"] is None and classes["anomalies"] is None


# --- a mutated document fails -----------------------------------------------------------------------------
def _golden(name: str) -> Any:
    return json.loads(next(p for p in GOLDENS if p.name == name).read_text())


def _set(path: str, value: Any) -> Callable[[Any], None]:
    """A mutation: set the key at `path` ('totals/flops_backward', 'layers/0/params') to `value`."""
    *parents, last = path.split("/")

    def mutate(doc: Any) -> None:
        for key in parents:
            doc = doc[int(key)] if isinstance(doc, list) else doc[key]
        doc[int(last) if isinstance(doc, list) else last] = value

    return mutate


def _drop(path: str) -> Callable[[Any], None]:
    *parents, last = path.split("/")

    def mutate(doc: Any) -> None:
        for key in parents:
            doc = doc[int(key)] if isinstance(doc, list) else doc[key]
        del doc[last]

    return mutate


_NO_BACKWARD = [_set("totals/backward_ran", False), _set("totals/flops_backward", None),
                _set("totals/flops_backward_other", None), _set("totals/flops_backward_by_category", {})]

MUTATIONS: dict[str, list[Callable[[Any], None]]] = {
    "missing key": [_drop("totals")],
    "unknown key": [_set("totalz", {})],
    "unknown layer key": [_set("layers/0/flops_fwd", 1)],
    "string for a count": [_set("layers/0/params", "12")],
    "negative count": [_set("totals/params", -1)],
    "float for a count": [_set("totals/flops_forward", 1.5)],
    "null where a count must be": [_set("totals/params", None)],
    "silent zero: backward FLOPs with no backward": _NO_BACKWARD[:1],
    "backward counted though the forward failed": [_set("error", {
        "exc_type": "RuntimeError", "message": "m", "call_stack": [0], "op": None, "op_inputs": [],
        "function": None, "function_inputs": []})],
    "backward other null, matrix counted": [_set("totals/flops_backward_other", None)],
    "saved bytes unknown, backward counted": [_set("totals/saved_bytes", None)],
    "a layer's backward FLOPs 0 with no backward": [*_NO_BACKWARD, _set("layers/0/flops_backward", 0)],
    "backward null though it ran": [_set("layers/0/flops_backward", None)],
    "unknown execution": [_set("execution", "magic")],
    "doctor without an error": [_set("doctor", {"model": "AE"})],
    "bad bottleneck role": [_set("bottleneck/path/0/role", "middle")],
    "encoder with no bottleneck": [_set("bottleneck", None)],
    "shape of strings": [_set("inputs/0/shape", ["1", "784"])],
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_inspect_mutation_fails(mutation: str) -> None:
    doc = _golden("inspect_AE.json")
    check("inspect", doc)
    for mutate in MUTATIONS[mutation]:
        mutate(doc)
    assert fails("inspect", doc), mutation


def test_inspect_without_backward_is_valid_when_consistent() -> None:
    doc = _golden("inspect_AE.json")
    for mutate in _NO_BACKWARD:
        mutate(doc)
    for row in doc["layers"]:
        row["flops_backward"] = None
    check("inspect", doc)


def test_bottleneck_mutation_fails() -> None:
    doc = _golden("bottleneck_SeqVAE.json")
    for bad in (_set("latent_source", "guess"), _set("per_position", "256"), _drop("verdict"), _set("batch", 0),
                _set("compression_ratio", None), _set("latent_source", "none")):
        mutated = copy.deepcopy(doc)
        bad(mutated)
        assert fails("inspect", mutated, "#/$defs/bottleneck")


def test_cost_mutation_fails() -> None:
    doc = _golden("cost_SeqVAE_encoder_frozen.json")
    for bad in (_drop("flops_backward_all"), _set("layers/0/status", "frozen"), _set("flops_backward", None),
                _set("flops_backward_ratio", None),
                _set("timing", {"device": "cpu"}), _set("extra", 1)):
        mutated = copy.deepcopy(doc)
        bad(mutated)
        assert fails("cost", mutated)


DOCTOR = {"model": "M", "inputs": [[1, 3]], "status": "ok", "ok": True, "findings": [], "output_shapes": [[1, 3]],
          "final_inputs": [[1, 3]], "stopped": None}
FINDING = {"kind": "linear_in_features", "layer": "fc", "layer_type": "Linear", "problem": "p", "got": "g",
           "expected": "e", "fix": "nn.Linear(3, 1)", "derivation": "3 = 3", "alternatives": [], "error": None,
           "applied": True}


def test_doctor_mutation_fails() -> None:
    check("doctor", DOCTOR)
    fixed = {**DOCTOR, "status": "fixed", "ok": False, "findings": [FINDING]}
    check("doctor", fixed)
    for bad in ({**DOCTOR, "status": "fixed"}, {**DOCTOR, "ok": False}, {**fixed, "findings": [{**FINDING, "fix": 3}]},
                {**fixed, "findings": [{k: v for k, v in FINDING.items() if k != "applied"}]},
                {**DOCTOR, "status": "great"}, {**DOCTOR, "stopped": False}):
        assert fails("doctor", bad)


def test_explain_mutation_fails() -> None:
    _, doc = run_json("explain", "linear", "--in-features", "12", "--out-features", "3", "--format", "json")
    check("explain", doc)
    for bad in (_drop("flops"), _set("weight_shape", "3x12"), _set("batch", 0), _set("dims", [])):
        mutated = copy.deepcopy(doc)
        bad(mutated)
        assert fails("explain", mutated)


METRICS = {"run": "r", "data": "digits", "part": "test", "rows": 10, "nll_samples": 0, "notes": [], "non_finite": [],
           "metrics": {"mse": {"mean": 0.1, "unit": "", "better": "lower", "rows": 10, "doc": "d", "per_class": {}}}}


def test_evaluate_mutation_fails() -> None:
    check("evaluate", METRICS)
    check("evaluate", {**METRICS, "metrics": {"mse": {**METRICS["metrics"]["mse"], "mean": None}},
                       "non_finite": ["mse"]})
    for bad in ({**METRICS, "metrics": {}}, {**METRICS, "part": "val"}, {**METRICS, "rows": 0},
                {**METRICS, "metrics": {"mse": {**METRICS["metrics"]["mse"], "better": "smaller"}}},
                {**METRICS, "metrics": {"mse": {**METRICS["metrics"]["mse"], "mean": "NaN"}}},
                {k: v for k, v in METRICS.items() if k != "notes"}):
        assert fails("evaluate", bad)


DETECT = {"score": "recon", "rows": 5, "anomalies": 2, "normal": "label 1 marks an anomaly", "auroc": 0.5,
          "aupr": 0.4, "data": "shuttle", "part": "test", "csv": "s.csv"}


def test_detect_mutation_fails() -> None:
    check("detect", DETECT)
    check("detect", {**DETECT, "auroc": None, "aupr": None, "anomalies": None})
    for bad in ({**DETECT, "auroc": None}, {**DETECT, "auroc": 1.5}, {**DETECT, "score": "mse"},
                {**DETECT, "anomalies": None}, {**DETECT, "fpr": 0}, {k: v for k, v in DETECT.items() if k != "csv"}):
        assert fails("detect", bad)


def test_build_mutation_fails() -> None:
    _, doc = run_json("build", "dense", "--input", "20", "--latent", "2", "--format", "json")
    for bad in (_drop("report"), _set("report/totals/params", -1), _set("latent_shape", [2.5]), _set("kind", "")):
        mutated = copy.deepcopy(doc)
        bad(mutated)
        assert fails("build", mutated)


# --- docs/json.md names every key -------------------------------------------------------------------------
def _keys(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        yield from schema.get("properties", {})
        for value in schema.values():
            yield from _keys(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _keys(value)


@pytest.mark.parametrize("verb", schemas.verbs())
def test_docs_json_names_every_key(verb: str) -> None:
    text = (ROOT / "docs" / "json.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    section = next((s for s in sections if s.split("\n")[0].strip("` ").startswith(verb)), None)
    assert section is not None, f"docs/json.md has no '## {verb}' section"
    missing = sorted({k for k in _keys(schemas.load(verb)) if f"`{k}`" not in section})
    assert not missing, f"docs/json.md's {verb} section does not explain {', '.join(missing)}"


def test_validate_raises_the_best_error() -> None:
    with pytest.raises(ValidationError, match="'model' is a required property"):
        schemas.validate("doctor", {k: v for k, v in DOCTOR.items() if k != "model"})
