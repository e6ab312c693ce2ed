"""`aelab demo` (what `make demo` runs) end to end, on a few rows so the suite stays fast."""

from __future__ import annotations

import json
import math
from pathlib import Path


def test_demo_trains_evaluates_and_writes_pictures(cli, tmp_path: Path) -> None:
    out = cli("demo", "--epochs", "1", "--limit", "600", "--out", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"mse", "psnr", "bce"}  # a plain AE on data in [0, 1]: no ELBO/NLL
    assert all(m["rows"] == 2000 for m in metrics.values())
    assert 0 < metrics["mse"]["mean"] < 0.25  # better than predicting 0.5 for every pixel
    # the mean of per-row PSNRs is at least the PSNR of the mean MSE (Jensen: -log is convex)
    assert metrics["psnr"]["mean"] >= 10 * math.log10(1 / metrics["mse"]["mean"]) - 1e-9
    for picture in ("reconstructions.png", "latent.png", "loss.png"):
        path = tmp_path / "demo" / picture
        assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
    assert "reconstructions.png" in out.stdout
