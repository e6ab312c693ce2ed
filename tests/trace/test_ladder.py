"""The tracing ladder on real third-party code (transformers' own classes, tiny configs).

Each failure mode of issue 10 is reproduced and checked against an independent truth: the unique-storage
parameter sum of a real model, FlopCounterMode on a real CPU run at the same batch, global RNG unchanged.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import torch
from torch import nn

import aelab
from aelab.trace.inputs import InputSpec
from aelab.trace.materialize import Materializer
from aelab.trace.recorder import run
from truth import CPU_ATTENTION, flop_counter, unique_storage_params

transformers = pytest.importorskip("transformers")
IDS = InputSpec((2, 12), torch.long)  # batch 2: a batch-1 fallback would show


def _llama(**kw: Any) -> nn.Module:
    cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=97, max_position_embeddings=64, **kw)
    return transformers.LlamaForCausalLM(cfg)


def _gpt2(**kw: Any) -> nn.Module:
    cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=97, n_positions=64, bos_token_id=0,
                                  eos_token_id=0, **kw)
    return transformers.GPT2LMHeadModel(cfg)


def _mixtral(**kw: Any) -> nn.Module:
    cfg = transformers.MixtralConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
                                     num_key_value_heads=2, vocab_size=97, num_local_experts=4, num_experts_per_tok=2,
                                     max_position_embeddings=64, **kw)
    return transformers.MixtralForCausalLM(cfg)


def _deberta() -> nn.Module:
    cfg = transformers.DebertaV2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, vocab_size=97, max_position_embeddings=64)
    return transformers.DebertaV2Model(cfg)


def _wav2vec2() -> nn.Module:
    cfg = transformers.Wav2Vec2Config(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3),
                                      num_feat_extract_layers=2, num_conv_pos_embeddings=8,
                                      num_conv_pos_embedding_groups=2, layerdrop=0.5, mask_time_prob=0.0)
    return transformers.Wav2Vec2Model(cfg)


def _real(factory: Any, **kw: Any) -> nn.Module:
    """The truth's copy: the model as built, so its sdpa takes the kernel a CPU run picks (the fused
    `_scaled_dot_product_flash_attention_for_cpu`, counted with `CPU_ATTENTION`), as aelab's meta run does."""
    torch.manual_seed(0)
    return factory(**kw)


def _meta(factory: Any, **kw: Any) -> nn.Module:
    with torch.device("meta"):
        return factory(**kw)


def _rng() -> tuple[Any, ...]:
    return torch.get_rng_state(), random.getstate()


def _flops(report: Any) -> tuple[int, int]:
    return report.summary.totals.flops_forward, report.summary.totals.flops_backward


@pytest.mark.parametrize("factory,kw,kwinputs", [
    (_llama, {"use_cache": False}, {}),  # find_packed_sequence_indices: `.all()` on position ids
    (_gpt2, {}, {"attention_mask": InputSpec((2, 12), torch.long)}),  # the mask's `.all()`
])
def test_input_derived_reads_are_answered_on_meta_at_the_users_batch(factory: Any, kw: dict[str, Any],
                                                                     kwinputs: dict[str, Any]) -> None:
    meta = _meta(factory, **kw)
    before = _rng()
    report = aelab.inspect(meta, IDS, **kwinputs)
    assert _rng()[0].equal(before[0]) and _rng()[1] == before[1]
    assert report.trace.execution == "meta" and report.trace.error is None
    assert report.trace.inputs[0].shape == (2, 12)
    assert any("answered exactly beside the meta run" in n for n in report.notes)
    assert not any("real forward" in n for n in report.notes)
    real = _real(factory, **kw)
    assert report.summary.totals.params == unique_storage_params(real)
    real_kw = {k: torch.ones(2, 12, dtype=torch.long) for k in kwinputs}
    assert _flops(report) == _flop_counter_kw(real, torch.zeros(2, 12, dtype=torch.long), real_kw)


def _flop_counter_kw(model: nn.Module, ids: torch.Tensor, kw: dict[str, torch.Tensor]) -> tuple[int, int]:
    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, x: torch.Tensor) -> Any:
            return self.m(x, **kw)

    return flop_counter(Wrap(), ids, mapping=CPU_ATTENTION)


