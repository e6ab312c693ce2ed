"""Runners for the safety tests: the real `aelab` CLI in child processes.

`aelab(*args)` runs one command in a process forked from a warm interpreter (tests/safety/_forkserver.py:
`runpy.run_module("aelab")`, i.e. `python -m aelab`, in a fresh process with its own cwd, stdout, stderr and
exit status), so the ~2 s torch import is paid once per session. `aelab_popen(*args)` starts a cold
`python -m aelab` for the tests that signal or race processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from safety.helpers import MODELS, TRAIN

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "COLUMNS": "160",
       "MPLBACKEND": "Agg"}
ENV.pop("AELAB_DEBUG", None)


class Result(subprocess.CompletedProcess):
    """A finished command; `line` is its stderr's single `aelab:` line (asserting there is exactly one)."""

    @property
    def line(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{self.stderr}"
        assert lines[0].startswith("aelab: "), lines[0]
        return lines[0]


class Started:
    """A command running in the fork server: its pid, and `wait()` for its Result."""

    def __init__(self, server: ForkServer, args: tuple[str, ...], out: Path, err: Path, pid: int) -> None:
        self.server, self.args, self.out, self.err, self.pid = server, args, out, err, pid

    def interrupt(self) -> None:
        os.kill(self.pid, signal.SIGINT)

    def wait(self, timeout: float = 120) -> Result:
        rc = self.server.reply(timeout)["rc"]
        return Result(list(self.args), rc, self.out.read_text(errors="replace"), self.err.read_text(errors="replace"))


class ForkServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("_forkserver.py"))], env=ENV,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, cwd=ROOT)
        self.tmp = Path(tempfile.mkdtemp(prefix="aelab-safety-"))
        self.count = 0
        assert self.reply(120).get("ready")

    def reply(self, timeout: float) -> dict:
        assert self.proc.stdout is not None
        end = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        assert time.monotonic() < end + 1, "timed out"
        return json.loads(line)

    def start(self, args: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None,
              fsize: int | None = None) -> Started:
        assert self.proc.stdin is not None
        self.count += 1
        out, err = self.tmp / f"{self.count}.out", self.tmp / f"{self.count}.err"
        req = {"argv": [str(a) for a in args], "cwd": str(cwd), "env": env or {}, "stdout": str(out),
               "stderr": str(err), "fsize": fsize}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return Started(self, args, out, err, self.reply(60)["pid"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def server() -> Iterator[ForkServer]:
    s = ForkServer()
    yield s
    s.close()


@pytest.fixture
def aelab(server: ForkServer, tmp_path: Path):
    """`aelab(*args, cwd=tmp_path, env=None, fsize=None)` -> Result of the real CLI in a fresh process
    (`fsize`: writes past that many bytes fail, as on a full disk); `aelab.start(...)` -> Started."""

    def run(*args: object, cwd: Path = tmp_path, env: dict[str, str] | None = None,
            fsize: int | None = None) -> Result:
        return server.start(tuple(map(str, args)), cwd, env, fsize).wait()

    def start(*args: object, cwd: Path = tmp_path, env: dict[str, str] | None = None) -> Started:
        return server.start(tuple(map(str, args)), cwd, env)

    run.start = start  # type: ignore[attr-defined]
    return run


@pytest.fixture
def aelab_popen(tmp_path: Path):
    """`aelab_popen(*args)` -> a cold `python -m aelab ARGS` Popen (text stdout/stderr pipes), in tmp_path."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: object, cwd: Path = tmp_path) -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, "-m", "aelab", *map(str, args)], cwd=cwd, env=ENV, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture(scope="session")
def trained_run(server: ForkServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run, trained once per session; tests copy it before changing it."""
    where = tmp_path_factory.mktemp("trained")
    res = server.start((*TRAIN, "--out", str(where / "run")), where).wait()
    assert res.returncode == 0, res.stderr
    return where / "run"


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(trained_run, dst, symlinks=True)
    return dst


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    """tmp_path/m.py holding MODELS (Net, Exit0, ExitRun, Printer, Bad, Sleeper, CJK)."""
    path = tmp_path / "m.py"
    path.write_text(MODELS)
    return path
