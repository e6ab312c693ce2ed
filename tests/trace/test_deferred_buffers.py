"""A buffer's value is looked up only when the run reads it (`Shadow.defer`): a write of unknown values to
its storage before that first read makes it unknown (it was read back at its initial value, silently exact);
a view of it, or its `.data`, is answered from the same storage; and under fake execution the value is the
real buffer's (it was a FakeTensor, so every buffer read of a real model needed a real forward). A view kept
beside the buffer as a plain attribute follows the buffer's stand-in in every run (fake, meta, a real forward
on copies), and the user's buffer and view come back as they went in."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import aelab
from aelab.errors import UsageError
from aelab.trace.autograd_graph import autograd_graph
from aelab.trace.build import construct
from aelab.trace.materialize import real_answers
from aelab.trace.shadow import REPLAYED, Shadow

WRITES: dict[str, Callable[[nn.Module, torch.Tensor], object]] = {
    "copy_": lambda m, v: m.width.copy_(v),
    ".data.copy_": lambda m, v: m.width.data.copy_(v),
    "a view's copy_": lambda m, v: m.width.view(1).copy_(v.view(1)),
    "fill_ via .data": lambda m, v: m.width.data.fill_(v),
    "an alias's copy_": lambda m, v: m.alias.copy_(v.view(1)),  # a view made in __init__: no op of the run made it
}


class Width(nn.Module):
    """Keeps 3 columns by default; its forward may overwrite the count from the weights (always 1)."""

    def __init__(self, write: str | None = None) -> None:
        super().__init__()
        self.write = write
        self.lin = nn.Linear(4, 4)
        self.register_buffer("width", torch.tensor(3))
        self.alias = self.width.view(1)  # a plain attribute on the buffer's storage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.write is not None:  # |weight| <= 1/2 for any init: the new count is 1, and only the weights say so
            WRITES[self.write](self, (self.lin.weight > 5).sum() + 1)
        return self.lin(x)[:, : int(self.width.item())]


class ReadsData(Width):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)[:, : int(self.width.data.item())]  # `.data`: another tensor on the buffer's storage


class ReadsAlias(Width):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)[:, : int(self.alias.item())]


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("write", [w for w in WRITES if w != "an alias's copy_"])
def test_a_buffer_overwritten_from_the_weights_is_not_read_back_at_its_initial_value(write: str,
                                                                                     device: str) -> None:
    model = construct(Width, {"write": write}, device)
    assert tuple(construct(Width, {"write": write}, "cpu")(torch.zeros(2, 4)).shape) == (2, 1)
    report = aelab.inspect(model, torch.zeros(2, 4))
    assert report.trace.outputs[0].shape == (2, 1)
    assert [r.taint & REPLAYED for r in report.trace.reads] == [REPLAYED]  # the real forward's answer


def _as_it_went_in(model: Width) -> tuple[object, ...]:
    """What the user's model must come back with: the same tensor objects on the same storages, same values."""
    b, a = model.width, model.alias
    values = (b.tolist(), a.tolist()) if b.device.type != "meta" else ()
    return (b, a, b.device, a.device, b.untyped_storage().data_ptr(), a.untyped_storage().data_ptr(),
            b.storage_offset(), a.storage_offset(), model._buffers["width"], *values)


def _unchanged(model: Width, before: tuple[object, ...]) -> bool:
    after = _as_it_went_in(model)
    return len(after) == len(before) and all(x is y or x == y for x, y in zip(after, before, strict=True))


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_a_write_through_an_alias_made_in_init_makes_the_buffer_unknown(device: str) -> None:
    assert tuple(construct(Width, {"write": "an alias's copy_"}, "cpu")(torch.zeros(2, 4)).shape) == (2, 1)
    model = construct(Width, {"write": "an alias's copy_"}, device)
    before = _as_it_went_in(model)
    report = aelab.inspect(model, torch.zeros(2, 4))
    # not answered from the shadow (it was: exact, 3). On meta the module-by-module real forward follows the
    # alias kept beside the buffer: its write lands in the buffer's real value (it went to meta, and 3 was read
    # back). On cpu the fake run's alias is a view of the buffer's fake copy (it was the user's tensor: the write
    # missed the buffer's value, exact 3), and the real forward's a view of the buffer's copy (it wrote the
    # user's buffer)
    assert report.trace.outputs[0].shape == (2, 1)
    assert [r.taint & REPLAYED for r in report.trace.reads] == [REPLAYED]
    assert _unchanged(model, before)
    report_cost = aelab.cost(model, torch.zeros(2, 4))
    assert any("real forward" in n for n in report_cost.notes)
    assert _unchanged(model, before)


