"""The data-flow drawing: every layer a node, shapes on the edges as real forward hooks see them,
modules as clusters, encoder/decoder colours and the latent marked; escaping; no-dot error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import seeds
import torch
from torch import nn

import aelab
from aelab.errors import UsageError
from aelab.render.graph import DECODER_FILL, ENCODER_FILL, LATENT_COLOR, NO_DOT, data_flow, render_graph
from truth import hook_shapes


def _edges(source: str) -> list[tuple[str, str, str]]:
    return re.findall(r"\t(\w+) -> (\w+) \[label=\"([^\"]*)\"", source)


def _node_ids(source: str) -> dict[str, str]:
    """DOT node id -> the first line of its label."""
    return {m.group(1): m.group(2) for m in re.finditer(r"\t(\w+) \[label=\"([^\"\\]*)", source)}


def test_ae_edges_carry_the_real_shapes() -> None:
    model = seeds.AE(784, 10, 42)
    report = aelab.inspect(model, (3, 784))
    source = data_flow(report.trace, report.bottleneck, "AE").source
    truth = hook_shapes(model, torch.randn(3, 784))
    names = _node_ids(source)
    edges = _edges(source)
    # a chain input -> 6 layers -> output, each edge labelled with the shape the producer really returned
    assert len(edges) == 7
    layers = ["encoder.0", "encoder.1", "encoder.2", "decoder.0", "decoder.1", "decoder.2"]
    for (src, _dst, label), layer in zip(edges[1:], layers):
        assert names[src] == layer.rsplit(".", 1)[-1]
        assert label == "×".join(map(str, truth[layer][1][0]))
    assert edges[0][2] == "3×784" and edges[-1][2] == "3×784"


def test_clusters_roles_and_latent() -> None:
    report = aelab.inspect(seeds.AE(784, 10, 42), (1, 784))
    source = data_flow(report.trace, report.bottleneck, "AE").source
    assert 'label="encoder (Sequential)"' in source and 'label="decoder (Sequential)"' in source
    assert source.count(f'fillcolor="{ENCODER_FILL}"') == 3  # encoder.0, .1, .2
    assert source.count(f'fillcolor="{DECODER_FILL}"') == 3
    latent = [line for line in source.splitlines() if f'color="{LATENT_COLOR}"' in line]
    assert len(latent) == 1 and "latent (bottleneck)" in latent[0] and latent[0].strip().startswith("L")
    assert report.bottleneck.layer == "encoder.2"  # the red node is the bottleneck analysis's latent


def test_seq_vae_graph_follows_the_sample() -> None:
    report = aelab.inspect(seeds.SeqVAE(), (2, 12, 201))
    source = data_flow(report.trace, report.bottleneck).source
    node = {c.name: f"L{c.cid}" for c in report.trace.calls}
    edges = _edges(source)
    assert (node["encoder.rsample"], node["decoder.fc.0"], "2×12×256") in edges  # the sample feeds the decoder
    assert (node["encoder.local_net.11"], node["encoder.chunk"], "2×12×512") in edges


def test_files_and_formats(tmp_path: Path) -> None:
    report = aelab.inspect(seeds.NeuralNetwork(), (1, 1, 28, 28))
    svg = render_graph(report, tmp_path / "g.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "linear_relu_stack (Sequential)" in svg
    assert (render_graph(report.trace, tmp_path / "g.png")).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UsageError, match="must be one of svg, png, pdf"):
        render_graph(report, tmp_path / "g.jpg")
    with pytest.raises(UsageError, match="cannot write"):
        render_graph(report, tmp_path / "missing" / "g.svg")


def test_user_names_stay_text(tmp_path: Path) -> None:
    model = nn.Sequential()
    model.add_module("<script>alert(1)</script>", nn.Linear(4, 4))
    model.add_module('q"uote\\', nn.ReLU())
    report = aelab.inspect(model, (1, 4))
    svg = render_graph(report, tmp_path / "x.svg").read_text()
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "q&quot;uote\\" in svg or 'q"uote\\' in svg


def test_without_dot(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    report = aelab.inspect(seeds.AE(), (1, 784))
    with pytest.raises(UsageError) as info:
        render_graph(report, tmp_path / "g.svg")
    assert str(info.value) == NO_DOT == "Graphviz's dot is not installed: apt-get install graphviz"
