"""`aelab explain` as a user runs it: real processes, exit codes, one-line errors; numbers against PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from aelab.cli import main
from aelab.cli.verbs.explain import OPTIONS
from aelab.explain.layers import LAYER_KINDS


def aelab(*args: str) -> subprocess.CompletedProcess[str]:
    """A real process, as the user runs it (a few tests: each one pays for importing torch)."""
    return subprocess.run([sys.executable, "-m", "aelab", "explain", *args], capture_output=True, text=True,
                          timeout=180)


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int | str | None, str, str]:
    """(exit code, stdout, stderr) of `aelab explain ARGS` through aelab.cli.main, in-process: the same path
    as the process, fast enough for the whole matrix of cases."""
    with pytest.raises(SystemExit) as info:
        main(["explain", *args])
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def real(module: nn.Module, shape: tuple[int, ...]) -> tuple[list[int], int, int]:
    """One sample's output shape, parameter count and FlopCounterMode's FLOPs of the real layer."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module(torch.zeros(1, *shape))
    return list(out.shape[1:]), sum(p.numel() for p in module.parameters()), counter.get_total_flops()


def test_seed_004_example_matches_the_real_layer() -> None:
    r = aelab("conv2d", "--input", "1x28x28", "--out-channels", "16", "--kernel", "5", "--padding", "2")
    assert r.returncode == 0, r.stderr
    shape, params, flops = real(nn.Conv2d(1, 16, 5, padding=2), (1, 28, 28))
    assert "H_out = ⌊(28 + 2·2 − 1·(5 − 1) − 1) / 1⌋ + 1 = 28" in r.stdout
    assert f"output   (N, {', '.join(map(str, shape))})" in r.stdout
    assert f"params   {params} = 16·1·5·5 + 16" in r.stdout
    assert f"FLOPs    {flops} = " in r.stdout and "weight   (16, 1, 5, 5)" in r.stdout


CASES: list[tuple[list[str], nn.Module, tuple[int, ...]]] = [
    (["conv_transpose3d", "--input", "4x3x4x5", "--out-channels", "6", "--kernel", "3x2x3", "--stride", "2",
      "--padding", "1", "--output-padding", "1x0x1", "--groups", "2", "--no-bias"],
     nn.ConvTranspose3d(4, 6, (3, 2, 3), 2, 1, (1, 0, 1), groups=2, bias=False), (4, 3, 4, 5)),
    (["linear", "--input", "5x784", "--out-features", "256"], nn.Linear(784, 256), (5, 784)),
    (["Conv1d", "--input", "3x50", "--out-channels", "8", "--kernel", "4", "--dilation", "3",
      "--padding", "same"], nn.Conv1d(3, 8, 4, dilation=3, padding="same"), (3, 50)),
    (["avgpool2d", "--input", "2x9x8", "--kernel", "3x2", "--stride", "2", "--padding", "1", "--ceil-mode"],
     nn.AvgPool2d((3, 2), 2, 1, ceil_mode=True), (2, 9, 8)),
]


