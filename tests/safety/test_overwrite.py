"""Issue 12, data loss: no verb replaces what exists at --out unless --force, none writes through a symlink
or into a non-regular file, no `.tmp-*` is left behind, a run folder with others' files is refused, and
detect's CSV and JSON never collide."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from safety.helpers import TRAIN

NET = ("m.py:Net", "--input", "2x8")


def _no_tmp(folder: Path) -> None:
    assert not [p.name for p in folder.rglob(".tmp-*")], "a temporary file was left behind"


def test_inspect_out_refuses_the_model_source(aelab, model_file: Path, tmp_path: Path) -> None:
    before = model_file.read_text()
    r = aelab("inspect", *NET, "--out", "m.py")
    assert r.returncode == 2 and "m.py" in r.line and "--force" in r.line
    assert model_file.read_text() == before
    _no_tmp(tmp_path)


@pytest.mark.parametrize("verb", [("inspect", *NET), ("doctor", "m.py:Net", "--input", "2x8"),
                                  ("cost", *NET), ("build", "dense", "--input", "8", "--latent", "2")])
def test_every_writing_verb_refuses_an_existing_out_unless_force(aelab, model_file: Path, tmp_path: Path,
                                                                 verb: tuple[str, ...]) -> None:
    target = tmp_path / "mine.txt"
    target.write_text("the user's own file\n")
    r = aelab(*verb, "--out", target)
    assert r.returncode == 2 and str(target) in r.line and "--force" in r.line
    assert target.read_text() == "the user's own file\n"
    r = aelab(*verb, "--out", target, "--force")
    assert r.returncode == 0, r.stderr
    assert target.read_text() != "the user's own file\n"
    _no_tmp(tmp_path)


def test_out_never_writes_through_a_symlink(aelab, model_file: Path, tmp_path: Path) -> None:
    (tmp_path / "target.txt").write_text("keep\n")
    link = tmp_path / "link.txt"
    link.symlink_to("target.txt")
    for extra in ((), ("--force",)):
        r = aelab("inspect", *NET, "--out", link, *extra)
        assert r.returncode == 2 and "symlink" in r.line, r.stderr
        assert link.is_symlink() and os.readlink(link) == "target.txt"
        assert (tmp_path / "target.txt").read_text() == "keep\n"
    _no_tmp(tmp_path)


def test_out_never_replaces_a_fifo_or_a_device(aelab, model_file: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    nodes = [fifo]
    if os.geteuid() == 0:  # as root the old code replaced a device node
        dev = tmp_path / "null"
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        nodes.append(dev)
    for node in nodes:
        kind = os.stat(node).st_mode
        r = aelab("inspect", *NET, "--out", node, "--force")
        assert r.returncode == 2 and str(node) in r.line and "regular file" in r.line, r.stderr
        assert stat.S_IFMT(os.stat(node).st_mode) == stat.S_IFMT(kind)
    _no_tmp(tmp_path)


def test_a_failed_out_leaves_no_temporary_file(aelab, model_file: Path, tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    r = aelab("inspect", *NET, "--out", "adir", "--force")
    assert r.returncode == 2 and "adir" in r.line
    _no_tmp(tmp_path)


def test_train_out_refuses_a_folder_with_files_aelab_did_not_write(aelab, tmp_path: Path) -> None:
    mine = tmp_path / "run"
    mine.mkdir()
    (mine / "model.safetensors").write_bytes(b"the user's weights")
    r = aelab(*TRAIN, "--out", mine)
    assert r.returncode == 2 and str(mine) in r.line
    assert (mine / "model.safetensors").read_bytes() == b"the user's weights"
    assert sorted(p.name for p in mine.iterdir()) == ["model.safetensors"]


@pytest.mark.parametrize("verb", [TRAIN, ("demo", "--epochs", "1", "--limit", "64", "-q")])
def test_train_and_demo_out_onto_a_file_is_refused(aelab, tmp_path: Path, verb: tuple[str, ...]) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("mine\n")
    r = aelab(*verb, "--out", f)
    assert r.returncode == 2 and str(f) in r.line, r.stderr
    assert f.read_text() == "mine\n"


def test_detect_json_out_does_not_replace_its_own_csv(aelab, run_copy: Path, tmp_path: Path) -> None:
    r = aelab("detect", run_copy, "--out", tmp_path / "results.json")
    if r.returncode == 0:  # accepted: the CSV and the summary must be two different files
        files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("results"))
        assert len(files) == 2, files
        assert (tmp_path / "results.csv").read_text().startswith("row,score")
    else:
        assert r.returncode == 2 and "results.json" in r.line


def test_detect_refuses_to_overwrite_a_sibling_json(aelab, run_copy: Path, tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"mine": true}\n')
    r = aelab("detect", run_copy, "--out", tmp_path / "x.csv")
    assert r.returncode == 2 and "x.json" in r.line and "--force" in r.line
    assert (tmp_path / "x.json").read_text() == '{"mine": true}\n'
    assert not (tmp_path / "x.csv").exists()
    r = aelab("detect", run_copy, "--out", tmp_path / "x.csv", "--force")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x.csv").read_text().startswith("row,score")
