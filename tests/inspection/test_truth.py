"""aelab inspect against independent truths: FlopCounterMode, storage sums, real forward hooks."""

from __future__ import annotations

import pytest
import seeds
import torch
import zoo
from torch import nn

import aelab
from aelab.trace.inputs import parse_shape
from truth import aelab_flops_torch_counts, flop_counter, hook_shapes, unique_storage_params


def _real_input(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape)


@pytest.mark.parametrize("name", sorted(seeds.SEED_MODELS))
def test_seed_models_match_flop_counter_and_storage_sum(name: str) -> None:
    torch.manual_seed(0)
    cls, shape = seeds.SEED_MODELS[name]
    model = cls()
    report = aelab.inspect(model, shape)
    totals = report.summary.totals
    assert report.trace.error is None
    assert totals.params == unique_storage_params(model)
    fwd, bwd = flop_counter(model, _real_input(shape))
    assert totals.flops_forward == fwd == aelab_flops_torch_counts(report.trace, "forward")
    assert totals.flops_backward == bwd == aelab_flops_torch_counts(report.trace, "backward")


@pytest.mark.parametrize("name", sorted(seeds.SEED_MODELS))
def test_row_shapes_equal_forward_hooks_on_real_tensors(name: str) -> None:
    cls, shape = seeds.SEED_MODELS[name]
    model = cls()
    report = aelab.inspect(model, shape)
    truth = hook_shapes(model, _real_input(shape))
    rows = {r.name: r for r in report.summary.rows if r.kind == "module"}
    assert set(truth) <= set(rows), set(truth) - set(rows)
    for module_name, (ins, outs) in truth.items():
        assert rows[module_name].input_shapes == ins, module_name
        assert rows[module_name].output_shapes == outs, module_name


def test_seed_vae_shows_functional_rows_sample_and_transposes() -> None:
    report = aelab.inspect(seeds.SeqVAE(), (4, 50, 201))
    rows = {r.name: r for r in report.summary.rows}
    assert rows["encoder.rsample"].type == "Normal.rsample"
    assert rows["encoder.rsample"].output_shapes == [(4, 50, 256)]
    assert rows["encoder.local_net.0"].output_shapes == [(4, 201, 50)]  # the transpose into channels-first
    assert rows["encoder.local_net.11"].output_shapes == [(4, 50, 512)]
    assert rows["encoder.chunk"].output_shapes == [(4, 50, 256), (4, 50, 256)]
    assert rows["decoder.fc.12"].output_shapes == [(4, 50, 201)]
    # per-layer FLOPs, derived by hand: CausalConv1d(201 -> 256, k=3) on 50 steps, batch 4, bias excluded
    assert rows["encoder.local_net.1"].flops == 2 * 4 * 256 * 50 * 201 * 3


def test_functional_ops_are_rows_with_their_work() -> None:
    report = aelab.inspect(seeds.Network(), (3, 784))
    rows = {r.name: r for r in report.summary.rows}
    assert rows["sigmoid"].output_shapes == [(3, 256)] and rows["sigmoid"].flops_other == 3 * 256
    assert rows["softmax"].flops_other == 5 * 3 * 10  # the documented softmax convention
    assert rows["hidden"].flops == 2 * 3 * 784 * 256  # y = x Wᵀ: 2 FLOPs per multiply-add, bias not counted


def test_matmul_operator_and_view_are_seen() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(16, 8))
            self.proj = nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = (x.view(x.size(0), -1) @ self.w).relu()
            return self.proj(h)

    report = aelab.inspect(Functional(), (5, 4, 4))
    names = [r.name for r in report.summary.rows]
    assert names == ["view", "matmul", "relu", "proj"]  # `x @ W` reaches torch as Tensor.matmul
    assert "matmul" in report.summary.rows[1].type
    assert report.summary.rows[1].flops == 2 * 5 * 16 * 8
    fwd, _ = flop_counter(Functional(), torch.randn(5, 4, 4))
    assert report.summary.totals.flops_forward == fwd


