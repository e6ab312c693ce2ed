"""Issue 12, data loss: a run folder belongs to one writer at a time (an exclusive lock for the whole run)."""

from __future__ import annotations

import time
from pathlib import Path

from safety.helpers import TRAIN

SLOW = ("train", "--kind", "dense", "--data", "digits", "--latent", "4", "--hidden", "16", "--epochs", "40",
        "--batch-size", "32", "--seed", "1", "-q")


def test_two_concurrent_trainings_into_one_folder_exactly_one_wins(aelab, aelab_popen, tmp_path: Path) -> None:
    run = tmp_path / "same"
    a = aelab_popen(*TRAIN, "--out", run)
    b = aelab_popen(*TRAIN, "--out", run)
    results = [(p.wait(180), p.stderr.read() if p.stderr else "") for p in (a, b)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert str(run) in loser and len(loser.strip().splitlines()) == 1, loser
    r = aelab("evaluate", run, "--no-plots")
    assert r.returncode == 0, r.stderr


def test_a_second_writer_is_told_the_holders_pid(aelab, aelab_popen, tmp_path: Path) -> None:
    run = tmp_path / "busy"
    holder = aelab_popen(*SLOW, "--out", run)
    try:
        end = time.monotonic() + 120
        while not (run / "checkpoints").is_dir():
            assert holder.poll() is None and time.monotonic() < end, "the first training did not start"
            time.sleep(0.05)
        r = aelab("train", "--resume", run, "-q")
        assert r.returncode == 2, r.stderr
        assert str(holder.pid) in r.line and str(run) in r.line
        assert holder.poll() is None, "the second writer disturbed the first"
    finally:
        holder.kill()
        holder.wait()
    r = aelab("train", "--resume", run, "--stop-after", "1", "-q")  # the lock dies with its holder
    assert r.returncode == 0, r.stderr
