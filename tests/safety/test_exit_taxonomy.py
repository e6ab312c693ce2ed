"""Issue 12, one error taxonomy: every failure that comes from the user's input, files, disk or environment
is exit 2 with one `aelab:` line naming the thing (never exit 3, "a bug in aelab", never C++ frames); the
user's model failing is exit 1. Each case below was exit 3 (or worse) before."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from safety.helpers import TRAIN

RUN = "{run}"  # replaced by a fresh copy of the session's trained run


def _states(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("epoch-*/state.json"))


def _edit_states(fn: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def edit(tmp: Path, run: Path) -> None:
        for p in _states(run):
            state = json.loads(p.read_text())
            fn(state)
            p.write_text(json.dumps(state))
    return edit


def _edit_config(fn: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def edit(tmp: Path, run: Path) -> None:
        cfg = json.loads((run / "config.json").read_text())
        fn(cfg)
        (run / "config.json").write_text(json.dumps(cfg))
    return edit


def _state_folder(tmp: Path, run: Path) -> None:
    for p in _states(run):
        p.unlink()
        p.mkdir()


def _npy(name: str, array: np.ndarray) -> Callable[[Path, Path], None]:
    return lambda tmp, run: np.save(tmp / name, array)


def _files(**contents: bytes) -> Callable[[Path, Path], None]:
    def write(tmp: Path, run: Path) -> None:
        np.save(tmp / "ok.npy", np.random.default_rng(0).random((64, 8), dtype=np.float32))
        for name, data in contents.items():
            (tmp / name.replace("_", ".")).write_bytes(data)
    return write


def _nothing(tmp: Path, run: Path) -> None:
    pass


BIG = "99999999999999999999"
#: (id, argv, setup, a word the one line must hold); exit 2 expected
CASES: list[tuple[str, tuple[str, ...], Callable[[Path, Path], None], str]] = [
    ("inspect input beyond int64", ("inspect", "m.py:Net", "--input", f"1x{BIG}"), _nothing, BIG),
    ("cost input beyond int64", ("cost", "m.py:Net", "--input", f"{BIG}x8"), _nothing, BIG),
    ("doctor input beyond int64", ("doctor", "m.py:Net", "--input", f"2x{BIG}"), _nothing, BIG),
    ("train seed beyond int64", (*TRAIN, "--seed", BIG, "--out", "s"), _nothing, "--seed"),
    ("evaluate seed beyond int64", ("evaluate", RUN, "--seed", BIG, "--no-plots"), _nothing, "--seed"),
    ("build latent cannot be allocated", ("build", "dense", "--input", "784", "--latent", "100000000000"), _nothing,
     "memory"),
    ("build hidden cannot be allocated", ("build", "dense", "--input", "784", "--latent", "4", "--option",
                                          "hidden=[1000000000]"), _nothing, "memory"),
    ("train hidden cannot be allocated", (*TRAIN, "--hidden", "1000000000", "--out", "h"), _nothing, "memory"),
    ("train zero-width data", ("train", "--kind", "dense", "--data", "zw.npy", "--out", "z"),
     _npy("zw.npy", np.zeros((10, 0), np.float32)), "zw.npy"),
    ("data show zero-width data", ("data", "show", "zw.npy"), _npy("zw.npy", np.zeros((10, 0), np.float32)),
     "zw.npy"),
    ("labels file that is not .npy", ("train", "--kind", "dense", "--data", "ok.npy", "--data-opt",
                                      "labels=labels.bin", "--out", "l"),
     _files(labels_bin=bytes(range(256)) * 3), "labels.bin"),
    ("train out onto a file", (*TRAIN, "--out", "m.py"), _nothing, "m.py"),
    ("demo out onto a file", ("demo", "--out", "m.py", "--epochs", "1", "--limit", "64", "-q"), _nothing, "m.py"),
    ("state.json sha256 a list", ("train", "--resume", RUN, "--epochs", "3", "-q"),
     _edit_states(lambda s: s.update(sha256=list(s["sha256"].values()))), "state.json"),
    ("state.json epoch 'two'", ("train", "--resume", RUN, "--epochs", "3", "-q"),
     _edit_states(lambda s: s.update(epoch="two")), "state.json"),
    ("state.json history not a list (evaluate)", ("evaluate", RUN, "--no-plots"),
     _edit_states(lambda s: s.update(history=5)), "state.json"),
    ("state.json a folder (resume)", ("train", "--resume", RUN, "--epochs", "3", "-q"), _state_folder, "state.json"),
    ("state.json a folder (evaluate)", ("evaluate", RUN, "--no-plots"), _state_folder, "state.json"),
    ("config.json lr 'fast'", ("train", "--resume", RUN, "--epochs", "3", "-q"),
     _edit_config(lambda c: c["train"].update(lr="fast")), "config.json"),
    ("config.json epochs 'two'", ("train", "--resume", RUN, "-q"),
     _edit_config(lambda c: c["train"].update(epochs="two")), "config.json"),
    ("config.json batch_size a list", ("evaluate", RUN, "--no-plots"),
     _edit_config(lambda c: c["train"].update(batch_size=[1])), "config.json"),
    ("evaluate --limit 0", ("evaluate", RUN, "--limit", "0", "--no-plots"), _nothing, "--limit"),
    ("evaluate --nll-rows 0", ("evaluate", RUN, "--nll-rows", "0", "--no-plots"), _nothing, "--nll-rows"),
    ("cost --threads beyond the machine", ("cost", "m.py:Net", "--input", "2x8", "--measure", "--threads", "100000"),
     _nothing, "--threads"),
    ("train --normal-class beyond int64", (*TRAIN, "--normal-class", BIG, "--out", "n"), _nothing, "--normal-class"),
    ("detect zero-width data", ("detect", RUN, "--data", "zw.npy"), _npy("zw.npy", np.zeros((10, 0), np.float32)),
     "zw.npy"),
]


@pytest.mark.parametrize(("argv", "setup", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_user_errors_are_exit_2_with_one_line(aelab, model_file: Path, trained_run: Path, tmp_path: Path,
                                              argv: tuple[str, ...], setup: Callable[[Path, Path], None],
                                              word: str) -> None:
    run = tmp_path / "run"
    if RUN in argv:
        shutil.copytree(trained_run, run)
    setup(tmp_path, run)
    r = aelab(*(str(run) if a == RUN else a for a in argv))
    assert r.returncode == 2, f"exit {r.returncode}:\n{r.stderr}"
    assert "frame #" not in r.stderr and "Traceback" not in r.stderr
    assert word in r.line, r.line


def test_a_full_disk_is_exit_2_naming_the_file(aelab, model_file: Path, tmp_path: Path) -> None:
    r = aelab(*TRAIN, "--out", "full", fsize=30_000)
    assert r.returncode == 2, r.stderr
    assert "full" in r.line and "cannot write" in r.line
    r = aelab("inspect", "m.py:Net", "--input", "2x8", "--out", "report.txt", fsize=300)
    assert r.returncode == 2 and "report.txt" in r.line, r.stderr
    assert not list(tmp_path.glob(".tmp-*"))


@contextlib.contextmanager
def _immutable(folder: Path):
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (a read-only folder cannot be made for root)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_run_folder_is_exit_2(aelab, run_copy: Path) -> None:
    with _immutable(run_copy):
        for argv in (("train", "--resume", run_copy, "--epochs", "3", "-q"), ("evaluate", run_copy, "--no-plots")):
            r = aelab(*argv)
            assert r.returncode == 2, r.stderr
            assert str(run_copy) in r.line


def test_a_failing_forward_is_the_models_failure_even_bottleneck_only(aelab, model_file: Path) -> None:
    r = aelab("inspect", "m.py:Bad", "--input", "2x8", "--bottleneck-only")
    assert r.returncode == 1, r.stderr
