"""The bottleneck's words: the verdict, and the notes on what the structure does and does not mean.

Width-preserving stretches: seed 000 asks whether `Linear(512, 512)` just learns the identity. The
answer depends on what sits around it: affine layers compose into one affine map (W = I, b = 0 is
the identity); a ReLU passes only non-negative values; a sigmoid or tanh squashes every value into a
bounded range that no affine layer undoes exactly. `unit_effects.classify` says which of these a layer is.
"""

from __future__ import annotations

from dataclasses import dataclass

from aelab.inspection.dataflow import COPY, SELECT, DataFlow, Unit
from aelab.inspection.hints import ModelHints
from aelab.inspection.unit_effects import POOLS, Act, classify
from aelab.shapes.notation import batch_shape


def listing(names: list[str], most: int = 6) -> str:
    """'a, b, c' or 'a, b, c, d, e, f and 12 more': long lists stay readable."""
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])} and {len(names) - most} more"


def _source(flow: DataFlow, vid: int) -> Unit | None:
    """The unit that made the values in `vid`, looking through rearrangements, copies and dropout."""
    unit = flow.producer_unit(vid)
    while unit is not None and (classify(unit) in ("move", "dropout") or unit.base in COPY or unit.base in SELECT
                                or unit.base in POOLS):
        ins = [v for v in unit.inputs if flow.main(v)]
        if not ins:
            return unit
        unit = flow.producer_unit(ins[0])
    return unit


def _is_layer(unit: Unit) -> bool:
    """A layer with weights that can change the values' meaning (normalisations only rescale)."""
    return unit.weighted and classify(unit) != "norm"


def stretches(flow: DataFlow, spine: list[int]) -> list[tuple[int, list[Unit], Unit | None]]:
    """(input value, units, next layer) for each run along `spine` that starts at a weighted layer whose output
    has the shape of its input, and goes on through same-shape activations, normalisations and weighted layers.
    A same-shape weighted layer after an activation starts the next run (each answers "can this layer be the
    identity?") and is reported as the run's next layer."""
    out: list[tuple[int, list[Unit], Unit | None]] = []
    i = 0
    while i < len(spine) - 1:
        a, unit = spine[i], flow.producer_unit(spine[i + 1])
        shape = flow.values[a].shape
        kind = classify(unit) if unit is not None and unit.weighted else None  # a weighted layer's, else None
        if unit is None or kind is None or flow.values[spine[i + 1]].shape != shape or not (
                kind == "affine" or isinstance(kind, Act)):
            i += 1
            continue
        run, after, has_act = [unit], None, isinstance(kind, Act)
        j = i + 1
        while j < len(spine) - 1:
            nxt = flow.producer_unit(spine[j + 1])
            if nxt is None or flow.values[spine[j + 1]].shape != shape or (kind := classify(nxt)) == "other":
                break
            if sum(1 for v in nxt.inputs if flow.main(v)) > 1:
                break  # a join (residual add, concatenation)
            if nxt.weighted and kind != "norm" and has_act:  # a layer (`_is_layer`) after an activation
                after = nxt
                break
            run.append(nxt)
            has_act = has_act or isinstance(kind, Act)
            j += 1
        out.append((a, run, after))
        i = j
    return out


