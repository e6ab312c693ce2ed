"""`memory` leaves every RNG as it found it, and says when the step it measured is one random draw.

Truths: the states are compared before and after (torch's, Python's, NumPy's, a module's own Generator);
which modules draw is known from the models' code.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aelab.footprint.memory import memory

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trace"))  # `trace` is also a stdlib module
from host_random_models import NumpyLayerDrop


class Drawing(nn.Module):
    """Dropout and a torch draw read as a number, then NumPy, Python's `random` and its own Generator decide
    what runs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)
        self.drop = nn.Dropout(0.5)
        self.rng = np.random.default_rng(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.fc(x))
        if torch.rand(()).item() < 2.0:
            x = x + torch.randn_like(x)
        if np.random.rand() < 0.5:
            x = self.fc2(x)
        if random.random() < 0.5:
            x = torch.relu(x)
        if self.rng.random() < 0.5:
            x = x * 2
        return x


class Steady(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


def _states(model: nn.Module) -> tuple[Any, ...]:
    held = model.rng.bit_generator.state if hasattr(model, "rng") else None
    return torch.get_rng_state(), random.getstate(), np.random.get_state(), held


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    (ta, pa, na, ha), (tb, pb, nb, hb) = a, b
    return (bool(ta.equal(tb)) and pa == pb and na[0] == nb[0] and np.array_equal(na[1], nb[1])
            and na[2:] == nb[2:] and ha == hb)


def _random_notes(notes: list[str]) -> list[str]:
    return [n for n in notes if "random draw" in n or "drew from" in n]


def test_every_rng_state_is_back_after_memory_on_a_model_drawing_from_torch_numpy_and_random() -> None:
    model, x = Drawing(), torch.randn(4, 8)
    for device in ("cpu", "cuda"):
        before = _states(model)
        memory(model, x, device=device)
        assert _same(_states(model), before)


def test_every_rng_state_is_back_on_a_meta_model_too() -> None:
    with torch.device("meta"):
        model = Drawing()
    before = _states(model)
    memory(model, (4, 8), device="cpu", what_if=False)
    assert _same(_states(model), before)


def test_a_torch_number_read_and_draws_from_numpy_random_and_a_held_generator_make_the_prediction_one_draw() -> None:
    notes = _random_notes(memory(Drawing(), torch.randn(4, 8), device="cpu").notes)
    assert len(notes) == 1, notes
    [note] = notes
    assert note == ("This prediction is one random draw: aten._local_scalar_dense in the root chooses control flow "
                    "from a random number (e.g. LayerDrop in train mode); the root drew from NumPy's RNG "
                    "(np.random.rand, its Generator `rng`), the root drew from Python's random (random.random); a "
                    "step with other draws may run other code and need other memory."), note
    layerdrop = _random_notes(memory(NumpyLayerDrop(), (2, 4), device="cpu", what_if=False).notes)
    assert layerdrop and layerdrop[0].startswith("This prediction is one random draw: encoder drew from NumPy's RNG "
                                                 "(np.random.rand ×4)"), layerdrop


def test_a_model_without_randomness_has_no_such_note() -> None:
    assert _random_notes(memory(Steady(), (4, 8), device="cpu").notes) == []
