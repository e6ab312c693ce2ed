"""The public API (issue 9): `aelab.__all__` names the functions and their records, each typed, lazy, and
bad input is a UsageError everywhere."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import aelab

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ["inspect", "diagnose", "cost", "memory", "explain_layer", "build", "train", "evaluate", "detect"]
RECORDS = ["Report", "Diagnosis", "CostReport", "MemoryReport", "LayerExplanation", "Autoencoder", "RunResult",
           "Evaluation", "Detection", "TrainConfig"]


def test_all_lists_the_functions_records_and_errors() -> None:
    assert set(FUNCTIONS + RECORDS + ["AelabError", "UsageError", "ModelError"]) <= set(aelab.__all__)
    for name in aelab.__all__:
        assert getattr(aelab, name) is not None, name


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_is_typed(name: str) -> None:
    fn = getattr(aelab, name)
    sig = inspect.signature(fn)
    assert sig.return_annotation is not inspect.Signature.empty, f"aelab.{name} has no return type"
    untyped = [p.name for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not untyped, f"aelab.{name}: untyped parameters {untyped}"
    assert fn.__doc__, f"aelab.{name} has no docstring"


@pytest.mark.parametrize("name", [r for r in RECORDS if r not in ("Autoencoder", "TrainConfig")])
def test_no_any_in_a_public_record(name: str) -> None:
    """A result's own fields say what they hold (nested payloads such as a layer's hyper-parameters aside)."""
    cls = getattr(aelab, name)
    loose = {f.name: f.type for f in dataclasses.fields(cls) if "Any" in str(f.type)}
    allowed = {"RunResult": {"history"}}  # one JSON-like record per epoch, keys = the kind's loss terms
    assert set(loose) <= allowed.get(name, set()), f"{name} fields typed Any: {loose}"


def test_import_aelab_is_cheap() -> None:
    """`import aelab` (and its __all__) loads no torch: the names are imported on first use."""
    code = "import sys, aelab; aelab.__all__; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False"


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "src" / "aelab" / "py.typed").exists()
    text = (ROOT / "pyproject.toml").read_text()
    assert '"py.typed"' in text


def test_errors_form_one_family() -> None:
    assert issubclass(aelab.UsageError, aelab.AelabError) and issubclass(aelab.ModelError, aelab.AelabError)
    assert aelab.UsageError.exit_code == 2 and aelab.ModelError.exit_code == 1


@pytest.mark.parametrize(("args", "kwargs"), [
    (("conv", (1, 28, 28), 0), {}),              # a bad value
    (("no-such-kind", (1, 28, 28), 4), {}),      # an unknown kind
    (("dense", (784,), 8), {"widht": 3}),        # an unknown option
    (("conv", (1, 2, 2), 4), {"channels": [4, 4, 4]}),  # a geometry the input cannot support
])
def test_build_raises_usage_error(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    with pytest.raises(aelab.UsageError):
        aelab.build(*args, **kwargs)


def test_every_lazy_name_lives_where_the_table_says() -> None:
    for name, module in aelab._LAZY.items():
        assert hasattr(importlib.import_module(module), name), (name, module)


def test_train_evaluate_detect_through_the_api(tmp_path: Path) -> None:
    """The three run functions chain as docs/train.md shows: a run folder in, records out."""
    run = tmp_path / "run"
    config = aelab.TrainConfig(kind="dense-vae", data="digits", latent=2, model_options={"hidden": [16]}, epochs=1,
                               batch_size=64, limit=200, seed=1)
    result = aelab.train(run, config, quiet=True)
    assert isinstance(result, aelab.RunResult) and result.finished and result.epochs_done == 1
    ev = aelab.evaluate(run, nll_samples=4, nll_rows=8)
    assert isinstance(ev, aelab.Evaluation) and {m.name for m in ev.metrics} >= {"mse", "elbo", "nll"}
    det = aelab.detect(run, score="elbo", samples=2)
    assert isinstance(det, aelab.Detection) and det.score == "elbo" and len(det.scores) == ev.rows
    with pytest.raises(aelab.UsageError):
        aelab.evaluate(tmp_path / "no-such-run")
