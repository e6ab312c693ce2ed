"""A tensor a module keeps as a plain attribute (no parameter, no buffer: `self.count = torch.Tensor([1])`) is the
user's: every run puts a stand-in of its own in its place (fake, meta or a real copy) whose value is the user's
tensor's, looked up at the first read, and puts the user's tensor back afterwards. A write in the forward lands
in the stand-in: the user's tensor comes back as it went in, and a read after the write is the real forward's.
(It was written by every run: FakeTensorMode runs an op of real tensors for real, then the shadow ran it again on
the same tensor, so one inspect left 3 and read 3 where the real forward reads 2.) So is one kept in a list,
tuple or dict among a module's attributes: the run's container is a copy holding the stand-ins. A meta model's
stray real buffer (a legacy `torch.Tensor(...)` ignores the meta device context) is copied for its real forward
too."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import aelab
from aelab.trace.autograd_graph import autograd_graph
from aelab.trace.build import construct
from aelab.trace.materialize import real_answers
from aelab.trace.shadow import REPLAYED
from aelab.trace.standins import attribute_stand_ins
from aelab.trace.step import simulate
from aelab.trace.walk import walk

MODES = ("shadow", "weights", "refuses")  # read without the weights; read beside one from the weights; no fake run


class Counter(nn.Module):
    """Counts its calls in a tensor kept as a plain attribute and keeps that many columns: 2 after one call.
    `weights`: the width also needs a value of the weights (always 0: a real forward answers it); `refuses`:
    Python code that refuses fake and meta tensors (a recorded real forward)."""

    def __init__(self, mode: str = "shadow") -> None:
        super().__init__()
        self.mode = mode
        self.lin = nn.Linear(4, 8)
        self.count = torch.Tensor([1])  # a legacy constructor: on CPU even under the meta device context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "refuses" and (x.is_meta or isinstance(x, torch._subclasses.fake_tensor.FakeTensor)):
            raise RuntimeError("this layer wants real tensors")
        self.count.add_(1)
        extra = int((self.lin.weight > 5).sum()) if self.mode == "weights" else 0  # |weight| <= 1/2
        return torch.tanh(self.lin(x)[:, : int(self.count.item()) + extra])


def _as_it_went_in(model: Counter) -> tuple[object, ...]:
    c = model.count
    return c, c.device, c.untyped_storage().data_ptr(), c.tolist(), c._version


def _unchanged(model: Counter, before: tuple[object, ...]) -> bool:
    after = _as_it_went_in(model)
    return after[0] is before[0] and after[1:] == before[1:]


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("mode", MODES)
def test_inspect_reads_a_plain_counter_as_the_real_forward_does_and_leaves_the_users(mode: str, device: str) -> None:
    assert tuple(Counter(mode)(torch.zeros(2, 4)).shape) == (2, 2)
    model = construct(Counter, {"mode": mode}, device)
    assert model.count.device.type == "cpu" and model.lin.weight.device.type == device
    before = _as_it_went_in(model)
    report = aelab.inspect(model, torch.zeros(2, 4))
    assert report.trace.outputs[0].shape == (2, 2)  # it was (2, 3) on cpu, read exactly from a count run twice
    assert _unchanged(model, before)  # it was 3 after one inspect
    if mode == "shadow":  # answered beside the fake/meta run: exact, no real forward
        assert [r.taint for r in report.trace.reads] == [0] and report.trace.execution == device.replace("cpu", "fake")
    elif mode == "weights":
        assert [r.taint & REPLAYED for r in report.trace.reads] == [REPLAYED, 0]  # the weights, then the count
    else:
        assert report.trace.execution == "real"


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("mode", MODES)
def test_cost_leaves_a_plain_counter_as_it_was(mode: str, device: str) -> None:
    model = construct(Counter, {"mode": mode}, device)
    before = _as_it_went_in(model)
    aelab.cost(model, torch.zeros(2, 4))
    assert _unchanged(model, before)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_a_training_step_reads_a_plain_counter_exactly_and_leaves_the_users(device: str) -> None:
    model = construct(Counter, {}, device)
    before = _as_it_went_in(model)
    log = simulate(model, [torch.zeros(2, 4)], {}, {n: True for n, _ in model.named_parameters()},
                   optimizers=["sgd"], amp="off")
    assert [r.taint for r in log.reads] == [0]
    assert log.outputs[""] == 2 * 2 * 4  # two columns of float32 (it was three)
    assert _unchanged(model, before)
    aelab.memory(model, torch.zeros(2, 4), device="cpu")
    assert _unchanged(model, before)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_a_backward_graph_leaves_a_plain_counter_as_it_was(device: str) -> None:
    model = construct(Counter, {}, device)
    before = _as_it_went_in(model)
    graph = autograd_graph(model, [torch.zeros(2, 4)], {n: True for n, _ in model.named_parameters()})
    assert any(n.param == "lin.weight" for n in graph.nodes)
    assert _unchanged(model, before)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_a_real_forward_runs_on_a_copy_of_a_plain_counter(device: str) -> None:
    model = construct(Counter, {}, device)
    before = _as_it_went_in(model)
    oracle, _ = real_answers(model, [torch.zeros(2, 4)], {})
    assert [float(a) for q in oracle.answers.values() for a in q] == [2.0]  # the write reached what the read reads
    assert _unchanged(model, before)


class StrayBuffer(nn.Module):
    """Built on meta, but a legacy `torch.Tensor(...)` buffer is on CPU; the forward counts its calls in it and
    reads a value of the weights (`weights`: a real forward answers it) or refuses meta tensors (`refuses`)."""

    def __init__(self, mode: str = "weights") -> None:
        super().__init__()
        self.mode = mode
        self.weight = nn.Parameter(torch.randn(4, 8) / 8)  # beside the buffer: the same module's values are made
        self.register_buffer("calls", torch.Tensor([1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "refuses" and x.is_meta:
            raise RuntimeError("this layer wants real tensors")
        self.calls.add_(1)
        return (x @ self.weight)[:, : int(self.calls.item()) + int((self.weight > 5).sum())]


@pytest.mark.parametrize("mode", ["weights", "refuses"])
def test_the_real_forward_of_a_meta_model_writes_a_copy_of_its_stray_real_buffer(mode: str) -> None:
    model = construct(StrayBuffer, {"mode": mode}, "meta")
    calls = model.calls
    assert calls.device.type == "cpu" and model.weight.is_meta
    report = aelab.inspect(model, torch.zeros(2, 4))
    assert report.trace.outputs[0].shape == (2, 2)  # it was (2, 3): the real forward wrote the user's buffer
    assert report.trace.execution == ("meta" if mode == "weights" else "real")
    assert not any("not recoverable" in n for n in report.notes)  # its own values (it was said to be zeros)
    assert model.calls is calls and model._buffers["calls"] is calls and calls.tolist() == [1.0]  # it was 2, 3
    aelab.cost(model, torch.zeros(2, 4))
    assert model.calls is calls and calls.tolist() == [1.0]


class Held(nn.Module):
    """Keeps its counter in a list, a tuple, a dict or a list in a dict of its attributes (`where`), or a view of a
    buffer in a list (`view`: a write through it is the buffer's); counts its calls and keeps that many columns."""

    def __init__(self, where: str = "list") -> None:
        super().__init__()
        self.where = where
        self.lin = nn.Linear(4, 8)
        self.register_buffer("width", torch.tensor(3.0))
        self.cache = [torch.Tensor([1])]
        self.pair = (torch.Tensor([1]), "one")
        self.table = {"n": torch.Tensor([1])}
        self.nested = {"a": [torch.Tensor([1])]}
        self.views = [self.width.view(1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.where == "view":
            self.views[0].fill_(1)
            return torch.tanh(self.lin(x)[:, : int(self.width.item()) + 1])
        count = {"list": self.cache[0], "tuple": self.pair[0], "dict": self.table["n"],
                 "nested": self.nested["a"][0]}[self.where]
        count.add_(1)
        return torch.tanh(self.lin(x)[:, : int(count.item())])


def _held(model: Held) -> tuple[object, ...]:
    """The containers and the tensors in them, as objects, and the tensors' values and versions."""
    tensors = [model.cache[0], model.pair[0], model.table["n"], model.nested["a"][0], model.views[0], model.width]
    return (model.cache, model.pair, model.table, model.nested, model.nested["a"], model.views, *tensors,
            [None if t.is_meta else (t.tolist(), t._version) for t in tensors])  # (a meta tensor has no values)


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("where", ["list", "tuple", "dict", "nested", "view"])
def test_a_tensor_kept_in_a_list_tuple_or_dict_is_read_exactly_and_comes_back_unwritten(where: str,
                                                                                        device: str) -> None:
    assert tuple(Held(where)(torch.zeros(2, 4)).shape) == (2, 2)
    model = construct(Held, {"where": where}, device)
    before = _held(model)
    report = aelab.inspect(model, torch.zeros(2, 4))
    assert report.trace.outputs[0].shape == (2, 2)  # it was (2, 3) on cpu: the count ran twice on the user's
    assert [r.taint for r in report.trace.reads] == [0]
    flags = {n: True for n, _ in model.named_parameters()}
    aelab.cost(model, torch.zeros(2, 4))
    simulate(model, [torch.zeros(2, 4)], {}, flags, optimizers=["sgd"], amp="off")
    if where != "view" or device != "meta":  # (cost --graph does not recover a meta buffer's value to read)
        autograd_graph(model, [torch.zeros(2, 4)], flags)
    oracle, _ = real_answers(model, [torch.zeros(2, 4)], {})
    assert [float(a) for q in oracle.answers.values() for a in q] == [2.0 if where != "view" else 1.0]
    after = _held(model)
    assert all(a is b for a, b in zip(after[:-1], before[:-1], strict=True)) and after[-1] == before[-1]


def test_the_scan_finds_each_held_tensor_and_nothing_in_a_model_that_keeps_none() -> None:
    model = Held()
    model.lin.sizes = {"in": 4, "out": [8]}  # a user's dict and list without a tensor: left as they are
    attributes = attribute_stand_ins(walk(model), lambda t: t.clone(), lambda t: t.clone())
    assert sorted(attr for _, attr, _, _ in attributes.swaps) == ["cache", "nested", "pair", "table", "views"]
    swapped = {attr: stand for _, attr, _, stand in attributes.swaps}
    assert swapped["pair"][1] == "one" and type(swapped["pair"]) is tuple and swapped["nested"]["a"] is not \
        model.nested["a"]
    tied = nn.Sequential(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2), nn.Linear(2, 2), nn.Linear(2, 2))
    tied[3].weight = tied[2].weight  # the same tensor in two modules' parameters: still the model's own
    assert attribute_stand_ins(walk(tied), lambda t: t.clone(), lambda t: t.clone()).swaps == []
    tied[2].__dict__["table"] = {"n": torch.zeros(1)}  # one tensor more in a dict than the model's own
    assert [attr for _, attr, _, _ in attribute_stand_ins(walk(tied), lambda t: t, lambda t: t.clone()).swaps] == \
        ["table"]

    class Early(nn.Module):
        def __init__(self) -> None:
            self.count = torch.zeros(1)  # before nn.Module's own state: the scan's C-level pass skips that
            super().__init__()

    assert [attr for _, attr, _, _ in attribute_stand_ins(walk(Early()), lambda t: t, lambda t: t.clone()).swaps] \
        == ["count"]


def test_a_list_the_forward_appends_to_comes_back_as_it_went_in() -> None:
    class Appends(Held):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.cache.append(x.sum())  # structural: the run's list is a copy (it was the user's, left with a fake)
            return self.lin(x)

    model = Appends()
    cache, first = model.cache, model.cache[0]
    aelab.inspect(model, torch.zeros(2, 4))
    assert model.cache is cache and len(cache) == 1 and cache[0] is first
