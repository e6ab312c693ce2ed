"""Pure analysis of a recorded step log: peaks, what is live at the peak, per-layer saved bytes.

Reads `aelab.trace.lifetimes.StepLog` and nothing else. The log holds one forward + backward and,
per optimizer, its first and steady `step()`. The steady state's forward and backward are the first
step's with the optimizer state alive as well (`state_bytes`), so

    first-step peak  = max(peak of forward+backward, end of backward + what the first step() adds)
    steady peak      = max(peak of forward+backward + state, end of backward + state + what a steady step() adds)

Sizes can be rounded per storage the way a device allocator rounds them (`block`: 512 bytes on
CUDA, whose caching allocator hands out blocks in multiples of 512; `max_memory_allocated()` counts
the blocks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aelab.trace.lifetimes import StepLog

#: storage kind -> breakdown name (the JSON's `breakdown` keys)
BREAKDOWN_NAMES: dict[str, str] = {
    "parameter": "parameters", "gradient": "gradients", "optimizer_state": "optimizer_state",
    "activation": "activations", "temporary": "temporaries", "buffer": "buffers", "input": "inputs",
    "amp_copy": "amp_copies",
}

#: phase -> how the report says where the peak is
PHASE_WORDS: dict[str, str] = {"forward": "in forward", "loss": "in the loss", "backward": "inside backward",
                               "optimizer": "in optimizer.step()", "zero_grad": "at zero_grad",
                               "setup": "before the step"}


def rounded(nbytes: int, block: int) -> int:
    """`nbytes` rounded up to the allocator's block (a 0-byte storage takes no block)."""
    if block <= 1 or nbytes == 0:
        return nbytes
    return -(-nbytes // block) * block


@dataclass
class Peak:
    """The peak of live bytes in one step and what was live then."""

    bytes: int
    op: str
    phase: str
    module: str
    live_sids: list[int] = field(default_factory=list)

    @property
    def where(self) -> str:
        words = PHASE_WORDS.get(self.phase, self.phase)
        if self.phase in ("forward", "backward", "loss") and self.module:
            return f"{words} at layer {self.module} ({self.op})"
        if self.phase in ("forward", "backward", "loss"):
            return f"{words} ({self.op})" if self.op else words
        return words


class _Replay:
    """Running live bytes over the log's events, with the allocator's rounding."""

    def __init__(self, log: StepLog, block: int) -> None:
        self.log = log
        self.sizes = [rounded(s.nbytes, block) for s in log.storages]
        self.levels: list[int] = []  # live bytes after each event
        live = 0
        for _, sid, sign in log.events:
            live += self.sizes[sid] if sign > 0 else -self.sizes[sid]
            self.levels.append(live)

    def level(self, e: int) -> int:
        """Live bytes before event `e`."""
        return self.levels[e - 1] if e > 0 else 0

    def high(self, e0: int, e1: int) -> tuple[int, int]:
        """(highest live bytes over events [e0, e1), the event where it is first reached)."""
        best, at = self.level(e0), e0 - 1
        for i in range(e0, e1):
            if self.levels[i] > best:
                best, at = self.levels[i], i
        return best, at

    def live(self, e: int) -> set[int]:
        """The storages live after event `e`."""
        alive: set[int] = set()
        for _, sid, sign in self.log.events[:e + 1]:
            if sign > 0:
                alive.add(sid)
            else:
                alive.discard(sid)
        return alive

    def peak(self, total: int, at: int, extra: set[int] | None = None) -> Peak:
        ops = self.log.ops
        idx = self.log.events[at][0] if at >= 0 else -1
        op = ops[idx] if 0 <= idx < len(ops) else None
        sids = self.live(at) | (extra or set())
        return Peak(total, op.name if op else "", op.phase if op else "setup", op.module if op else "", sorted(sids))


@dataclass
class StepPeaks:
    """First-step and steady-state peaks for one optimizer, and the state it keeps."""

    first: Peak
    steady: Peak
    state_bytes: int


def peaks(log: StepLog, optimizer: str, block: int = 1) -> StepPeaks:
    """Both peaks of a training step with `optimizer` (see the module docstring for how they compose)."""
    r = _Replay(log, block)
    m = log.marks
    fb_high, fb_at = r.high(m["forward"], m["backward_end"])
    end_of_backward = r.level(m["backward_end"])
    o1, o1_at = r.high(m[f"{optimizer}:first"], m[f"{optimizer}:first_end"])
    rise1 = o1 - r.level(m[f"{optimizer}:first"])
    state = r.level(m[f"{optimizer}:first_end"]) - r.level(m["forward"])
    o2, o2_at = r.high(m[f"{optimizer}:steady_grads"], m[f"{optimizer}:steady_end"])
    rise2 = o2 - r.level(m[f"{optimizer}:steady_grads"])
    first = (r.peak(fb_high, fb_at) if fb_high >= end_of_backward + rise1
             else r.peak(end_of_backward + rise1, o1_at))
    if fb_high + state >= end_of_backward + state + rise2:
        kept = r.live(m[f"{optimizer}:first_end"] - 1) - r.live(m["forward"] - 1)
        steady = r.peak(fb_high + state, fb_at, kept)
    else:
        steady = r.peak(end_of_backward + state + rise2, o2_at)
    return StepPeaks(first, steady, state)


def timeline(log: StepLog, optimizer: str, block: int = 1) -> tuple[list[int], list[str]]:
    """Live bytes over the steady step, one value per op that allocated or freed, and its phase."""
    r = _Replay(log, block)
    m = log.marks
    state = r.level(m[f"{optimizer}:first_end"]) - r.level(m["forward"])
    values: list[int] = []
    phases: list[str] = []

    def series(e0: int, e1: int, shift: int) -> None:
        last = None
        for i in range(e0, e1):
            idx = log.events[i][0]
            level = r.levels[i] + shift
            if idx == last:
                values[-1] = max(values[-1], level)
                continue
            last = idx
            values.append(level)
            phases.append(log.ops[idx].phase if 0 <= idx < len(log.ops) else "setup")

    series(m["forward"], m["backward_end"], state)
    start = m[f"{optimizer}:steady_grads"]
    series(start, m[f"{optimizer}:steady_end"],
           r.level(m["backward_end"]) + state - r.level(start))
    return values, phases


def breakdown(log: StepLog, peak: Peak, block: int = 1) -> dict[str, int]:
    """Bytes live at the peak by what they are (parameters, gradients, optimizer state, ...)."""
    out = dict.fromkeys(BREAKDOWN_NAMES.values(), 0)
    for sid in peak.live_sids:
        out[BREAKDOWN_NAMES[log.storages[sid].kind]] += rounded(log.storages[sid].nbytes, block)
    return out


@dataclass
class LayerMemory:
    """One module: bytes its forward saved for backward, bytes of its outputs, saved bytes live at the peak."""

    name: str
    saved_bytes: int
    output_bytes: int
    saved_at_peak_bytes: int


def layers(log: StepLog, peak: Peak, block: int = 1) -> list[LayerMemory]:
    """Per module, what its forward saved for backward (largest first), and its outputs' bytes."""
    saved: dict[str, int] = {}
    at_peak: dict[str, int] = {}
    live = set(peak.live_sids)
    for s in log.storages:
        if s.saved_by is None:
            continue
        saved[s.saved_by] = saved.get(s.saved_by, 0) + rounded(s.nbytes, block)
        if s.sid in live:
            at_peak[s.saved_by] = at_peak.get(s.saved_by, 0) + rounded(s.nbytes, block)
    names = list(dict.fromkeys([*saved, *log.outputs]))
    rows = [LayerMemory(n or "(root)", saved.get(n, 0), log.outputs.get(n, 0), at_peak.get(n, 0)) for n in names]
    order = {r.name: i for i, r in enumerate(rows)}  # ties keep the order the layers ran in
    rows.sort(key=lambda r: (-r.saved_bytes, -r.output_bytes, order[r.name]))
    return rows