def test_resnet50_params_and_flops() -> None:
    with torch.device("meta"):
        model = zoo.ResNet50()
    report = aelab.inspect(model, (1, 3, 224, 224), backward=False)
    totals = report.summary.totals
    assert totals.params == 25_557_032
    assert totals.flops_forward == 8_178_368_512  # 4.09 GMACs (torchvision's figure) x 2
    assert round(totals.flops_forward / 2 / 1e9, 2) == 4.09
    # elementwise / normalisation / pooling are reported beside, not inside
    cats = totals.flops_forward_by_category
    assert cats["normalization"] > 0 and cats["elementwise"] > 0 and cats["pooling"] > 0
    assert totals.flops_forward_other == sum(v for k, v in cats.items() if k != "matmul")
    assert totals.not_counted == {}


def test_gpt2_small_on_meta_counts_the_tied_embedding_once() -> None:
    transformers = pytest.importorskip("transformers")
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    report = aelab.inspect(model, parse_shape("1x128:long"), backward=False)
    totals = report.summary.totals
    assert report.trace.execution == "meta"
    assert totals.params == 124_439_808
    assert totals.tied_params == 50257 * 768  # lm_head.weight is transformer.wte.weight
    # the LM head alone: 2 x 128 tokens x 768 x 50257
    head = next(r for r in report.summary.rows if r.name == "lm_head")
    assert head.flops == 2 * 128 * 768 * 50257


def test_tiny_transformer_tied_and_attention_match_flop_counter() -> None:
    torch.manual_seed(0)
    model = zoo.TinyTransformer()
    tokens = torch.randint(0, 50, (2, 7))
    report = aelab.inspect(model, tokens)
    assert report.summary.totals.params == unique_storage_params(model)
    fwd, bwd = flop_counter(model, tokens)
    assert aelab_flops_torch_counts(report.trace, "forward") == fwd
    assert aelab_flops_torch_counts(report.trace, "backward") == bwd


def test_meta_and_fake_execution_agree() -> None:
    real = seeds.SeqVAE()
    with torch.device("meta"):
        meta = seeds.SeqVAE()
    a = aelab.inspect(real, (2, 30, 201))
    b = aelab.inspect(meta, (2, 30, 201))
    assert (a.trace.execution, b.trace.execution) == ("fake", "meta")
    assert a.to_dict()["layers"] == b.to_dict()["layers"]
    assert a.summary.totals.flops_backward == b.summary.totals.flops_backward


def test_a_value_read_from_the_weights_replays_a_real_run_at_the_users_batch_and_says_so() -> None:
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc(x)
            if y.sum().item() > 1e9:  # reads a value
                return y * 2
            return y

    model = Gate()
    report = aelab.inspect(model, (8, 6))
    assert report.trace.execution == "fake"
    assert any("replayed its 1 value reads" in n for n in report.notes)
    assert report.summary.rows[0].output_shapes == [(8, 6)]
    assert (report.summary.totals.flops_forward, report.summary.totals.flops_backward) == \
        flop_counter(model, torch.randn(8, 6))


def test_backward_not_run_is_unknown_not_zero_and_all_frozen_is_a_real_zero() -> None:
    model = seeds.AE()
    skipped = aelab.inspect(model, (2, 784), backward=False)
    assert skipped.summary.totals.flops_backward is None
    assert all(r.flops_backward is None for r in skipped.summary.rows)
    assert skipped.to_dict()["totals"]["flops_backward"] is None
    for p in model.parameters():
        p.requires_grad_(False)
    frozen = aelab.inspect(model, (2, 784))
    _, truth = flop_counter(model, torch.randn(2, 784))  # FlopCounterMode: no trainable leaf, no backward
    assert frozen.summary.totals.flops_backward == truth == 0
