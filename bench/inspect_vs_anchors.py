"""aelab inspect against torchinfo, torchlens and FlopCounterMode on the same models, in one run.

Each (model, tool) pair runs in a fresh process (so peak RSS is that tool's), 1 thread, batch 1:
the tool runs once to warm up, then 3 times; the median wall time is reported. Model construction
is not timed. The anchors get a model with materialised weights (they run a real forward); aelab
gets the same architecture built on the meta device, as `aelab inspect` builds it, except the
Llama-7B case where every tool gets the meta model. Writes the table to docs/benchmarks.md.

    python bench/inspect_vs_anchors.py            # everything (a few minutes)
    python bench/inspect_vs_anchors.py --quick    # the small cases only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

CASES = ["seqvae", "resnet50", "gpt2", "llama7b"]
TOOLS = ["bare forward", "torchinfo", "torchlens summary", "FlopCounterMode", "aelab (forward)",
         "aelab (+backward)"]
TITLES = {"seqvae": "seed causal-conv VAE, 1×50×201", "resnet50": "ResNet-50, 1×3×224²",
          "gpt2": "GPT-2 small, 128 tokens", "llama7b": "Llama-7B-shaped on meta, 128 tokens"}


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

    once()  # warm-up
    times = []
    for _ in range(3):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    result["seconds"] = statistics.median(times)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


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


def fmt_time(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def table(results: dict[str, dict[str, dict[str, Any]]], truth_params: dict[str, int]) -> str:
    lines = ["| model | tool | wall (median of 3) | peak RSS | vs torchinfo (time / RSS) | params reported |"
             " forward FLOPs reported |", "|---|---|---:|---:|---:|---:|---:|"]
    for case, by_tool in results.items():
        ref = by_tool.get("torchinfo", {})
        fc = by_tool.get("FlopCounterMode", {}).get("flops")
        for tool, r in by_tool.items():
            if "error" in r:
                lines.append(f"| {TITLES[case]} | {tool} | failed: {r['error']} | | | | |")
                continue
            ratio = ""
            if "seconds" in ref and tool != "torchinfo":
                ratio = f"{r['seconds'] / ref['seconds']:.2f}× / {r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}×"
            params = f"{r['params']:,}" if "params" in r else ""
            if params and truth_params.get(case) and r["params"] != truth_params[case]:
                params += f" (truth {truth_params[case]:,})"
            flops = ""
            if "flops" in r:
                flops = f"{r['flops'] / 1e9:.3g} G" + (f" ({r['flops'] / fc:.3g}× FlopCounterMode)" if fc else "")
            lines.append(f"| {TITLES[case]} | {tool} | {fmt_time(r['seconds'])} | {r['peak_rss_mb']:.0f} MB | "
                         f"{ratio} | {params} | {flops} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    cases = ["seqvae", "resnet50"] if args.quick else CASES
    truth = {"seqvae": 1_184_589, "resnet50": 25_557_032, "gpt2": 124_439_808, "llama7b": 6_738_415_616}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for case in cases:
        results[case] = {}
        for tool in TOOLS:
            if case == "llama7b" and tool == "torchlens summary":
                results[case][tool] = {"error": "torchlens refuses meta tensors (ANCHORS.md); not run"}
                continue
            r = measure(case, tool, args.timeout)
            results[case][tool] = r
            print(case, tool, r, flush=True)
    import torch
    from _table import write_section

    header = (f"## `aelab inspect` vs the anchors\n\n`python bench/inspect_vs_anchors.py` — torch {torch.__version__},"
              f" {platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread, batch 1. Anchors run "
              "a real forward on materialised weights (Llama: on meta); aelab builds on meta, as `aelab inspect` "
              "does. aelab (forward) does the same work as torchinfo; aelab (+backward) also records the backward "
              "kernels. FLOPs: multiply-add = 2; torchinfo's mult-adds × 2.\n\n")
    notes = (
        "\n\nReading it: torchinfo counts GPT-2's tied embedding twice and its mult-adds are 10× off (every"
        " Conv1D weight times the whole sequence); on Llama it ignores the 128 tokens. FlopCounterMode has no"
        " formula for the CPU attention kernel `_scaled_dot_product_flash_attention_for_cpu` and counts it 0;"
        " aelab counts it, which is the whole 1.02× on GPT-2 (12 layers × 2·12 heads·128·128·(64+64) = 604 M)."
        " On the small seed VAE a run costs a fixed per-op overhead (three recording layers), so aelab is"
        " slower than torchinfo there while still 8× faster than torchlens; on GPT-2 it does not pay for a"
        " real forward or for real weights, which is where the targets are set (≤ 0.5× torchinfo's time and"
        " RSS) and the 7B case (< 10 s, < 1.5 GB).")
    path = write_section("inspect", header + table(results, truth) + notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
