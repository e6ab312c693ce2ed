"""Random numbers drawn outside torch (NumPy, Python's `random`) are reported as one random draw, where drawn.

Truths: the module that draws is known from the model's code; the count is the one a real forward takes from
the same RNG state (every state is back after inspect, so a real run right after draws the same numbers);
every RNG state (torch, Python's, NumPy's, a module's own Generator) is compared before and after.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seeds
import torch

import aelab
from truth import flop_counter

sys.path.insert(0, str(Path(__file__).resolve().parent))  # --import-mode=importlib puts no test folder on the path
from host_random_models import (
    Deterministic,
    DrawsInEval,
    HeldNoise,
    ImportedName,
    NumpyLayerDrop,
    PythonLayerDrop,
)

MODELS = "tests/trace/host_random_models.py"


def _states() -> tuple[Any, ...]:
    return torch.get_rng_state(), random.getstate(), np.random.get_state()


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    (ta, pa, na), (tb, pb, nb) = a, b
    return bool(ta.equal(tb)) and pa == pb and na[0] == nb[0] and np.array_equal(na[1], nb[1]) and na[2:] == nb[2:]


def _random_notes(notes: list[str]) -> list[str]:
    return [n for n in notes if "random draw" in n or "drew from" in n]


def test_a_numpy_layerdrop_is_one_random_draw_named_at_its_module_and_counted_as_a_real_run_draws_it() -> None:
    model = NumpyLayerDrop()
    x = torch.randn(2, 4)
    kept = set()
    for seed in range(6):
        np.random.seed(seed)
        before = _states()
        report = aelab.inspect(model, x)
        assert _same(_states(), before)
        [note] = _random_notes(report.notes)
        assert note.startswith("This count is one random draw: encoder drew from NumPy's RNG (np.random.rand ×4)")
        assert note.endswith("trace in eval mode with `--eval` for a deterministic one.")
        forward, backward = flop_counter(model, x)  # the same state: the same layers dropped
        assert (report.summary.totals.flops_forward, report.summary.totals.flops_backward) == (forward, backward)
        kept.add(forward)
    assert len(kept) > 1  # the seeds drop different layers: the count really is one draw


def test_a_python_random_layerdrop_names_each_block_through_the_cli_text_and_json(cli: Any) -> None:
    text = cli("inspect", f"{MODELS}:PythonLayerDrop", "--input", "2x8")
    assert text.returncode == 0, text.stderr
    flat = " ".join(text.stdout.split())
    assert ("This count is one random draw: blocks.0 drew from Python's random (random.random), blocks.1 drew "
            "from Python's random (random.random), blocks.2 drew from Python's random (random.random); trace in "
            "eval mode with `--eval` for a deterministic one.") in flat
    data = json.loads(cli("inspect", f"{MODELS}:PythonLayerDrop", "--input", "2x8", "--format", "json").stdout)
    assert any(n.startswith("This count is one random draw: blocks.0 drew from Python's random") for n in data["notes"])
    evaluated = json.loads(cli("inspect", f"{MODELS}:PythonLayerDrop", "--input", "2x8", "--eval",
                               "--format", "json").stdout)
    assert _random_notes(evaluated["notes"]) == []  # eval mode: the blocks draw nothing


def test_a_model_without_randomness_gets_no_random_line() -> None:
    for model, shape in ((seeds.SeqVAE(), (1, 50, 201)), (Deterministic(), (2, 4)), (PythonLayerDrop().eval(), (2, 8))):
        report = aelab.inspect(model, shape)
        assert report.trace.host_draws == [] and _random_notes(report.notes) == [], type(model).__name__


def test_a_generator_a_module_holds_is_reported_there_and_put_back() -> None:
    model = HeldNoise()
    held = model.noise.rng.bit_generator.state
    before = _states()
    report = aelab.inspect(model, (2, 4))
    [note] = _random_notes(report.notes)
    assert "noise drew from NumPy's RNG (its Generator `rng`)" in note and note.startswith("This count is one")
    assert model.noise.rng.bit_generator.state == held and _same(_states(), before)
    assert report.summary.totals.flops_forward == flop_counter(model, torch.zeros(2, 4))[0]


def test_a_draw_through_an_imported_name_is_still_reported_though_not_placed() -> None:
    report = aelab.inspect(ImportedName(), (2, 4))
    [note] = _random_notes(report.notes)
    assert "the forward drew from NumPy's RNG (not through np.random.*, so not placed in a module)" in note


def test_a_draw_in_eval_mode_is_said_without_calling_the_count_random() -> None:
    report = aelab.inspect(DrawsInEval(), (2, 4), eval_mode=True)
    [note] = _random_notes(report.notes)
    assert note.startswith("In eval mode, the root drew from NumPy's RNG (np.random.random): the count is exact")
    assert not any("one random draw:" in n for n in report.notes)


def test_wav2vec2_spec_augment_in_train_mode_is_reported_and_eval_is_deterministic() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.Wav2Vec2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3),
                                      num_feat_extract_layers=2, num_conv_pos_embeddings=8,
                                      num_conv_pos_embedding_groups=2, layerdrop=0.0, mask_time_prob=0.5,
                                      mask_time_length=2)
    model = transformers.Wav2Vec2Model(cfg)  # random weights, nothing downloaded
    before = _states()
    train = aelab.inspect(model, (2, 400))
    assert train.trace.error is None and _same(_states(), before)
    [note] = _random_notes(train.notes)
    # SpecAugment: Wav2Vec2Model._mask_hidden_states -> _compute_mask_indices (np.random.rand, np.random.choice)
    assert note.startswith("This count is one random draw: the root drew from NumPy's RNG (np.random.rand")
    assert "np.random.choice" in note and "--eval" in note
    evaluated = aelab.inspect(model, (2, 400), eval_mode=True)
    assert _random_notes(evaluated.notes) == [] and model.training


@pytest.mark.parametrize("draw", ["none", "pair", "cached gaussian", "seed"])
def test_every_global_rng_is_back_after_all_rng_restored(draw: str) -> None:
    # NumPy's state is set back only when it moved: each way a block can move it, against the states before
    from aelab.trace.hostrng import all_rng_restored

    np.random.seed(5)
    if draw == "cached gaussian":
        np.random.standard_normal()  # draws a pair, keeps one: the next takes it without moving the twister
    before = _states()
    with all_rng_restored():
        torch.rand(3)
        random.random()
        if draw in ("pair", "cached gaussian"):  # a fresh pair, or the cached one: the twister stays put
            np.random.standard_normal()
        elif draw == "seed":
            np.random.seed(6)
    assert _same(_states(), before)
