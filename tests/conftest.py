"""Shared test setup: examples/ and tests/ importable, CPU determinism, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "tests"))
torch.set_num_threads(1)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the real `aelab` entry point in this process (fast); returns (exit code, stdout, stderr)."""
    from aelab.cli import main

    def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        monkeypatch.chdir(cwd)
        monkeypatch.setenv("COLUMNS", "160")
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)

    return run


@pytest.fixture
def run_cli():
    """Run `python -m aelab ARGS` in a subprocess; return the CompletedProcess."""

    def run(*args: str, cwd: Path = ROOT, timeout: int = 180) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "160"}
        return subprocess.run([sys.executable, "-m", "aelab", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, env=env)

    return run
