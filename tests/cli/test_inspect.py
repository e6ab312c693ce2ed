"""`aelab inspect` from the command line: output, JSON contract, golden files, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldens import check_golden

SEED_CASES = {
    "NeuralNetwork": ["--input", "1x1x28x28"],
    "AE": ["--input", "1x784"],
    "Network": ["--input", "1x784"],
    "SeqVAE": ["--input", "4x50x201"],
    "ConvNet2d": ["--input", "1x1x28x28"],
    "Conv1dNet": ["--input", "2x8x50"],
    "ObjectScorer": ["--input", "2x5x12"],
}


def _golden(name: str, text: str) -> None:
    check_golden(name, text)


@pytest.mark.parametrize("name", sorted(SEED_CASES))
def test_seed_table_and_json_golden(cli, name: str) -> None:
    table = cli("inspect", f"examples/seeds.py:{name}", *SEED_CASES[name])
    assert table.returncode == 0, table.stderr
    _golden(f"inspect_{name}.txt", table.stdout)
    out = cli("inspect", f"examples/seeds.py:{name}", *SEED_CASES[name], "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    _golden(f"inspect_{name}.json", json.dumps(data, indent=2) + "\n")
    assert {"model", "inputs", "layers", "totals", "bottleneck", "encoder", "decoder"} <= set(data)
    for layer in data["layers"]:
        assert {"name", "type", "depth", "input_shapes", "output_shapes", "params", "trainable_params",
                "flops"} <= set(layer)
    assert {"params", "trainable_params", "flops_forward", "flops_backward"} <= set(data["totals"])


def test_seed_vae_cli_shows_rsample_and_transposes(run_cli) -> None:
    out = run_cli("inspect", "examples/seeds.py:SeqVAE", "--input", "4x50x201")
    assert out.returncode == 0, out.stderr
    assert "rsample (Normal.rsample)" in out.stdout
    assert "(4, 50, 201)" in out.stdout and "(4, 201, 50)" in out.stdout
    table = out.stdout.split("Params:")[0]
    assert table.count("(Transpose)") == 4


def test_markdown_and_depth_and_out_file(cli, tmp_path: Path) -> None:
    target = tmp_path / "ae.md"
    out = cli("inspect", "examples/seeds.py:AE", "--input", "1x784", "--format", "markdown", "--depth", "1",
                  "--out", str(target))
    assert out.returncode == 0, out.stderr
    table = target.read_text().split("- Params:")[0]
    assert "| encoder | Sequential |" in table and "encoder.0" not in table


def test_keyword_input_and_args(cli) -> None:
    out = cli("inspect", "examples/seeds.py:AE", "--input", "x=3x100", "--arg", "x_dim=100", "--arg", "z_dim=5",
                  "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["inputs"] == [{"name": "x", "shape": [3, 100], "dtype": "float32"}]
    assert data["totals"]["params"] == (100 * 42 + 42) + (42 * 5 + 5) + (5 * 42 + 42) + (42 * 100 + 100)


def test_package_module_spec(run_cli, tmp_path: Path) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(
        "import torch\n\ndef make(width=8):\n    return torch.nn.Sequential(torch.nn.Linear(4, width))\n")
    env_cwd = tmp_path
    out = run_cli("inspect", "mypkg.nets:make", "--input", "2x4", "--arg", "width=3", "--format", "json", cwd=env_cwd)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["totals"]["params"] == 4 * 3 + 3


BAD = {
    "missing file": (["inspect", "examples/nope.py:AE", "--input", "1x784"], "no such file"),
    "missing name": (["inspect", "examples/seeds.py:Nope", "--input", "1x784"], "has no 'Nope'"),
    "constructor raises": (["inspect", "examples/seeds.py:AE", "--input", "1x784", "--arg", "x_dim=-3"],
                           "constructing examples/seeds.py:AE raised"),
    "trailing x": (["inspect", "examples/seeds.py:AE", "--input", "28x"], "is not a shape"),
    "letters": (["inspect", "examples/seeds.py:AE", "--input", "abc"], "is not a shape"),
    "unknown dtype": (["inspect", "examples/seeds.py:AE", "--input", "1x784:complex7"], "unknown dtype"),
    "zero size": (["inspect", "examples/seeds.py:AE", "--input", "0x784"], "at least 1"),
    "no colon": (["inspect", "examples/seeds.py", "--input", "1x784"], "FILE.py:NAME"),
    "missing module": (["inspect", "no_such_pkg.mod:Net", "--input", "1x784"], "no module named"),
    "bad arg": (["inspect", "examples/seeds.py:AE", "--input", "1x784", "--arg", "nonsense"], "name=value"),
    "factory needs args": (["inspect", "examples/seeds.py:output_to_dist", "--input", "1x784"],
                           "missing a required argument"),
    "not a module": (["inspect", "builtins:dict", "--input", "1x784"], "not a torch.nn.Module"),
    "not callable": (["inspect", "examples/seeds.py:SEED_MODELS", "--input", "1x784"], "not a class or a function"),
    "unwritable out": (["inspect", "examples/seeds.py:AE", "--input", "1x784", "--out", "/nonexistent/dir/x.txt"],
                       "cannot write"),
    "no input": (["inspect", "examples/seeds.py:AE"], "--input"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line(cli, case: str) -> None:
    args, expected = BAD[case]
    out = cli(*args)
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr and expected in lines[0], lines[0]


def test_model_that_fails_forward_is_reported_not_crashed(cli) -> None:
    out = cli("inspect", "examples/broken.py:ConvNet2dWrong", "--input", "1x1x28x28")
    assert out.returncode == 1, out.stderr
    assert "Forward failed in fc" in out.stdout
    assert "aelab doctor" in out.stdout


def test_bad_input_in_a_real_process_has_no_traceback(run_cli) -> None:
    """The in-process runner calls the same main(); this one checks the installed entry point end to end."""
    out = run_cli("inspect", "examples/seeds.py:AE", "--input", "28x")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["aelab: input '28x' is not a shape: write sizes joined by 'x' or ',', "
                                               "e.g. 1x28x28 or 8,100,201"]


def test_explain_adds_formulas_checked_against_the_real_layers(cli) -> None:
    out = cli("inspect", "examples/seeds.py:Conv1dNet", "--input", "2x8x50", "--explain", "--format", "json")
    assert out.returncode == 0, out.stderr
    layers = {layer["name"]: layer for layer in json.loads(out.stdout)["layers"]}
    # 48 = 50 − 3 + 1, the length the real Conv1d(8, 16, 3) produces (row shape comes from the trace)
    assert "L_out = ⌊(50 + 2·0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 48" in layers["conv"]["formula"]
    assert layers["conv"]["output_shapes"] == [[2, 16, 48]]
    assert layers["fc"]["formula"][0] == "y = x Wᵀ + b"
    assert "W (4, 768), b (4,)" in layers["fc"]["formula"]


@pytest.mark.parametrize("verb", ["inspect", "cost", "memory", "doctor"])
def test_a_lazy_module_before_its_first_forward_is_bad_input_not_an_internal_error(cli, tmp_path: Path,
                                                                                    verb: str) -> None:
    (tmp_path / "lazy.py").write_text("import torch\n\ndef make():\n"
                                      "    return torch.nn.Sequential(torch.nn.LazyLinear(4), torch.nn.ReLU())\n")
    out = cli(verb, f"{tmp_path / 'lazy.py'}:make", "--input", "2x3")
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "0.weight is an uninitialised parameter of a lazy module" in lines[0], lines


_META_HELD = '''import torch
from torch import nn


class Box:
    def __init__(self):
        self.t = torch.tensor(2)


class Held(nn.Module):
    """Keeps `held + 1` rows: a meta tensor the constructor made, as an attribute or in an object of its own."""

    def __init__(self, in_box):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        if in_box:
            self.box = Box()
        else:
            self.held = torch.tensor(2)

    def forward(self, x):
        held = self.box.t if hasattr(self, "box") else self.held
        return self.lin(x)[: int(held.item()) + 1]


def make(in_box=False):
    with torch.device("meta"):
        return Held(in_box)
'''


def test_a_meta_attribute_without_a_value_is_traced_with_zeros_and_said(cli, tmp_path: Path) -> None:
    # `torch.tensor(2)` under the meta device is a meta tensor: its 2 was never made, so a real run can only
    # use zeros (1 row kept). It was an internal error (exit 3); now it runs and the notes say which value.
    (tmp_path / "held.py").write_text(_META_HELD)
    out = cli("inspect", f"{tmp_path / 'held.py'}:make", "--input", "4x3", "--format", "json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["layers"][-1]["output_shapes"] == [[1, 3]]
    assert any("not recoverable on meta" in n and ": held;" in n for n in report["notes"]), report["notes"]


@pytest.mark.parametrize("verb", ["inspect", "cost", "doctor"])
def test_a_meta_value_outside_the_model_is_bad_input_in_one_line(cli, tmp_path: Path, verb: str) -> None:
    (tmp_path / "held.py").write_text(_META_HELD)
    out = cli(verb, f"{tmp_path / 'held.py'}:make", "--input", "4x3", "--arg", "in_box=True")
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "reads the value of a meta tensor" in lines[0] and "--device cpu" in lines[0], lines
