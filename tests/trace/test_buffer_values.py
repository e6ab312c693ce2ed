"""A meta buffer's recovered value: torch's norm statistics answered directly equal the general path's; a
constructor's `torch.tensor(True)` flag keeps its value, and a bool buffer nothing writes is not a recovered False."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import aelab
from aelab.trace.materialize import Materializer, _norm_statistic

NORMS = [lambda: nn.BatchNorm1d(7), lambda: nn.BatchNorm2d(5), lambda: nn.BatchNorm3d(3),
         lambda: nn.InstanceNorm2d(4, track_running_stats=True), lambda: nn.SyncBatchNorm(6),
         lambda: nn.BatchNorm2d(5, dtype=torch.float64)]


@pytest.mark.parametrize("make", NORMS)
def test_torch_norm_statistics_are_answered_as_the_init_would(make: object) -> None:
    with torch.device("meta"):
        model = nn.Sequential(make())  # type: ignore[operator]
    mat = Materializer(model)
    general = mat.module_values(model[0], "0", note=False)
    for attr, b in model[0].named_buffers():
        fast = _norm_statistic(model[0], attr, b)
        assert fast is not None
        got = mat.buffer_value(b)
        assert got is not None
        for v in (fast, got):
            assert v.dtype == general[attr].dtype and v.shape == general[attr].shape
            assert v.stride() == general[attr].stride() and torch.equal(v, general[attr])


class OwnStats(nn.BatchNorm1d):
    def reset_running_stats(self) -> None:
        super().reset_running_stats()
        if self.track_running_stats:
            self.running_var.fill_(2.0)  # type: ignore[operator]


def test_an_overridden_reset_or_untracked_statistics_take_the_general_path() -> None:
    with torch.device("meta"):
        own, off = OwnStats(3), nn.BatchNorm1d(3)
    off.track_running_stats = False  # the buffers stay, the reset writes nothing: unrecoverable
    model = nn.Sequential(own, off)
    mat = Materializer(model)
    assert _norm_statistic(own, "running_var", own.running_var) is None
    assert torch.equal(mat.buffer_value(own.running_var), torch.full((3,), 2.0))  # type: ignore[arg-type]
    assert _norm_statistic(off, "running_mean", off.running_mean) is None
    assert mat.buffer_value(off.running_mean) is None  # type: ignore[arg-type]


def test_a_recovered_value_is_fresh_each_time() -> None:
    with torch.device("meta"):
        model = nn.Sequential(OwnStats(3))
    mat = Materializer(model)
    first = mat.buffer_value(model[0].num_batches_tracked)  # type: ignore[arg-type]
    assert first is not None
    first += 1  # what the shadow does with `num_batches_tracked += 1`
    again = mat.buffer_value(model[0].num_batches_tracked)  # type: ignore[arg-type]
    assert again is not None and int(again) == 0


class Flagged(nn.Module):
    """vector-quantize-pytorch's codebook in small: a `torch.tensor(True)` flag that skips an init branch."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.register_buffer("initted", torch.tensor(True))
        self.register_buffer("unset", torch.zeros(2, dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.initted:
            x = self.lin(self.lin(x))  # the branch the real model skips
        return self.lin(x)


def test_a_buffer_made_by_torch_tensor_on_meta_keeps_its_value() -> None:
    from aelab.trace.build import construct

    model = construct(Flagged, {}, "meta")
    assert model.initted.device.type == "meta"
    got = Materializer(model).buffer_value(model.initted)  # type: ignore[arg-type]
    assert got is not None and got.dtype == torch.bool and bool(got)
    report = aelab.inspect(model, torch.zeros(2, 4, device="meta"))
    assert report.summary.totals.flops_forward == 2 * 2 * 4 * 4


def test_a_bool_buffer_no_init_writes_is_not_recovered_as_false() -> None:
    with torch.device("meta"):
        model = Flagged()  # built without `construct`: nothing recorded the constructor's values
    mat = Materializer(model)
    assert mat.buffer_value(model.initted) is None  # type: ignore[arg-type]
    values = mat.module_values(model, "", note=True)
    assert values["initted"].dtype == torch.bool and "initted" in mat.unrecovered
