"""Backward cost of a trainable subset against FlopCounterMode run on the same requires_grad pattern.

Truths: FlopCounterMode around a real `torch.autograd.grad` with the same flags (totals); the same
layer run alone, with FlopCounterMode around the gradient w.r.t. its input only and w.r.t. its
parameters only (the per-layer split); autograd's own graph built with the pattern (the graph marks).
"""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import seeds
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from aelab.costing.cost import backward_graph, cost
from aelab.costing.trainable import choose_trainable, matches, requires_grad_pattern
from aelab.errors import ModelError, UsageError
from aelab.trace.autograd_graph import walk
from truth import flop_counter


def fcm_backward(model: nn.Module, shape: tuple[int, ...], flags: dict[str, bool]) -> tuple[int, int]:
    """(forward, backward) FlopCounterMode FLOPs of a real copy with exactly these requires_grad flags."""
    real = copy.deepcopy(model)
    for name, p in real.named_parameters():
        p.requires_grad_(flags[name])
    torch.manual_seed(0)
    return flop_counter(real, torch.randn(shape))


def first_two(name: str) -> bool:
    return name.startswith(("linear_relu_stack.0.", "linear_relu_stack.2."))


def test_seed_mlp_matches_flop_counter_and_anchors() -> None:
    model = seeds.NeuralNetwork()
    names = [n for n, _ in model.named_parameters()]
    cases = {
        "first two": (["linear_relu_stack.0", "linear_relu_stack.2"], {n: first_two(n) for n in names}, "119.1"),
        "all": ([], dict.fromkeys(names, True), "119.8"),
        "last": (["linear_relu_stack.4"], {n: n.startswith("linear_relu_stack.4.") for n in names}, "0.66"),
    }
    for label, (globs, flags, anchor) in cases.items():
        result = cost(model, (64, 1, 28, 28), trainable=globs)
        fwd, bwd = fcm_backward(model, (64, 1, 28, 28), flags)
        assert result.flops_backward == bwd, label
        assert result.flops_forward == fwd, label
        assert result.flops_backward_all == fcm_backward(model, (64, 1, 28, 28), dict.fromkeys(names, True))[1]
        decimals = len(anchor.split(".")[1])
        assert f"{result.flops_backward / 1e6:.{decimals}f}" == anchor, label  # ANCHORS.md, MFLOP as printed there
        assert sum(lc.flops_backward for lc in result.layers) + result.unattributed == result.flops_backward


def test_seed_mlp_split_by_hand() -> None:
    """Linear(i, o) at batch N: grad_x = grad_y·W and grad_W = grad_yᵀ·x are each 2·N·i·o."""
    result = cost(seeds.NeuralNetwork(), (64, 1, 28, 28), trainable=["linear_relu_stack.0", "linear_relu_stack.2"])
    rows = {lc.name: lc for lc in result.layers}
    n = 64
    assert (rows["linear_relu_stack.0"].flops_backward_input, rows["linear_relu_stack.0"].flops_backward_weight) \
        == (0, 2 * n * 784 * 512)  # the input needs no gradient
    assert (rows["linear_relu_stack.2"].flops_backward_input, rows["linear_relu_stack.2"].flops_backward_weight) \
        == (2 * n * 512 * 512, 2 * n * 512 * 512)
    last = rows["linear_relu_stack.4"]
    assert (last.flops_backward_input, last.flops_backward_weight, last.skipped_weight) == \
        (2 * n * 512 * 10, 0, 2 * n * 512 * 10)
    assert [rows[k].status for k in ("linear_relu_stack.0", "linear_relu_stack.2", "linear_relu_stack.4")] == \
        ["trains", "trains", "passes"]
    words = " ".join(result.explanation)
    assert "linear_relu_stack.4 is frozen but still propagates gradients to its input" in words
    assert "skips its own weight gradients" in words


def test_seed_vae_encoder_frozen() -> None:
    model = seeds.SeqVAE()
    flags = {n: not n.startswith("encoder.") for n, _ in model.named_parameters()}
    result = cost(model, (4, 50, 201), freeze=["encoder"])
    assert result.flops_backward == fcm_backward(model, (4, 50, 201), flags)[1]
    names = [n for n, _ in model.named_parameters()]
    assert result.flops_backward_all == fcm_backward(model, (4, 50, 201), dict.fromkeys(names, True))[1]
    rows = {lc.name: lc for lc in result.layers}
    assert all(lc.status == "skipped" for name, lc in rows.items() if name.startswith("encoder.") and lc.params)
    first = rows["decoder.fc.1"]  # its input is the sampled latent, which needs no gradient now
    assert first.flops_backward_input == 0 and first.skipped_input > 0 and first.flops_backward_weight > 0
    assert result.saved_bytes < result.saved_bytes_all
    assert any("skipped entirely" in s for s in result.explanation)


