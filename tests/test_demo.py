"""`aelab demo` (what `make demo` runs) end to end, on a few rows so the suite stays fast."""

from __future__ import annotations

import json
from pathlib import Path


def test_demo_trains_evaluates_and_writes_pictures(cli, tmp_path: Path) -> None:
    out = cli("demo", "--epochs", "1", "--limit", "600", "--out", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert "mse" in json.dumps(metrics)
    for picture in ("reconstructions.png", "latent.png", "loss.png"):
        path = tmp_path / "demo" / picture
        assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
    assert "reconstructions.png" in out.stdout