def _verdict_key(flow: DataFlow, start: int, run: list[Unit], after: Unit | None) -> tuple[str, str]:
    """(kind, tail) of one stretch; stretches with equal keys share one note. The tail names types, not layers."""
    kinds = [(u, classify(u)) for u in run]
    acts = [(u, k) for u, k in kinds if isinstance(k, Act)]
    other = next((u for u, k in kinds if k == "other"), None)
    if other is not None:
        return "unknown", f"aelab cannot tell whether {{it}} can be the identity: it does not know {other.call.type}."
    squash = next(((u, k) for u, k in acts if k.kind == "squash"), None)
    if squash is not None:
        u, k = squash
        t = u.call.type
        if u is run[0]:  # the layer squashes by itself (an LSTM's tanh)
            return "squash", (f"{{It cannot}} be exactly the identity: {t} outputs values in {k.range}, and no "
                              "affine layer undoes that exactly.")
        return "squash", (f"{{It cannot}} be exactly the identity: the {t} after {{it}} maps every value into "
                          f"{k.range}, and no affine layer undoes that exactly (it can only come close on small "
                          f"inputs, where {t} is nearly linear).")
    smooth = next((u for u, k in acts if k.kind == "smooth"), None)
    if smooth is not None:
        return "smooth", (f"{{It can}} only approximate the identity: {smooth.call.type} is close to x for large "
                          "positive inputs, never equal to it.")
    if not acts:
        norm = next((u for u, k in kinds if k == "norm"), None)
        tail = f" ({norm.call.type} counts as affine with its statistics fixed.)" if norm is not None else ""
        return "affine", (f"With no nonlinearity after {{it}}, {{it}} stays affine (affine layers compose into one "
                          f"affine map) and can be exactly the identity (W = I, b = 0).{tail}")
    src = _source(flow, start)
    src_kind = classify(src) if src is not None else None
    where = src.call.type if src is not None else "the input"
    last, last_kind = acts[-1]
    if isinstance(src_kind, Act) and src_kind.nonneg and all(k.nonneg or k.kind == "relu" for _, k in acts):
        return "relu-fed", (f"{{Its}} input comes out of a {where}, so it is >= 0, and W = I, b = 0 followed by "
                            f"{last.call.type} passes non-negative values through unchanged: {{it}} can be exactly "
                            "the identity on the values it gets.")
    if after is None:
        return "relu-end", (f"{{It cannot}} be the identity: the {last.call.type} after {{it}} changes negative "
                            f"values (it outputs {last_kind.range}) and {{its}} input, from {where}, can be "
                            "negative; only the positive part passes.")
    return "relu-next", (f"{{It cannot}} be the identity by itself: the {last.call.type} after {{it}} changes "
                         f"negative values and {{its}} input, from {where}, can be negative. With the "
                         f"{after.call.type} that follows, it can be the identity on bounded inputs: the bias "
                         f"shifts values up so the {last.call.type} passes them, and the next layer shifts them back.")


_ONE = {"it": "it", "It cannot": "It cannot", "It can": "It can", "Its": "Its", "its": "its"}
_MANY = {"it": "each", "It cannot": "None of them can", "It can": "Each can", "Its": "Each one's", "its": "its"}


def identity_notes(flow: DataFlow, items: list[tuple[int, list[Unit], Unit | None, str]]) -> list[str]:
    """Seed 000: for each width-preserving stretch (start value, units, width text), whether it can be the
    identity; stretches with the same width and the same answer share one note."""
    groups: dict[tuple[str, str, str], list[Unit]] = {}
    for start, run, after, width in items:
        kind, tail = _verdict_key(flow, start, run, after)
        groups.setdefault((width, kind, tail), []).extend(u for u in run if _is_layer(u))
    notes = []
    for (width, _, tail), layers in groups.items():
        names = listing([f"{u.name} ({u.call.type})" for u in layers])
        words = _ONE if len(layers) == 1 else _MANY
        head = f"{names} keep{'s' if len(layers) == 1 else ''} the width ({width}): no compression there."
        notes.append(f"{head} {tail.format(**words)}")
    return notes


# --- the verdict ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    """Values per sample (and per position, when the latent keeps the input's steps/pixels) the verdict compares."""

    input: int
    latent: int
    input_pp: int | None
    latent_pp: int | None
    positions: int | None
    word: str  # "step" | "pixel" | "voxel" | "position"
    bypass: int  # values per sample that skip around the latent


def position_word(n_axes: int) -> str:
    return {1: "step", 2: "pixel", 3: "voxel"}.get(n_axes, "position")


def ratio_text(r: float) -> str:
    """78.4, 0.79, 96, 0.0013: one decimal from 10 up, two below, two significant digits under 0.1."""
    if r < 0.1:
        return f"{r:.2g}"
    text = f"{r:.1f}" if r >= 10 else f"{r:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def verdict(s: Sizes, *, is_ae: bool, source: str, layer: str, shape: str, x_shape: str, y_shape: str,
            is_output: bool, narrower: tuple[str, int] | None = None) -> str:
    """One sentence in plain words: does the model compress, by how much, and what undoes it. `narrower`: a
    narrower point (layer, values per sample) than the model's own encoder output, for the sentence to name."""
    text = _verdict(s, is_ae=is_ae, source=source, layer=layer, shape=shape, x_shape=x_shape, y_shape=y_shape,
                    is_output=is_output)
    if narrower is not None and is_ae:
        text = f"{text[:-1]}; the data path narrows further, to {narrower[1]:,} per sample at {narrower[0]}."
    return text


