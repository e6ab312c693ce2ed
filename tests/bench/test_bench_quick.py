"""Every benchmark script runs end to end in its --quick mode (tiny sizes, no doc update), so none can rot
unseen: bench/train_vs_anchors.py crashed for weeks in its NLL comparison before this test existed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("*_vs_anchors.py"))


def test_every_bench_script_is_covered() -> None:
    assert {"inspect_vs_anchors.py", "memory_vs_anchors.py", "train_vs_anchors.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_quick_mode_runs_and_prints_its_tables(script: str) -> None:
    docs = (ROOT / "docs" / "benchmarks.md").read_bytes() if (ROOT / "docs" / "benchmarks.md").exists() else b""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    r = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stdout.strip(), "a --quick run prints what it measured"
    assert "|---" in r.stdout
    if script == "inspect_vs_anchors.py":  # it runs in rounds and shows each round's ratio
        assert "each round in run order" in r.stdout
    after = (ROOT / "docs" / "benchmarks.md").read_bytes() if (ROOT / "docs" / "benchmarks.md").exists() else b""
    assert after == docs, "--quick must not rewrite docs/benchmarks.md"
