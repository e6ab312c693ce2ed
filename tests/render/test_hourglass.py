"""The hourglass: AE(784, 10, 42) reads 784 → 42 → 10 → 42 → 784 with the waist marked; the seed VAE's
per-step widths; the numbers drawn are the widths real forward hooks see."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import seeds
import torch

import aelab
from aelab.errors import UsageError
from aelab.render.hourglass import COLORS, bars, hourglass_svg, render_hourglass
from truth import hook_shapes


def _widths(svg: str) -> list[str]:
    """The numbers written on the bars, left to right (each bar label is an SVG group `width-i`)."""
    found = re.findall(r'<g id="width-(\d+)">\s*<text[^>]*>([^<]*)</text>', svg)
    return [text.strip() for _, text in sorted(found, key=lambda m: int(m[0]))]


def _texts(svg: str) -> list[str]:
    return [re.sub(r"\s+", " ", t).strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_ae_hourglass_by_hand() -> None:
    """x_dim 784 → h_dim 42 (Linear, ReLU) → z_dim 10 → 42 (Linear, ReLU) → 784."""
    model = seeds.AE(784, 10, 42)
    report = aelab.inspect(model, (1, 784))
    drawn = bars(report.bottleneck)
    assert [b.per_sample for b in drawn] == [784, 42, 10, 42, 784]
    assert [b.role for b in drawn] == ["input", "encoder", "latent", "decoder", "output"]
    truth = hook_shapes(model, torch.randn(1, 784))
    assert [math.prod(truth[b.layer][1][0][1:]) for b in drawn[1:]] == [42, 10, 42, 784]
    svg = hourglass_svg(report.bottleneck)
    assert _widths(svg) == ["784", "42", "10", "42", "784"]
    waist = re.search(r'<g id="waist">.*?<text[^>]*>([^<]*)</text>', svg, re.S)
    assert waist is not None and waist.group(1).strip() == "bottleneck: 10 per sample"
    assert COLORS["encoder"] != COLORS["decoder"]
    assert svg.count(f"fill: {COLORS['latent']}") >= 1


def test_seq_vae_per_step_widths() -> None:
    model = seeds.SeqVAE()
    report = aelab.inspect(model, (2, 12, 201))
    drawn = bars(report.bottleneck)
    truth = hook_shapes(model, torch.randn(2, 12, 201))
    conv7 = next(b for b in drawn if b.layer == "encoder.local_net.7")
    assert conv7.per_sample == math.prod(truth["encoder.local_net.7"][1][0][1:]) == 512 * 12
    assert conv7.per_position == 512
    texts = _texts(hourglass_svg(report.bottleneck))
    assert "bottleneck: 3,072 per sample, 256 per step" in texts  # 12 steps × 256
    assert "per step" in texts


def test_files(tmp_path: Path) -> None:
    report = aelab.inspect(seeds.AE(), (1, 784))
    png = render_hourglass(report.bottleneck, tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = render_hourglass(report.bottleneck, tmp_path / "h.svg").read_text()
    assert "<svg" in svg and "Date" not in svg
    assert svg == render_hourglass(report.bottleneck, tmp_path / "h2.svg").read_text()  # reproducible
    with pytest.raises(UsageError, match="cannot write"):
        render_hourglass(report.bottleneck, tmp_path / "nowhere" / "h.png")
    with pytest.raises(UsageError, match="png, svg, pdf"):
        render_hourglass(report.bottleneck, tmp_path / "h.bmp")
    with pytest.raises(UsageError, match="no bottleneck"):
        render_hourglass(None, tmp_path / "h.png")


def test_dollar_names_are_not_mathtext() -> None:
    model = torch.nn.Sequential()
    model.add_module("$x^{", torch.nn.Linear(8, 2))
    model.add_module("dec$", torch.nn.Linear(2, 8))
    report = aelab.inspect(model, (1, 8))
    if report.bottleneck is None:
        pytest.skip("the bottleneck analysis found no path here")
    svg = hourglass_svg(report.bottleneck, "$weird$ model")
    assert "$weird$ model" in _texts(svg)
