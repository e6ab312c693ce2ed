"""`aelab build` through the real entry point: exit codes, one-line errors, the --out file."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from aelab.models import build

# Every ValueError of the builder takes the same path to exit 2; these three cover config, kind and geometry
# (tests/models/test_config.py checks each message at the API). A dtype on --input would be silently ignored.
BAD = {
    "dtype given": (["conv", "--input", "1x28x28:half", "--latent", "4"], "give only a shape"),
    "latent 0": (["conv", "--input", "1x28x28", "--latent", "0"], "'--latent': 0 is not in the range x>=1"),
    "unknown kind": (["cnn", "--input", "1x28x28", "--latent", "4"], "unknown kind 'cnn'"),
    "too many stages": (["conv", "--input", "1x8x8", "--latent", "4", "-o", "channels=[4,4,4,4,4]"],
                        "use at most 3 stage(s)"),
}


def _aelab(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "aelab", "build", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_build_cli(tmp_path: Path) -> None:
    """All invocations start at once (each pays the torch import), then each is checked."""
    out = tmp_path / "model.py"
    ok = _aelab(["conv-vae", "--input", "3x33x47", "--latent", "8", "--option", "channels=[4,8]",
                 "--option", "likelihood=bernoulli", "--out", str(out)], tmp_path)
    bad = {name: (_aelab(args, tmp_path), message) for name, (args, message) in BAD.items()}

    stdout, stderr = ok.communicate(timeout=300)
    assert ok.returncode == 0, stderr
    assert "conv-vae: input 3x33x47 -> latent 8 -> 3x33x47" in stdout
    assert "encoder convs: 3x33x47 -> 4x17x24 -> 8x9x12" in stdout
    assert "decoder output_padding (solved, per transposed conv): (0, 1), (0, 0)" in stdout
    assert f"wrote {out}" in stdout

    spec = importlib.util.spec_from_file_location("aelab_cli_built", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = module.ConvVAE().state_dict()
    model = build("conv-vae", (3, 33, 47), 8, channels=[4, 8], likelihood="bernoulli").state_dict()
    assert {k: v.shape for k, v in rebuilt.items()} == {k: v.shape for k, v in model.items()}

    for name, (proc, message) in bad.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2, f"{name}: exit {proc.returncode}, {stderr}"
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("aelab: "), f"{name}: {stderr!r}"
        assert message in lines[0] and "Traceback" not in stderr, f"{name}: {lines[0]}"


def test_help_lists_every_kind_from_the_registry(cli) -> None:
    """The kinds and their defaults in `aelab build --help` come from the kinds' configs: no edit for a new kind."""
    from aelab.models import KINDS

    proc = cli("build", "--help")
    assert proc.returncode == 0
    for name in KINDS:
        assert f"\n    {name} " in proc.stdout, name
