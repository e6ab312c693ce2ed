"""docs/cost.md is real: every `$ aelab cost` block prints what the page shows; timed blocks match up to
their numbers (which move from run to run); the Python example gives the numbers it claims."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "cost.md"
TEXT = DOC.read_text()
BLOCKS = re.findall(r"```console\n\$ (aelab [^\n]+)\n(.*?)\n```", TEXT, flags=re.S)
TIMED = re.findall(r"```console-timed\n\$ (aelab [^\n]+)\n(.*?)\n```", TEXT, flags=re.S)


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip().splitlines()]


def _shape_of(line: str) -> str:
    return re.sub(r"\d[\d.,]*( [KMG]?)?", "#", line)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 3 and len(TIMED) >= 2


@pytest.mark.parametrize(("command", "expected"), BLOCKS, ids=[b[0][:90] for b in BLOCKS])
def test_console_block_matches_real_output(cli, command: str, expected: str) -> None:
    out = cli(*shlex.split(command)[1:])
    assert out.returncode == 0, out.stderr
    assert _lines(out.stdout) == _lines(expected)


@pytest.mark.parametrize(("command", "expected"), TIMED, ids=[b[0][:90] for b in TIMED])
def test_timed_block_matches_up_to_numbers(cli, command: str, expected: str) -> None:
    args = shlex.split(command)[1:]
    args[args.index("--repeats") + 1] = "3"  # the shape of the output, not the timing, is checked here
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    got, want = _lines(out.stdout), _lines(expected)
    timed = [i for i, line in enumerate(want) if "ms" in line or line.startswith("Measured on")]
    assert len(timed) == 3
    assert [_shape_of(line) for line in got] == [_shape_of(line) for line in want]
    assert [line for i, line in enumerate(got) if i not in timed] == \
        [line for i, line in enumerate(want) if i not in timed]


def test_python_example() -> None:
    code = re.search(r"```python\n(.*?)```", TEXT, flags=re.S)
    assert code is not None
    claims = dict(re.findall(r"^(c\.\w+, c\.\w+) +# (.+)$", code.group(1), flags=re.M))
    sys.path.insert(0, str(DOC.parent.parent / "examples"))
    from seeds import NeuralNetwork

    from aelab.costing.cost import cost

    c = cost(NeuralNetwork(), (64, 1, 28, 28), trainable=["linear_relu_stack.0", "linear_relu_stack.2"])
    assert f"{c.flops_backward}, {c.flops_backward_all}" == claims["c.flops_backward, c.flops_backward_all"]