def test_full_shape_gpt2_tie_survives_on_meta_and_through_a_real_replay() -> None:
    class Reads(nn.Module):  # reads a value computed from the weights: forces the real rung
        def __init__(self) -> None:
            super().__init__()
            self.lm = _gpt2()

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            logits = self.lm(ids).logits
            return logits * 2 if logits.sum().item() > 1e30 else logits

    with torch.device("meta"):
        meta = Reads()
    report = aelab.inspect(meta, IDS)
    assert report.trace.execution == "meta" and report.trace.error is None
    assert any("replayed its" in n for n in report.notes)
    torch.manual_seed(0)
    real = Reads()
    assert report.summary.totals.params == unique_storage_params(real)
    assert _flops(report) == flop_counter(real, torch.zeros(2, 12, dtype=torch.long), mapping=CPU_ATTENTION)


def test_materialised_ties_share_values_and_buffers_are_real() -> None:
    gpt2 = _meta(_gpt2)
    mat = Materializer(gpt2)
    assert mat.value(gpt2.lm_head.weight).equal(mat.value(gpt2.transformer.wte.weight))
    deberta = _meta(_deberta)
    ids = Materializer(deberta).buffer_value(deberta.embeddings.position_ids)
    assert ids is not None and ids.equal(torch.arange(64).expand(1, -1))
    llama = _meta(_llama)
    inv = Materializer(llama).buffer_value(llama.model.rotary_emb.inv_freq)
    assert inv is not None and torch.allclose(inv, _llama().model.rotary_emb.inv_freq)


def test_deberta_v2_on_meta_is_not_called_wrong() -> None:
    report = aelab.inspect(_meta(_deberta), IDS)
    assert report.trace.error is None and report.trace.execution == "meta"
    torch.manual_seed(0)
    real = _deberta()
    assert report.summary.totals.params == unique_storage_params(real)
    assert _flops(report) == flop_counter(real, torch.zeros(2, 12, dtype=torch.long), mapping=CPU_ATTENTION)


def test_a_stricter_meta_kernel_is_run_on_cpu_not_blamed_on_the_model() -> None:
    report = aelab.inspect(_meta(_mixtral), IDS)  # grouped_mm's meta kernel wants bf16; the CPU one runs fp32
    assert report.trace.error is None
    assert any("aten._grouped_mm refused" in n and "CPU kernel runs it" in n for n in report.notes)
    assert report.trace.outputs[0].shape == (2, 12, 97)


def test_routing_read_from_the_weights_is_replayed_at_the_users_batch() -> None:
    # eager experts: `nonzero` of the router's choice, a value of the weights; total FLOPs do not depend on it
    meta = _meta(_mixtral, experts_implementation="eager")
    report = aelab.inspect(meta, IDS)
    assert report.trace.error is None and report.trace.execution == "meta"
    assert any("replayed its" in n for n in report.notes)
    real = _real(_mixtral, experts_implementation="eager")
    assert _flops(report) == flop_counter(real, torch.zeros(2, 12, dtype=torch.long), mapping=CPU_ATTENTION)


def test_layerdrop_is_reported_as_one_random_draw_and_eval_makes_it_exact() -> None:
    meta = _meta(_wav2vec2)  # its masked_spec_embed is a legacy torch.Tensor: on CPU beside meta weights
    before = _rng()
    train = aelab.inspect(meta, (2, 400))
    assert train.trace.error is None
    assert any("one random draw" in n and "--eval" in n for n in train.notes)
    evaluated = aelab.inspect(meta, (2, 400), eval_mode=True)
    assert not any("random draw" in n for n in evaluated.notes)
    assert meta.training and _rng()[0].equal(before[0]) and _rng()[1] == before[1]
    real = _real(_wav2vec2).eval()
    assert _flops(evaluated) == flop_counter(real, torch.randn(2, 400), mapping=CPU_ATTENTION)


def test_meta_inputs_work_for_meta_and_real_models() -> None:
    ids = torch.empty(2, 12, dtype=torch.long, device="meta")
    on_meta = aelab.inspect(_meta(_llama), ids)
    on_cpu = aelab.inspect(_llama(), ids)
    assert on_meta.trace.error is None and on_cpu.trace.error is None
    assert on_meta.trace.inputs[0].shape == on_cpu.trace.inputs[0].shape == (2, 12)
    assert _flops(on_meta) == _flops(on_cpu)  # meta runs the attention kernel the CPU model runs


