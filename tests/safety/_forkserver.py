"""A warm `python -m aelab`: imports aelab and torch once, then forks one child per request.

Each child is a real process running `runpy.run_module("aelab")` (what `python -m aelab` runs) with its
own cwd, environment, stdin (/dev/null), stdout and stderr files; its exit status is what the
interpreter would give: SystemExit's code, 1 for an uncaught exception, 128+N for a signal.
Protocol: one JSON request per line on stdin, one JSON reply per line on stdout.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys

VERBS = ("inspect", "doctor", "explain", "cost", "build", "train", "evaluate", "detect", "data", "demo")


def _preload() -> None:
    """Import every verb through the real lazy registry (`aelab VERB --help`), output discarded."""
    from aelab.cli import main

    for verb in VERBS:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                main([verb, "--help"])
            except SystemExit:
                pass
            except Exception:  # a verb that fails to import fails in its own test, not here
                pass
    with contextlib.suppress(Exception):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot


def _child(req: dict) -> None:
    import runpy
    import traceback

    os.setsid()  # its own process group: a test's SIGINT reaches only this run
    os.chdir(req["cwd"])
    os.environ.update(req.get("env", {}))
    if req.get("fsize"):  # a full disk: writes past this many bytes fail (EFBIG) instead of killing
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (req["fsize"], req["fsize"]))
    for fd, path, mode in ((0, os.devnull, os.O_RDONLY), (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                           (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        f = os.open(path, mode, 0o644)
        os.dup2(f, fd)
        os.close(f)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.argv = ["aelab", *req["argv"]]
    code = 0
    try:
        runpy.run_module("aelab", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code & 0xFF)


def main() -> None:
    _preload()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(req)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
        _, status = os.waitpid(pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        out.write(json.dumps({"rc": rc if rc >= 0 else 128 - rc}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
