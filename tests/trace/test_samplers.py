"""Every Distribution sampler is a call of its own in the trace, also one whose class (or method) appears after an
earlier inspect: the walk of the classes is kept between runs only while none changed. Truth: the sampler the
model's code calls, by its type name in the trace."""

from __future__ import annotations

import torch
from torch import nn

import aelab


def _samples(model: nn.Module) -> list[str]:
    report = aelab.inspect(model, (2, 4), backward=False)
    return [c.type for c in report.trace.calls if c.kind == "sample"]


def _sampling(dist: type) -> nn.Module:
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mean, self.scale = nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return dist(self.mean(x), self.scale(x).exp()).rsample()

    return Model()


def _own(self: torch.distributions.Normal, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:  # noqa: B008
    """A sampler that calls no other: unless it is patched itself, the trace has no sample call."""
    return self.loc + self.scale * torch.randn_like(self.loc)


def test_a_class_and_a_method_defined_after_a_run_are_seen() -> None:
    assert _samples(_sampling(torch.distributions.Normal)) == ["Normal.rsample"]

    class Later(torch.distributions.Normal):  # a subclass made after the first run
        rsample = _own

    assert _samples(_sampling(Later)) == ["Later.rsample"]

    class Plain(torch.distributions.Normal):
        pass

    assert _samples(_sampling(Plain)) == ["Plain.rsample"]  # Normal's sampler, on a Plain
    Plain.rsample = _own  # type: ignore[method-assign]  # a sampler of its own, set on the class after a run
    assert _samples(_sampling(Plain)) == ["Plain.rsample"]
