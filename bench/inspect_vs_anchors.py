"""aelab inspect against torchinfo, torchlens and FlopCounterMode on the same models, in one run.

Each (model, tool) pair runs in a fresh process (so peak RSS is that tool's), 1 thread, batch 1: the
tool runs once to warm up, then once timed; a call under 50 ms is then timed in 5 batches of n calls (n
so that a batch lasts 0.1 s; timeit-style), a longer one in 3 calls; the best per-call wall time
(`perf_counter`) and the best per-call CPU time of the thread (`time.thread_time()`) are reported (on a
shared machine the CPU time is the steadier one). Model construction is not timed. The last case is
`aelab inspect` of the seed MLP from a shell against `python -c "import torch"`, 5 fresh processes each,
interleaved (wall time: imports are the cost). The anchors get a model with materialised weights (they
run a real forward); aelab gets the same architecture built on the meta device, as `aelab inspect`
builds it, except the Llama-7B case where every tool gets the meta model. Writes the table and the
target ratios to docs/benchmarks.md.

    python bench/inspect_vs_anchors.py            # everything (a few minutes)
    python bench/inspect_vs_anchors.py --quick    # the small cases only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

CASES = ["seqvae", "resnet50", "gpt2", "llama7b", "shell"]
TOOLS = ["bare forward", "torchinfo", "torchlens summary", "FlopCounterMode", "aelab (forward)",
         "aelab (+backward)"]
TITLES = {"seqvae": "seed causal-conv VAE, 1×50×201", "resnet50": "ResNet-50, 1×3×224²",
          "gpt2": "GPT-2 small, 128 tokens", "llama7b": "Llama-7B-shaped on meta, 128 tokens",
          "shell": "seed MLP from a shell, 1×1×28×28"}
SHELL = {"python -c 'import torch'": ["-c", "import torch"],
         "aelab inspect": ["-m", "aelab", "inspect", "examples/seeds.py:NeuralNetwork", "--input", "1x1x28x28"]}


def build(case: str, meta: bool) -> tuple[Any, Any]:
    """(model, input) for a case; on meta when asked."""
    import torch

    device = torch.device("meta") if meta else torch.device("cpu")
    with device:
        if case == "seqvae":
            import seeds

            return seeds.SeqVAE(), torch.randn(1, 50, 201)
        if case == "resnet50":
            import zoo

            return zoo.ResNet50(), torch.randn(1, 3, 224, 224)
        import transformers

        if case == "gpt2":
            model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
        else:
            cfg = transformers.LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                           num_attention_heads=32, num_key_value_heads=32, vocab_size=32000)
            model = transformers.LlamaForCausalLM(cfg)
        return model.eval(), torch.zeros(1, 128, dtype=torch.long)


def run_one(case: str, tool: str) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    aelab_tool = tool.startswith("aelab")
    model, x = build(case, meta=aelab_tool or case == "llama7b")
    if case == "llama7b":
        x = x.to("meta")
    result: dict[str, Any] = {}

    def once() -> None:
        if tool == "bare forward":
            with torch.no_grad():
                model(x)
        elif tool == "torchinfo":
            import torchinfo

            s = torchinfo.summary(model, input_data=[x], verbose=0, device=x.device)
            result["params"] = s.total_params
            result["flops"] = 2 * s.total_mult_adds
        elif tool == "torchlens summary":
            import torchlens

            torchlens.summary(model, x)
        elif tool == "FlopCounterMode":
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as fc, torch.no_grad():
                model(x)
            result["flops"] = fc.get_total_flops()
        else:
            import aelab
            from aelab.trace.inputs import InputSpec

            spec = InputSpec(tuple(x.shape), x.dtype)
            r = aelab.inspect(model, spec, backward=tool == "aelab (+backward)")
            result["params"] = r.summary.totals.params
            result["flops"] = r.summary.totals.flops_forward

    result.update(best_per_call(once))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


SHORT_CALL_S = 0.05  # a call shorter than this is timed in batches
BATCH_S = 0.1  # a batch lasts at least this long
BATCHES = 5  # batches of a short call
LONG_CALLS = 3  # timed calls of a long one


def best_per_call(once: Callable[[], None]) -> dict[str, Any]:
    """The best per-call wall and thread-CPU seconds of `once`, after one warm-up call (timeit-style).

    One timed call decides: under SHORT_CALL_S, BATCHES batches of n calls, n so that a batch lasts
    BATCH_S, each clock's best batch divided by n (a short call's time is below the clocks' noise);
    otherwise LONG_CALLS calls, that call included, each clock's best."""
    once()  # warm-up: lazy imports, first-call caches

    def timed(n: int) -> tuple[float, float]:
        t, c = time.perf_counter(), time.thread_time()
        for _ in range(n):
            once()
        return time.perf_counter() - t, time.thread_time() - c

    first = timed(1)
    if first[0] < SHORT_CALL_S:
        n = max(1, math.ceil(BATCH_S / max(first[0], 1e-6)))
        samples = [timed(n) for _ in range(BATCHES)]
    else:
        n = 1
        samples = [first, *(timed(1) for _ in range(LONG_CALLS - 1))]
    return {"seconds": min(w for w, _ in samples) / n, "cpu_seconds": min(c for _, c in samples) / n,
            "batches": len(samples), "per_batch": n}


