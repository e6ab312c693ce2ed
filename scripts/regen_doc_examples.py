"""Rewrite the output of every ```console block (`$ aelab ...`) in the given Markdown pages.

Run after a deliberate change of output; review the diff like a golden file.
    .venv/bin/python scripts/regen_doc_examples.py docs/inspect.md
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

BLOCK = re.compile(r"```console\n\$ (aelab [^\n]+)\n(.*?)\n```", flags=re.S)


def run(command: str) -> str:
    args = shlex.split(command)[1:]
    out = subprocess.run([sys.executable, "-m", "aelab", *args], capture_output=True, text=True,
                         env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"}, cwd=Path(__file__).resolve().parent.parent)
    return "\n".join(line.rstrip() for line in out.stdout.rstrip().splitlines())


def main() -> None:
    for name in sys.argv[1:]:
        path = Path(name)
        text = BLOCK.sub(lambda m: f"```console\n$ {m.group(1)}\n{run(m.group(1))}\n```", path.read_text())
        path.write_text(text)
        print(f"rewrote {path}")


if __name__ == "__main__":
    main()