def _verdict(s: Sizes, *, is_ae: bool, source: str, layer: str, shape: str, x_shape: str, y_shape: str,
             is_output: bool) -> str:
    r = s.input / s.latent
    fewer = f" ({ratio_text(r)}x fewer values per sample than the input)" if r > 1 else ""
    if not is_ae:
        if s.latent_pp is not None:
            what = (f"the {s.latent_pp:,}-way output per {s.word} of {layer} ({s.positions:,} {s.word}s)" if is_output
                    else f"{layer} {shape}, {s.latent_pp:,} values per {s.word}")
        else:
            what = (f"the {s.latent:,}-way output of {layer}" if is_output
                    else f"{layer} {shape}, {s.latent:,} values per sample")
        return (f"Not an autoencoder: the output {y_shape} does not reconstruct the input {x_shape}; "
                f"its narrowest representation is {what}{fewer}.")
    where = f"the latent {layer} {shape}"
    if s.bypass and s.bypass + s.latent >= s.input:
        return (f"Not a bottleneck: skip connections carry {s.bypass:,} values per sample around {where}, which "
                f"holds {s.latent:,}; with them the decoder sees {s.bypass + s.latent:,} per sample, no fewer than "
                f"the input's {s.input:,}, so it can rebuild the input without going through the latent.")
    if r <= 1:
        if s.latent_pp is not None and s.input_pp is not None:
            w = s.word
            shapes = (f"{where} keeps all {s.positions:,} {w}s with {s.latent_pp:,} values per {w} against "
                      f"{s.input_pp:,} input features per {w} (ratio {ratio_text(s.input_pp / s.latent_pp)})")
        else:
            than = "as many as" if s.latent == s.input else "more than"
            shapes = (f"{where} holds {s.latent:,} values per sample, {than} the input's {s.input:,} "
                      f"(ratio {ratio_text(r)})")
        why = ("any compression comes from the KL term, not from the shapes" if source == "sample" else
               "nothing in the shapes forces it to compress, so it can copy the input unless noise, sparsity or a "
               "penalty stops it")
        return f"No dimensional compression: {shapes}; {why}."
    if s.bypass:
        eff = s.input / (s.latent + s.bypass)
        return (f"Compresses {ratio_text(eff)}x in effect: {where} holds {s.latent:,} values per sample "
                f"({ratio_text(r)}x fewer than the input's {s.input:,}), but skip connections carry another "
                f"{s.bypass:,} around it.")
    per = (f" ({s.latent_pp:,} per {s.word} against {s.input_pp:,})"
           if s.latent_pp is not None and s.input_pp is not None else "")
    return (f"Compresses {ratio_text(r)}x: {where} holds {s.latent:,} values per sample against the input's "
            f"{s.input:,}{per}.")


def _name(flow: DataFlow, vid: int) -> str:
    unit = flow.producer_unit(vid)
    return unit.name if unit is not None else "the input"


def bypass_note(flow: DataFlow, latent: int, bypassing: list[int], s: Sizes) -> str:
    """Which values skip around the latent, and where they rejoin the path."""
    point = flow.order(latent)
    parts = []
    for v in bypassing:
        later = sorted(u for u in flow.values[v].consumers if u > point and flow.unit_on_path(u))
        to = flow.units[later[0]].name if later else "the output"
        parts.append(f"{_name(flow, v)} ({flow.per_sample_text(v)}) reaches {to}")
    return (f"Skip connections bypass the latent: {'; '.join(parts)} without passing through it, "
            f"{s.bypass:,} values per sample around the latent's {s.latent:,}.")


def _modules(paths: tuple[str, ...]) -> str:
    return ", ".join(f"`{p}`" for p in paths)