# --- random stacks: totals vs FlopCounterMode, per-layer split vs the layer alone ---------------------------
def _layer(kind: str, c_in: int, c_out: int, k: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(c_in, c_out)
    if kind == "conv":
        return nn.Conv2d(c_in, c_out, k, padding=k // 2)
    return nn.ConvTranspose2d(c_in, c_out, k, stride=2, padding=k // 2, output_padding=1)


def _stack(kinds: list[str], widths: list[int], k: int, bn: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, kind in enumerate(kinds):
        layers.append(_layer(kind, widths[i], widths[i + 1], k))
        if bn and kind != "linear":
            layers.append(nn.BatchNorm2d(widths[i + 1]))
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def _isolated_split(layer: nn.Module, x_shape: tuple[int, ...], need_input: bool) -> tuple[int, int]:
    """FlopCounterMode on the layer alone: (grad w.r.t. its input, grad w.r.t. its trainable parameters)."""
    real = copy.deepcopy(layer)
    x = torch.randn(x_shape, requires_grad=True)
    params = [p for p in real.parameters() if p.requires_grad]
    parts = []
    for wrt in ([x] if need_input else [], params):
        if not wrt:
            parts.append(0)
            continue
        y = real(x)
        with FlopCounterMode(display=False) as fc:
            torch.autograd.grad(y.sum(), wrt)
        parts.append(fc.get_total_flops())
    return parts[0], parts[1]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_stacks(data: st.DataObject) -> None:
    dense = data.draw(st.booleans(), label="dense")
    depth = data.draw(st.integers(2, 4), label="depth")
    kinds = ["linear"] * depth if dense else data.draw(
        st.lists(st.sampled_from(["conv", "convT"]), min_size=depth, max_size=depth), label="kinds")
    widths = data.draw(st.lists(st.integers(1, 12), min_size=depth + 1, max_size=depth + 1), label="widths")
    k = data.draw(st.sampled_from([1, 3]), label="k")
    batch = data.draw(st.integers(1, 3), label="batch")
    model = _stack(kinds, widths, k, bn=data.draw(st.booleans(), label="bn"))
    names = [n for n, _ in model.named_parameters()]
    flags = {n: data.draw(st.booleans(), label=n) for n in names}
    shape = (batch, widths[0]) if dense else (batch, widths[0], 5, 4)
    trainable = [n for n, f in flags.items() if f] or ["__nothing__"]
    if trainable == ["__nothing__"]:
        with pytest.raises(UsageError):
            cost(model, shape, trainable=trainable)
        return
    result = cost(model, shape, trainable=trainable)
    assert result.flops_backward == fcm_backward(model, shape, flags)[1]
    assert result.flops_backward_all == fcm_backward(model, shape, dict.fromkeys(names, True))[1]
    # per layer: the layer alone, asked for exactly the gradients the pattern needs from it
    x_shape, earlier_trains = shape, False
    rows = {lc.name: lc for lc in result.layers}
    for idx, layer in enumerate(model):
        own = [n for n in names if n.startswith(f"{idx}.")]
        with torch.no_grad():
            y_shape = tuple(layer(torch.zeros(x_shape)).shape)
        if own:
            probe = copy.deepcopy(layer)
            for n, p in probe.named_parameters():
                p.requires_grad_(flags[f"{idx}.{n}"])
            want_in, want_w = _isolated_split(probe, x_shape, earlier_trains)
            row = rows[str(idx)]
            assert (row.flops_backward_input, row.flops_backward_weight) == (want_in, want_w), (idx, kinds)
        earlier_trains = earlier_trains or any(flags[n] for n in own)
        x_shape = y_shape


# --- choosing parameters -----------------------------------------------------------------------------------
def test_globs_match_parameters_and_owning_modules() -> None:
    assert matches("linear_relu_stack.0.weight", "linear_relu_stack.0")
    assert matches("linear_relu_stack.0.bias", "linear_relu_stack.0")
    assert not matches("linear_relu_stack.0.weight", "linear_relu_stack.")
    assert matches("encoder.local_net.1.weight", "encoder")
    assert matches("decoder.fc.4.bias", "*.bias")
    assert not matches("linear_relu_stack.10.weight", "linear_relu_stack.1")
    flags = choose_trainable({"a.0.weight": True, "a.0.bias": True, "b.weight": False},
                             trainable=["a.*"], freeze=["*.bias"])
    assert flags == {"a.0.weight": True, "a.0.bias": False, "b.weight": False}
    assert choose_trainable({"a.weight": False, "b.weight": True}, freeze=["b"]) == {"a.weight": False,
                                                                                       "b.weight": False}
    with pytest.raises(UsageError, match="--trainable 'nope' matches no parameter"):
        choose_trainable({"a.weight": True}, trainable=["nope"])
    with pytest.raises(UsageError, match="--freeze"):
        choose_trainable({"a.weight": True}, freeze=["b*"])


def test_model_comes_out_unchanged() -> None:
    torch.manual_seed(0)
    model = seeds.SeqVAE()
    model.decoder.eval()
    for p in model.encoder.local_net[1].parameters():
        p.requires_grad_(False)
    before_flags = [p.requires_grad for p in model.parameters()]
    before_modes = [m.training for m in model.modules()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cost(model, (2, 12, 201), trainable=["decoder.fc.4"], measure=True, device="cpu", repeats=2, warmup=1)
    backward_graph(model, [(2, 12, 201)], {n: n.startswith("decoder") for n, _ in model.named_parameters()})
    assert [p.requires_grad for p in model.parameters()] == before_flags
    assert [m.training for m in model.modules()] == before_modes
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm stats untouched
    assert len(nn.modules.module._global_forward_hooks) == 0


def test_restores_flags_when_the_forward_fails() -> None:
    broken = __import__("broken").ConvNet2dWrong()
    broken.conv.weight.requires_grad_(False)
    with pytest.raises(ModelError, match="aelab doctor"):  # the model is wrong: exit 1
        cost(broken, (1, 1, 28, 28), trainable=["fc"])
    assert [p.requires_grad for p in broken.parameters()] == [False, True, True, True]
    with pytest.raises(RuntimeError), requires_grad_pattern(broken, {"conv.bias": False}):
        raise RuntimeError("boom")
    assert broken.conv.bias.requires_grad


class TiedLM(nn.Module):
    """An embedding and an output layer sharing one weight (as GPT-2 does)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.mix = nn.Linear(16, 16)
        self.lm_head = nn.Linear(16, 50, bias=False)
        self.lm_head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(torch.tanh(self.mix(self.embed(ids))))


def test_tied_weights_answer_to_either_name() -> None:
    from aelab.trace.inputs import InputSpec

    model = TiedLM()
    ids = InputSpec((4, 7), torch.long)
    frozen = cost(model, ids, freeze=["lm_head"])  # the other name of embed.weight
    assert frozen.frozen == ["embed.weight"] and model.embed.weight.requires_grad
    real = copy.deepcopy(model)
    real.embed.weight.requires_grad_(False)
    out = real(torch.zeros(4, 7, dtype=torch.long))
    with FlopCounterMode(display=False) as fc:
        torch.autograd.grad(out.sum(), [p for p in real.parameters() if p.requires_grad])
    assert frozen.flops_backward == fc.get_total_flops()
    assert frozen.flops_backward < frozen.flops_backward_all


# --- the backward graph --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "shape", "frozen"), [
    ("NeuralNetwork", (8, 1, 28, 28), ("linear_relu_stack.4",)),
    ("NeuralNetwork", (8, 1, 28, 28), ("linear_relu_stack.0", "linear_relu_stack.2")),
    ("SeqVAE", (2, 10, 201), ("encoder",)),
    ("AE", (3, 784), ("decoder.0", "encoder.2.bias")),
])
def test_graph_marks_equal_autograds_own_pattern_graph(name: str, shape: tuple[int, ...],
                                                       frozen: tuple[str, ...]) -> None:
    """Nodes marked as running == the nodes autograd itself creates when the pattern is set for real."""
    with torch.device("meta"):
        model = seeds.SEED_MODELS[name][0]()
    flags = choose_trainable({n: True for n, _ in model.named_parameters()}, freeze=frozen)
    marked = backward_graph(model, [shape], flags)
    real = walk(model, [torch.empty(shape, device="meta")], {}, flags)
    running = Counter((n.module, n.label, n.param) for n in marked.nodes if n.runs)
    created = Counter((n.module, n.label, n.param) for n in real.nodes)
    assert running == created
    assert len(marked.nodes) > len(real.nodes)  # something was skipped, and it is in the drawing, greyed


def test_graph_of_a_deep_model() -> None:
    """Thousands of autograd nodes in a chain (deeper than Python's recursion limit) are walked and marked."""
    depth = 1500
    with torch.device("meta"):
        model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(depth)])
    flags = {n: n.startswith("3.") for n, _ in model.named_parameters()}
    graph = backward_graph(model, [(2, 4)], flags)
    runs = Counter(n.label for n in graph.nodes if n.runs)
    # layers 3..depth-1 pass the gradient back (AddmmBackward0); layer 3's weight and bias get one (Wᵀ's TBackward0)
    assert runs == {"AddmmBackward0": depth - 3, "AccumulateGrad": 2, "TBackward0": 1}
    assert sum(1 for n in graph.nodes if n.param is not None) == 2 * depth