class FillsAlias(Width):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.alias.fill_(1)  # from a scalar: no value of the weights, the shadow can follow it
        return self.lin(x)[:, : int(self.width.item())]


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_a_write_of_a_known_value_through_an_alias_is_answered_exactly_and_leaves_the_users_buffer(
        device: str) -> None:
    model = construct(FillsAlias, {}, device)
    before = _as_it_went_in(model)
    report = aelab.inspect(model, torch.zeros(2, 4))
    assert report.trace.outputs[0].shape == (2, 1)
    assert [r.taint for r in report.trace.reads] == [0]  # exact, with no real forward
    assert _unchanged(model, before)  # on cpu FakeTensorMode ran fill_ on the user's alias (all real arguments)


def test_a_real_forward_writes_through_an_alias_into_a_copy_of_the_buffer() -> None:
    model = construct(Width, {"write": "an alias's copy_"}, "cpu")
    before = _as_it_went_in(model)
    oracle, _ = real_answers(model, [torch.zeros(2, 4)], {})
    assert [int(a) for q in oracle.answers.values() for a in q] == [1]  # the write reached what width reads
    assert _unchanged(model, before)  # and not the user's buffer


@pytest.mark.parametrize("cls", [Width, ReadsAlias])
def test_a_backward_graph_follows_an_alias_made_in_init(cls: type[Width]) -> None:
    model = construct(cls, {"write": "an alias's copy_"} if cls is Width else {}, "cpu")
    before = _as_it_went_in(model)
    flags = {n: True for n, _ in model.named_parameters()}
    if cls is Width:  # the count depends on the weights: no graph (it was drawn for 3 columns)
        with pytest.raises(UsageError, match="DataDependent"):
            autograd_graph(model, [torch.zeros(2, 4)], flags)
    else:  # read through the alias: answered from the buffer's value
        assert autograd_graph(model, [torch.zeros(2, 4)], flags).nodes
    assert _unchanged(model, before)