def attribute_notes(flow: DataFlow, hints: ModelHints | None, enc: set[int], dec: set[int], latent: int,
                    source: str, narrow: int | None) -> list[str]:
    """Seed 001: is the model's own encoder/decoder split real? Say whether the data path agrees."""
    if hints is None:
        return []
    if not (enc or dec):
        if hints.has_encode or hints.has_decode:
            return ["The model has encode()/decode() methods; a trace does not show where encode() ends, so the "
                    "split is found from the data path."]
        return []
    e, d = _modules(hints.encoder_modules) or "its encoder", _modules(hints.decoder_modules) or "its decoder"

    def region(vid: int) -> str:
        p = flow.values[vid].producer
        return f"inside {e}" if p in enc else f"inside {d}" if p in dec else f"outside {e} and {d}"

    size = flow.per_sample(latent) or 0
    layer = _name(flow, latent)
    notes = []
    feeds_dec = any(u in dec for u in flow.values[latent].consumers) or not dec
    if source == "narrowest":
        notes.append(f"The model has {e} / {d} modules, but the data path does not pass through them: the split is "
                     "found from the data path alone.")
    elif source == "sample":
        agrees = flow.values[latent].producer not in dec
        notes.append(f"The sample ({layer}) is drawn {region(latent)}"
                     + (": the data path agrees with the model's encoder/decoder attributes." if agrees else
                        f": by the data path, the layers of {d} before it still encode."))
    narrower = narrow is not None and (flow.per_sample(narrow) or 0) < size
    if source == "attribute" and not narrower:
        verb = "hands" if len(hints.encoder_modules) <= 1 else "hand"
        hand = f"{verb} to {d}" if feeds_dec and dec else f"{verb} on"
        parts = " / ".join(_modules(p) for p in (hints.encoder_modules, hints.decoder_modules) if p)
        notes.append(f"The data path agrees with the model's {parts}: the narrowest representation "
                     f"({size:,} per sample, {layer} {batch_shape(flow.values[latent].shape, flow.batch)}) is "
                     f"what {e} {hand}.")
    elif narrower and narrow is not None:
        n = flow.per_sample(narrow) or 0
        lead = (f"The model's {e} hand{'s' if len(hints.encoder_modules) <= 1 else ''} on {size:,} values per "
                f"sample ({layer}), but the data path narrows further"
                if source == "attribute" else "The data path narrows below the latent")
        same = " (as wide as the input)" if flow.x is not None and n == flow.per_sample(flow.x) else ""
        notes.append(f"{lead}, to {n:,} per sample{same} from {_name(flow, narrow)} on, {region(narrow)}"
                     + (f": by the data path, the layers up to {_name(flow, narrow)} encode." if source == "attribute"
                        else "."))
    return notes


def noise_notes(flow: DataFlow, latent: int, source: str) -> list[str]:
    """Where random noise enters: a reparameterised latent, or a corrupted input (a denoising autoencoder)."""
    noise = [flow.units[i] for i in flow.noise_units if any(v in flow.to_y for v in flow.units[i].outputs)]
    if not noise:
        return []
    names = ", ".join(f"{u.name} ({u.call.type})" for u in noise)
    producer = flow.producer_unit(latent)
    if source == "sample" and producer is not None and producer.call.kind != "sample":
        return [f"The latent is a reparameterised sample: noise from {names} joins what earlier layers computed "
                f"at {producer.name} ({producer.call.type}), the value the next layer reads."]
    if source != "sample":
        return [f"Noise from {names} enters before any weighted layer has run: it corrupts the input (a denoising "
                "autoencoder) and does not mark a sampled latent."]
    return []


def _weights(flow: DataFlow, unit: Unit, made: set[int]) -> set[int]:
    """Tensor ids of the parameters a unit reads: its own calls' non-data inputs, and through weight-only units
    (`W.t()`) to the parameter they start from."""
    trace = flow.trace
    calls = [unit.call] + [trace.calls[c] for c in unit.call.children]
    found = {t.tid for c in calls for t in c.inputs if t.tid not in made}
    todo = [v for v in unit.inputs if v not in flow.from_x]
    while todo:
        value = flow.values[todo.pop()]
        if value.producer is None:
            if value.tid not in made:
                found.add(value.tid)
        else:
            todo.extend(v for v in flow.units[value.producer].inputs if v not in flow.from_x)
    return found


def tied_notes(flow: DataFlow, enc: list[int], dec: list[int]) -> list[str]:
    """Tied weights: a layer after the latent reads a parameter a layer before it reads too (F.linear(z, W.t()),
    or one Parameter registered in both modules)."""
    trace = flow.trace
    made = {t.tid for c in trace.calls for t in c.outputs} | {t.tid for t in trace.inputs}
    owner: dict[int, str] = {}
    for i in enc:
        for tid in _weights(flow, flow.units[i], made):
            owner.setdefault(tid, flow.units[i].name)
    pairs = []
    for i in dec:
        hits = sorted({owner[t] for t in _weights(flow, flow.units[i], made) if t in owner})
        pairs += [f"{flow.units[i].name} reuses the weight of {o}" for o in hits]
    if not pairs:
        return []
    return [f"Tied weights: {listing(pairs)}. The decoder shares the encoder's parameters, so the two halves "
            "are not independent and the parameter count is lower than the layer widths suggest."]