@pytest.mark.filterwarnings("ignore::UserWarning")  # padding='same' with an even kernel warns; true and known
@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0][0] for c in CASES])
def test_json_agrees_with_pytorch(i: int, capsys: pytest.CaptureFixture[str]) -> None:
    args, module, shape = CASES[i]
    code, out, err = explain(capsys, *args, "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert [got["output_shape"], got["params"], got["flops"]] == list(real(module, shape))


def test_want_json_paddings_work_on_the_real_layer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = explain(capsys, "conv2d", "--input", "3x28x20", "--kernel", "3", "--stride", "2",
                             "--want", "14x10", "--format", "json")
    assert code == 0, err
    dims = json.loads(out)["dims"]
    assert [d["dim"] for d in dims] == ["H", "W"] and all(d["exact"] for d in dims)
    pad = tuple(d["exact"][0]["padding"] for d in dims)
    assert real(nn.Conv2d(3, 1, 3, stride=2, padding=pad), (3, 28, 20))[0] == [1, 14, 10]


@pytest.mark.parametrize(("args", "words"), [
    (["conv2d", "--input", "1x28x3", "--out-channels", "16", "--kernel", "5"], "W_out = "),
    (["pool7d", "--input", "1x8"], "known: conv1d, conv2d"),
])
def test_bad_input_exits_2_with_one_line(args: list[str], words: str) -> None:
    r = aelab(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("aelab: ") and words in r.stderr


@pytest.mark.parametrize(("args", "words"), [
    (["conv2d", "--input", "1x3x28", "--out-channels", "2", "--kernel", "5"], "H_out = ⌊(3 + 2·0"),
    (["conv2d", "--input", "1x8x8", "--out-channels", "2", "--kernel", "0"], "at least 1"),
    (["conv2d", "--input", "1x28x28", "--out-channels", "16", "--kernel", "-3"], "kernel_size must be at"),
    (["conv2d", "--input", "1x8x8", "--out-channels", "2", "--kernel", "3", "--ceil-mode"], "--ceil"),
    (["conv2d", "--input", "3x8x8", "--out-channels", "4", "--kernel", "3", "--groups", "2"], "divisible"),
    (["conv2d", "--input", "1x8x8", "--out-channels", "2", "--kernel", "abc"], "--kernel takes an integer"),
    (["conv2d", "--input", "1x8", "--out-channels", "2", "--kernel", "3"], "C×H×W"),
    (["conv2d", "--input", "1x8x8", "--kernel", "3"], "needs out_channels"),
    (["conv2d", "--out-channels", "2", "--kernel", "3"], "needs --input"),
    (["conv2d", "--input", "0x8x8", "--out-channels", "2", "--kernel", "3"], "at least 1"),
    (["linear", "--input", "784", "--in-features", "12544", "--out-features", "10"], "last size is 784"),
    (["linear", "--out-features", "10"], "--in-features"),
    (["maxpool2d", "--input", "1x8x8", "--kernel", "3", "--padding", "2"], "more than half the kernel"),
    (["maxpool2d", "--input", "1x8x8", "--kernel", "2", "--want", "4"], "has neither"),
    (["conv_transpose2d", "--input", "1x7x7", "--out-channels", "1", "--kernel", "3",
      "--output-padding", "1"], "smaller than stride"),
    (["conv_transpose1d", "--input", "1x2", "--out-channels", "1", "--kernel", "2", "--padding", "3"],
     "L_out"),
    (["conv1d", "--input", "1x9", "--out-channels", "1", "--kernel", "3", "--stride", "2",
      "--padding", "same"], "needs stride 1"),
    (["conv2d", "--input", "1x8x8", "--kernel", "3", "--want", "0"], "at least 1"),
    (["flatten", "--input", "4x4", "--start-dim", "0"], "batch"),
])
def test_every_bad_input_is_one_line(args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = explain(capsys, *args)
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and err.startswith("aelab: ") and words in err, err


def test_every_hyper_parameter_has_an_option() -> None:
    accepted: set[str] = set().union(*(kind.accepts for kind in LAYER_KINDS.values()))
    assert accepted - {"in_channels"} <= set(OPTIONS.values())


def test_text_output_of_each_kind(capsys: pytest.CaptureFixture[str]) -> None:
    """Every registry entry explains through the CLI, its formula lines between input and output."""
    args = {"linear": ["--input", "12", "--out-features", "3"], "flatten": ["--input", "2x3x4"]}
    for name, kind in LAYER_KINDS.items():
        extra: Any = args.get(name) or ["--input", "x".join(["2"] + ["9"] * kind.spatial), "--kernel", "2"]
        if name.startswith("conv"):
            extra += ["--out-channels", "4"]
        code, out, err = explain(capsys, name, *extra)
        assert code == 0, (name, err)
        lines = out.splitlines()
        assert lines[0].startswith(f"{name}  nn.") and lines[1].startswith("  input")
        formulas = [line for line in lines if "_out = " in line or line.startswith("  features = ")]
        assert len(formulas) == max(kind.spatial, 1 if name == "flatten" else 0)