class ViewsItsWeight(nn.Module):
    """Keeps a view of a parameter as a plain attribute and uses it in forward: backward reaches the weight."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 6)
        self.again = self.lin.weight.view(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) @ self.again


def test_backward_through_a_view_of_a_parameter_kept_beside_it_is_counted() -> None:
    model = ViewsItsWeight()
    weight = model.lin.weight.detach().clone()
    out = model(torch.zeros(2, 4))
    with FlopCounterMode(display=False) as real:
        torch.autograd.grad(out.sum(), list(model.parameters()))
    report = aelab.cost(model, torch.zeros(2, 4))
    assert report.flops_backward_all == real.get_total_flops() == 288  # it was 192: the view was a constant
    assert torch.equal(model.lin.weight, weight) and model.again._base is model.lin.weight


class OffsetWidth(Width):
    """The count at offset 1 of its storage, with the alias beside it: a real value made contiguous is moved."""

    def __init__(self) -> None:
        super().__init__("an alias's copy_")
        self.register_buffer("width", torch.tensor([7, 3])[1])
        self.alias = self.width.view(1)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_an_alias_of_a_buffer_off_the_start_of_its_storage_is_followed_too(device: str) -> None:
    model = construct(OffsetWidth, {}, device)
    assert model.width.storage_offset() == 1 and model.alias.storage_offset() == 1
    assert tuple(construct(OffsetWidth, {}, "cpu")(torch.zeros(2, 4)).shape) == (2, 1)
    before = _as_it_went_in(model)
    report = aelab.inspect(model, torch.zeros(2, 4))
    assert report.trace.outputs[0].shape == (2, 1)
    assert _unchanged(model, before)
    if device == "cpu":
        assert model.width._base is not None and model.width._base.tolist() == [7, 3]  # its neighbour too


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("write", ["copy_", ".data.copy_", "an alias's copy_"])
def test_a_training_step_refuses_a_buffer_overwritten_from_the_weights(write: str, device: str) -> None:
    model = construct(Width, {"write": write}, device)
    before = _as_it_went_in(model)
    with pytest.raises(UsageError, match="depends on the weights"):  # on cpu the alias's write was missed: 3
        aelab.memory(model, (2, 4), what_if=False, device="cpu")
    assert _unchanged(model, before)


@pytest.mark.parametrize(("cls", "device"), [(Width, "meta"), (Width, "cpu"), (ReadsData, "meta"), (ReadsData, "cpu"),
                                             (ReadsAlias, "meta"), (ReadsAlias, "cpu")])
def test_a_buffer_read_is_answered_exactly_without_a_real_forward(cls: type[Width], device: str) -> None:
    model = construct(cls, {}, device)
    before = _as_it_went_in(model)
    report = aelab.inspect(model, torch.zeros(2, 4))
    assert report.trace.execution == ("meta" if device == "meta" else "fake")
    assert report.trace.outputs[0].shape == (2, 3)
    assert [r.taint for r in report.trace.reads] == [0]
    assert not any("real forward" in n for n in report.notes)
    assert aelab.memory(model, (2, 4), what_if=False, device="cpu").peak_bytes > 0
    assert _unchanged(model, before)


def test_the_shadow_forgets_a_deferred_value_by_storage_and_answers_its_views() -> None:
    stand = torch.empty(2, 3, device="meta")
    calls = []

    def value() -> tuple[torch.Tensor, int]:
        calls.append(1)
        return torch.arange(6.0).view(2, 3), 0

    sh = Shadow()
    sh.defer(stand, value)
    row = stand[1]  # made outside the run: no op of the shadow's made it
    got = sh.get(row)
    assert got is not None and got[0].tolist() == [3.0, 4.0, 5.0] and calls == [1]
    got = sh.get(stand)
    assert got is not None and got[0].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] and calls == [1]

    sh = Shadow()
    sh.defer(stand, value)
    sh.forget(stand.view(6))  # written with unknown values through another tensor on its storage
    assert sh.get(stand) is None and sh.get(row) is None and calls == [1]

    other = torch.empty(3, device="meta")
    sh.defer(other, lambda: (torch.ones(3), 0))
    assert sh.get(other.view(3, 1)) is not None
    assert sh.get(torch.empty(3, device="meta")) is None  # an unrelated storage


class OutWrite(Width):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.add((self.lin.weight > 5).sum(), 1, out=self.width)  # written by keyword: aten.add.out's `out=`
        return self.lin(x)[:, : int(self.width.item())]


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_a_buffer_written_through_out_is_unknown_too(device: str) -> None:
    report = aelab.inspect(construct(OutWrite, {}, device), torch.zeros(2, 4))
    assert report.trace.outputs[0].shape == (2, 1)
    assert [r.taint & REPLAYED for r in report.trace.reads] == [REPLAYED]


def test_an_overwrite_of_an_unknown_view_forgets_what_shares_its_storage() -> None:
    sh = Shadow()
    base = torch.empty(4, device="meta")
    sh.set(base, torch.zeros(4))
    part = base.as_strided((2,), (1,), 1)  # made outside the run: not known, though its storage is
    src = torch.empty(2, device="meta")
    sh.set(src, torch.ones(2))
    sh.after(torch.ops.aten.copy_.default, (part, src), {}, part.copy_(src))
    got = sh.get(part)
    assert got is not None and got[0].tolist() == [1.0, 1.0]
    assert sh.get(base) is None  # it was [0, 0, 0, 0]: the copy went to a fresh value, not into base's


class Counts(nn.Module):
    """Counts its calls in a buffer, as BatchNorm's `num_batches_tracked`, and may read the count."""

    def __init__(self, read: bool) -> None:
        super().__init__()
        self.read = read
        self.lin = nn.Linear(8, 8)
        self.register_buffer("calls", torch.tensor(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.add_(1)
        self.calls.mul_(3)  # (1 + 1) * 3 = 6
        return self.lin(x)[:, : int(self.calls.item())] if self.read else self.lin(x)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_writes_to_a_buffer_not_read_yet_are_replayed_when_it_is_read(device: str) -> None:
    # the in-place writes of scalars wait for the first read and then run in order; unread, they never run
    model = construct(Counts, {"read": True}, device)
    real = construct(Counts, {"read": True}, "cpu")
    assert tuple(real(torch.zeros(2, 8)).shape) == (2, 6)
    report = aelab.inspect(model, torch.zeros(2, 8))
    assert report.trace.outputs[0].shape == (2, 6)
    assert [r.taint & REPLAYED for r in report.trace.reads] == [0]  # answered from the buffer, exactly
    assert int(model.calls) == 1 if device == "cpu" else model.calls.device.type == "meta"  # the model unchanged
    unread = aelab.inspect(construct(Counts, {"read": False}, device), torch.zeros(2, 8))
    assert unread.trace.outputs[0].shape == (2, 8) and not unread.trace.reads


def test_a_postponed_write_runs_before_the_read_that_needs_it() -> None:
    shadow = Shadow()
    stand = torch.empty((), dtype=torch.long, device="meta")
    looked_up: list[int] = []
    shadow.defer(stand, lambda: (looked_up.append(1), (torch.tensor(4), 0))[1])
    shadow.after(torch.ops.aten.add_.Tensor, (stand, 3), {}, stand)  # waits: nothing has read the buffer
    shadow.after(torch.ops.aten.mul_.Tensor, (stand, 2), {}, stand)
    assert not looked_up
    got = shadow.get(stand)
    assert got is not None and int(got[0]) == 14 and looked_up == [1]
