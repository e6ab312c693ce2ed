"""A meta buffer's recovered value: torch's norm statistics answered directly equal the general path's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

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
