"""aelab memory against the tools people use to estimate training memory, on a measured CPU step, in one run.

The truth: a real training step on CPU (forward, loss = sum of the outputs, backward, optimizer.step(),
zero_grad(set_to_none=True)), twice, its peak of live tensor storage bytes measured by the ledger of
tests/footprint/ledger.py (a dispatch mode with a weak reference on every storage; glibc's in-use heap
bytes agree with it). The peak is the larger of the first and the steady step. The estimates:

- torchinfo 1.8's "Estimated Total Size": input + 2 × every layer's output + parameters;
- accelerate's `estimate-memory` "Training using Adam" (its `estimate_training_usage` on the model's
  size from `calculate_maximum_sizes`, the CLI's own functions; the CLI itself only takes Hub names);
- PyTorch's `torch.distributed._tools.mem_tracker.MemTracker` on the same two steps under FakeTensorMode;
- `aelab.memory(..., device="cpu")` (exact bytes: no CUDA rounding on a CPU truth).

Each tool is timed once per case, in this process, after one warm-up case. Writes docs/benchmarks.md's
memory section.

    python bench/memory_vs_anchors.py
    python bench/memory_vs_anchors.py --quick    # the first case, SGD only, printed (no doc update)
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "footprint"))

import torch  # noqa: E402
from ledger import OPTIMIZERS, loss_of, measure_steps  # noqa: E402
from zoo import CASES, Case  # noqa: E402

CONFIGS = [("sgd", "off"), ("adam", "off"), ("adam", "bf16")]
TOOLS = ["torchinfo", "accelerate", "MemTracker (fake)", "aelab"]
AMP = {"off": None, "bf16": torch.bfloat16}


def truth(case: Case, optimizer: str, amp: str) -> int:
    first, steady = measure_steps(case.build(), case.inputs(), optimizer=optimizer, amp=amp)
    return max(first.peak, steady.peak)


def torchinfo_estimate(case: Case, optimizer: str, amp: str) -> int:
    from torchinfo import summary

    stats = summary(case.build(), input_data=case.inputs(), verbose=0, mode="train", device="cpu")
    return int(stats.total_input + stats.total_output_bytes + stats.total_param_bytes)


def accelerate_estimate(case: Case, optimizer: str, amp: str) -> int:
    from accelerate.commands.estimate import estimate_training_usage
    from accelerate.utils import calculate_maximum_sizes

    total, _ = calculate_maximum_sizes(case.build())
    sizes = estimate_training_usage(total, "float32" if amp == "off" else "bfloat16")
    return int(max(sizes.values()))


def memtracker_estimate(case: Case, optimizer: str, amp: str) -> int:
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    with FakeTensorMode():
        model = case.build()
        inputs = case.inputs()
        opt = OPTIMIZERS[optimizer]([p for p in model.parameters() if p.requires_grad])
        tracker = MemTracker()
        tracker.track_external(model, opt, *inputs)
        with tracker:
            for i in range(2):
                if i:
                    tracker.reset_mod_stats()  # its documented way to track a second iteration; the peak stays
                cast = torch.autocast("cpu", dtype=AMP[amp]) if AMP[amp] else contextlib.nullcontext()
                with cast:
                    loss = loss_of(model(*inputs))
                loss.backward()
                del loss
                opt.step()
                opt.zero_grad(set_to_none=True)
        snap = tracker.get_tracker_snapshot("peak")
    return int(max(v["Total"] for v in snap.values()))


def aelab_estimate(case: Case, optimizer: str, amp: str) -> int:
    from aelab.footprint.memory import memory

    r = memory(case.build(), case.inputs()[0], optimizer=optimizer, amp=amp, device="cpu", what_if=False)
    return max(r.peak_bytes, r.first_step_peak_bytes)


ESTIMATES = {"torchinfo": torchinfo_estimate, "accelerate": accelerate_estimate,
             "MemTracker (fake)": memtracker_estimate, "aelab": aelab_estimate}


def run(case: Case, optimizer: str, amp: str) -> dict[str, Any]:
    row: dict[str, Any] = {"truth": truth(case, optimizer, amp)}
    for tool, fn in ESTIMATES.items():
        t0 = time.perf_counter()
        try:
            value = fn(case, optimizer, amp)
            row[tool] = {"bytes": value, "error": value / row["truth"] - 1, "s": time.perf_counter() - t0}
        except Exception as exc:  # a tool that fails is a result, not a reason to stop
            row[tool] = {"crash": f"{type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}",
                         "s": time.perf_counter() - t0}
    return row


def _err(cell: dict[str, Any]) -> str:
    return "crash" if "crash" in cell else f"{100 * cell['error']:+.2f}%"


def tables(results: dict[tuple[str, str, str], dict[str, Any]]) -> str:
    lines = ["| model | optimizer | amp | measured peak | " + " | ".join(TOOLS) + " |",
             "|---|---|---|---:|" + "---:|" * len(TOOLS)]
    for (name, opt, amp), row in results.items():
        lines.append(f"| {name} | {opt} | {amp} | {row['truth'] / 2**20:.2f} MiB | "
                     + " | ".join(_err(row[t]) for t in TOOLS) + " |")
    lines += ["", "Per model: the worst error over its three cases (a crash counts as the worst), and the median time "
              "of one estimate.", "",
              "| model | " + " | ".join(f"{t} worst" for t in TOOLS) + " | "
              + " | ".join(f"{t} s" for t in TOOLS) + " |",
              "|---|" + "---:|" * (2 * len(TOOLS))]
    names = list(dict.fromkeys(k[0] for k in results))
    wins = 0
    speed: list[float] = []
    for name in names:
        rows = [r for k, r in results.items() if k[0] == name]
        worst, times = [], []
        for t in TOOLS:
            cells = [r[t] for r in rows]
            worst.append("crash" if any("crash" in c for c in cells) else
                         f"{100 * max(abs(c['error']) for c in cells):.2f}%")
            times.append(statistics.median(c["s"] for c in cells))
        mt, ae = [r["MemTracker (fake)"] for r in rows], [r["aelab"] for r in rows]
        if all("crash" not in c for c in ae) and (any("crash" in c for c in mt) or
                                                max(abs(c["error"]) for c in ae) <= max(abs(c["error"]) for c in mt)):
            wins += 1
        if not any("crash" in c for c in mt):  # a crash's time says nothing
            speed.append(times[TOOLS.index("aelab")] / times[TOOLS.index("MemTracker (fake)")])
        lines.append(f"| {name} | " + " | ".join(worst) + " | " + " | ".join(f"{x:.3f}" for x in times) + " |")
    lines += ["", f"aelab's worst error ≤ MemTracker's on {wins} of {len(names)} models; aelab's time ÷ MemTracker's: "
              f"median {statistics.median(speed):.2f}×, worst {max(speed):.2f}× (over the {len(speed)} models it "
              "does not crash on)."]
    return "\n".join(lines)


def main() -> None:
    quick = "--quick" in sys.argv[1:]  # tests/bench/test_bench_quick.py: every tool once, so the script cannot rot
    torch.set_num_threads(1)
    aelab_estimate(CASES[0], "sgd", "off")  # warm-up: imports and first-call caches are not any case's time
    memtracker_estimate(CASES[0], "sgd", "off")
    results: dict[tuple[str, str, str], dict[str, Any]] = {}
    for case in CASES[:1] if quick else CASES:
        for opt, amp in CONFIGS[:1] if quick else CONFIGS:
            row = run(case, opt, amp)
            results[(case.name, opt, amp)] = row
            print(case.name, opt, amp, row["truth"], {t: _err(row[t]) for t in TOOLS}, flush=True)
    if quick:
        print(tables(results))
        return
    from _table import write_section

    header = (f"## `aelab memory` vs the anchors\n\n`python bench/memory_vs_anchors.py` — torch {torch.__version__}, "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread. The truth is a real "
              "CPU training step (twice: the larger of the first and the steady step) measured by "
              "tests/footprint/ledger.py: every live tensor storage's bytes, cross-checked against glibc's in-use "
              "heap. Error = estimate ÷ measured − 1. torchinfo's estimate ignores the optimizer and autocast; "
              "accelerate's ignores activations and the batch (its formula, from its own functions); MemTracker runs "
              "the same two steps under FakeTensorMode. No GPU was available: CUDA (`max_memory_allocated`) is "
              "unmeasured.\n\n")
    notes = ("\n\nReading it: MemTracker and aelab both follow every storage through a real step on fake tensors, "
             "so they agree wherever the fake kernels tell the truth; on the LSTM autoencoder FakeTensor's oneDNN "
             "LSTM kernel returns an empty workspace where the CPU kernel keeps megabytes per layer, which aelab "
             "corrects from the real kernel (and lists in the report), and under bf16 autocast FakeTensor types "
             "the normalisation statistics bf16 where the kernels return fp32. torchinfo and accelerate are "
             "formulas: fast, and wrong in both directions.")
    path = write_section("memory", header + tables(results) + notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