def measure(case: str, tool: str, timeout: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", case, tool]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout} s"}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": last[:90]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure_shell(runs: int = 5) -> dict[str, dict[str, Any]]:
    """Wall time of fresh processes, the two commands interleaved so load drifts hit both alike."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT / "src")}
    walls: dict[str, list[float]] = {k: [] for k in SHELL}
    for _ in range(runs):
        for label, argv in SHELL.items():
            t = time.perf_counter()
            out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT, env=env)
            walls[label].append(time.perf_counter() - t)
            if out.returncode != 0:
                return {label: {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:90]}}
    return {label: {"seconds": statistics.median(w), "cpu_seconds": None, "peak_rss_mb": None}
            for label, w in walls.items()}


def fmt_time(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def table(results: dict[str, dict[str, dict[str, Any]]], truth_params: dict[str, int]) -> str:
    lines = ["| model | tool | wall (best per call) | CPU (best per call) | peak RSS | vs torchinfo (CPU time / RSS) |"
             " params reported | forward FLOPs reported |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for case, by_tool in results.items():
        ref = by_tool.get("torchinfo", {})
        fc = by_tool.get("FlopCounterMode", {}).get("flops")
        for tool, r in by_tool.items():
            if "error" in r:
                lines.append(f"| {TITLES[case]} | {tool} | failed: {r['error']} | | | | | |")
                continue
            if case == "shell":
                lines.append(f"| {TITLES[case]} | {tool} | {fmt_time(r['seconds'])} (median of 5) | | | | | |")
                continue
            ratio = ""
            if "seconds" in ref and tool != "torchinfo":
                ratio = f"{r['cpu_seconds'] / ref['cpu_seconds']:.2f}× / {r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}×"
            params = f"{r['params']:,}" if "params" in r else ""
            if params and truth_params.get(case) and r["params"] != truth_params[case]:
                params += f" (truth {truth_params[case]:,})"
            flops = ""
            if "flops" in r:
                flops = f"{r['flops'] / 1e9:.3g} G" + (f" ({r['flops'] / fc:.3g}× FlopCounterMode)" if fc else "")
            lines.append(f"| {TITLES[case]} | {tool} | {fmt_time(r['seconds'])} | {fmt_time(r['cpu_seconds'])} | "
                         f"{r['peak_rss_mb']:.0f} MB | {ratio} | {params} | {flops} |")
    return "\n".join(lines)


TARGETS = [  # (case, tool, reference case/tool, limit, what)
    ("seqvae", "aelab (forward)", "torchinfo", 1.0, "seed VAE: aelab ≤ 1.0× torchinfo"),
    ("resnet50", "aelab (forward)", "torchinfo", 0.9, "ResNet-50: aelab ≤ 0.9× torchinfo"),
    ("llama7b", "aelab (forward)", "bare forward", 1.3, "Llama-7B on meta: aelab ≤ 1.3× a bare meta forward"),
    ("llama7b", "aelab (forward)", "FlopCounterMode", 1.0, "Llama-7B on meta: aelab below FlopCounterMode"),
    ("shell", "aelab inspect", "python -c 'import torch'", 1.5,
     "seed MLP from a shell: ≤ 1.5× `python -c \"import torch\"` (wall)"),
]


def ratios(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = ["| target | CPU-time ratio | wall-time ratio | met |", "|---|---:|---:|---|"]
    for case, tool, ref, limit, what in TARGETS:
        a, b = results.get(case, {}).get(tool, {}), results.get(case, {}).get(ref, {})
        if "seconds" not in a or "seconds" not in b:
            lines.append(f"| {what} | not measured | | |")
            continue
        wall = a["seconds"] / b["seconds"]
        cpu = a["cpu_seconds"] / b["cpu_seconds"] if a.get("cpu_seconds") and b.get("cpu_seconds") else None
        decisive = cpu if cpu is not None else wall
        met = decisive <= limit if limit != 1.0 or "below" not in what else decisive < limit
        lines.append(f"| {what} | {f'{cpu:.2f}×' if cpu is not None else '—'} | {wall:.2f}× | "
                     f"{'yes' if met else 'no'} |")
    return "\n".join(lines)


NOTES_PROFILE = """\
Where the time went (thread CPU, the best of 25 batches of 4 in one process; this VM's speed drifts by up to \
2× between minutes, so the numbers below are from the quietest run, 2026-12-01 21:20). Seed VAE, forward \
only, built on meta: a forward under aelab's shape-only kernels alone takes 1.1 ms; no-op global module \
hooks add 0.1 ms; a pass-through `TorchFunctionMode` adds ~1.0 ms (torch's own Python dispatch of the 61 \
torch-function calls of this forward, 21 of them attribute getters such as `.shape`); aelab's three \
recorders (module calls, functions, aten ops with the shadow's value following and the FLOP formulas) add \
~1.7 ms; a run's set-up (one walk of the model, the parameter count, buffer deferral, RNG fingerprints, \
the training-flag snapshot) ~1.2 ms, and `record()`'s input synthesis and RNG save/restore ~0.5 ms; the \
analyses (data flow, bottleneck, notes; the layer table) ~1.3 ms. torchinfo's whole summary is ~4.5 ms, a \
3 ms real forward plus its hooks.

Fixed this session, each measured before and after: three ops of the seed VAE fell back from aelab's \
kernels to torch's Python meta kernels (`0.5 * log_var` on a split view 0.5 ms, `normal_` 0.7 ms, an add \
of a split view 0.4 ms; one non-dense operand now takes torch's stride sort, random fills return their \
argument); pytree maps in the shadow and the FLOP formulas (~7%); the shadow's real calls entered \
`no_grad` and `_disable_current_modes` per op (17 µs); BatchNorm's reserve `empty([0])` was computed for \
real (uninitialised factories are not followed); `num_batches_tracked += 1` looked the buffer up and \
computed it in every BatchNorm (the write now waits for a read that never comes); `flatten_tensors` on a \
convolution's arguments (16 → 1.6 µs) and frozen-dataclass records (1.4 µs each); eight `named_*` \
traversals per run (one walk now); a `hasattr` per module through `nn.Module.__getattr__`. The \
inspect/torchinfo ratio went from 2.1–2.2× to 1.5–1.7× in the same harness.

What remains is spread thin: no function holds more than ~5% of the trace. ≤ 1.0× would need the \
function-level recording without a `TorchFunctionMode` (its dispatch alone is ~1 ms here) and recorders \
that do less per op than torchinfo's hooks do per module. From a shell the table's `rich` import (~0.3 s) \
remains."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    cases = ["seqvae", "resnet50", "shell"] if args.quick else CASES
    truth = {"seqvae": 1_184_589, "resnet50": 25_557_032, "gpt2": 124_439_808, "llama7b": 6_738_415_616}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    load_before = os.getloadavg()
    for case in cases:
        results[case] = {}
        if case == "shell":
            results[case] = measure_shell()
            print(case, results[case], flush=True)
            continue
        for tool in TOOLS:
            if case == "llama7b" and tool == "torchlens summary":
                results[case][tool] = {"error": "torchlens refuses meta tensors (ANCHORS.md); not run"}
                continue
            r = measure(case, tool, args.timeout)
            results[case][tool] = r
            print(case, tool, r, flush=True)
    load_after = os.getloadavg()
    import torch
    import transformers
    from _table import write_section

    header = (f"## `aelab inspect` vs the anchors\n\n`python bench/inspect_vs_anchors.py` — torch {torch.__version__},"
              f" transformers {transformers.__version__},"
              f" {platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread, batch 1; load average"
              f" {load_before[0]:.1f} before, {load_after[0]:.1f} after (other work shared the cores: compare rows of"
              " this run, and read the ratios, computed from CPU time). Anchors run "
              "a real forward on materialised weights (Llama: on meta); aelab builds on meta, as `aelab inspect` "
              "does. aelab (forward) does the same work as torchinfo; aelab (+backward) also records the backward "
              "kernels. FLOPs: multiply-add = 2; torchinfo's mult-adds × 2.\n\n")
    notes = (
        "\n\nTargets (issue 10), from this run's CPU times (the shell case: wall time):\n\n" + ratios(results) +
        "\n\nReading it: torchinfo counts GPT-2's tied embedding twice and its mult-adds are 10× off (every"
        " Conv1D weight times the whole sequence); on Llama it ignores the 128 tokens. FlopCounterMode has no"
        " formula for the CPU attention kernel `_scaled_dot_product_flash_attention_for_cpu` and counts it 0;"
        " aelab counts it (12 layers × 2·12 heads·128·128·(64+64) = 604 M on GPT-2)."
        "\n\n" + NOTES_PROFILE)
    if args.quick:  # a check that the script runs: print, leave docs/benchmarks.md as it is
        print(table(results, truth) + "\n\n" + ratios(results))
        return
    path = write_section("inspect", header + table(results, truth) + notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