def test_cost_follows_the_same_ladder_at_the_users_batch() -> None:
    from aelab.costing.cost import cost

    meta = _meta(_gpt2, use_cache=False)  # its mask code reads `.all()` of an input-derived tensor
    result = cost(meta, torch.empty(2, 12, dtype=torch.long, device="meta"), freeze=["transformer.h.0"])
    assert any("answered exactly beside the meta run" in n for n in result.notes)
    real = _real(_gpt2, use_cache=False)
    fwd, bwd = flop_counter(real, torch.zeros(2, 12, dtype=torch.long), mapping=CPU_ATTENTION)
    assert (result.flops_forward, result.flops_backward_all) == (fwd, bwd)
    assert result.params_total == unique_storage_params(real)


MODELS = "tests/trace/ladder_models.py"


def test_a_constructor_that_refuses_meta_is_built_on_cpu_and_says_so(cli: Any) -> None:
    out = cli("inspect", f"{MODELS}:RefusesMeta", "--input", "2x4", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["totals"]["params"] == 15
    assert any("refuses the meta device" in n and "built on CPU" in n for n in data["notes"])


def test_a_buffer_computed_in_the_constructor_is_known_on_meta(cli: Any) -> None:
    out = cli("inspect", f"{MODELS}:SinusoidalReads", "--input", "2x16x8", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["execution"] == "meta"
    assert any("answered exactly beside the meta run" in n for n in data["notes"])
    assert not any("real forward" in n for n in data["notes"])


def test_python_code_refusing_meta_is_retried_for_real_and_a_wrong_model_still_exits_1(cli: Any) -> None:
    ok = cli("inspect", f"{MODELS}:PythonCheck", "--input", "2x4", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["error"] is None and data["totals"]["flops_forward"] == 2 * 2 * 4 * 4
    assert any("but a real forward runs" in n for n in data["notes"])
    wrong = cli("inspect", f"{MODELS}:Wrong", "--input", "2x4")
    assert wrong.returncode == 1


def test_a_real_copy_of_a_meta_model_keeps_ties_dtypes_and_buffers() -> None:
    from aelab.trace.materialize import real_copy as real_model

    meta = _meta(_gpt2).to(torch.float64)
    copy = real_model(meta, torch.device("cpu"))
    assert copy.lm_head.weight is copy.transformer.wte.weight
    assert unique_storage_params(copy) == unique_storage_params(_gpt2())
    assert {p.dtype for p in copy.parameters()} == {torch.float64}
    assert all(t.device.type == "meta" for t in meta.parameters())  # the model itself is untouched
    deberta = real_model(_meta(_deberta), torch.device("cpu"))
    assert deberta.embeddings.position_ids.equal(torch.arange(64).expand(1, -1))


def test_the_backward_graph_of_cost_graph_answers_input_derived_reads_too() -> None:
    from aelab.costing.cost import backward_graph

    meta = _meta(_gpt2, use_cache=False)
    flags = {n: not n.startswith("transformer.h.0") for n, _ in meta.named_parameters()}
    graph = backward_graph(meta, [IDS], flags)
    assert any(node.param == "lm_head.weight" or node.param == "transformer.wte.weight" for node in graph.nodes)
    assert any(not node.runs for node in graph.nodes)


class MaskedEmbed(nn.Module):
    """Wav2Vec2's SpecAugment in small: masked positions take a learned vector, then a boolean-mask gather."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.embed = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        mask = torch.tensor([[True, False, True], [False, True, False]])
        h[mask] = self.embed.to(h.dtype)
        return h[mask].sum(-1)


def test_a_recorded_real_forward_runs_its_value_reads_for_real() -> None:
    # An index by a boolean mask reads values; in a real run every tensor has them, and the shadow's answer came
    # back as a meta stand-in (there was no meta input to take a device from): the backward of the masked
    # assignment got a meta gradient ("CopySlices returned an invalid gradient ... got meta").
    model, x = MaskedEmbed(), torch.randn(2, 3, 4)
    trace = run(model, [x], {}, execution="real", backward=True)
    assert trace.error is None and trace.backward_ran
    assert [list(o.shape) for o in trace.outputs] == [list(model(x).shape)]
