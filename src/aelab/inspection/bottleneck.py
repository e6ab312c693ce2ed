"""The bottleneck: the data path's representations, the latent, the encoder/decoder split, the compression.

Sizes are counted per sample (numel / batch, batch = the first dim of the first input) and, when a
representation keeps the input's length or spatial extent, per position (the feature width at each
step or pixel). The latent is where the model samples (`rsample`, or `randn_like` noise joined to
what earlier layers computed); else what the model's `encoder` hands on (checked against the path);
else the narrowest interior representation. Pure: reads a `Trace` and `ModelHints`, runs nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

from aelab.inspection.bottleneck_marks import (
    code_note,
    method_latent,
    method_notes,
    no_bottleneck_words,
    own_layout,
    past_codes,
    second_sequence,
)
from aelab.inspection.bottleneck_notes import (
    Sizes,
    attribute_notes,
    batch_shape,
    bypass_note,
    identity_notes,
    listing,
    noise_notes,
    position_word,
    stretches,
    tied_notes,
    verdict,
)
from aelab.inspection.dataflow import COPY, SELECT, DataFlow, Unit
from aelab.inspection.hints import ModelHints
from aelab.trace.records import Trace


@dataclass
class Representation:
    """One point on the data path: the value a layer (`layer`, a trace call name) hands to the next."""

    layer: str
    type: str
    shape: list[int]
    per_sample: int
    per_position: int | None  # feature width per step/pixel when the input's positions are kept
    positions: int | None  # how many steps/pixels it keeps (None: not the input's)
    role: str  # "input" | "encoder" | "latent" | "decoder" | "output"
    movement: bool = False  # a pure rearrangement of the value before it (transpose, view): same size
    bypass_per_sample: int = 0  # other values alive at this point that skip around it


@dataclass
class Bottleneck:
    """Where a model's data path is narrowest (or samples), how it splits, and what that means."""

    layer: str
    shape: list[int]
    per_sample: int
    per_position: int | None
    compression_ratio: float
    compression_ratio_per_position: float | None
    verdict: str
    notes: list[str]
    is_autoencoder: bool
    latent_source: str  # "method" | "sample" | "attribute" | "narrowest" | "none" (no bottleneck: `layer` is "")
    path: list[Representation]
    encoder: list[str]
    decoder: list[str]
    type: str = ""
    input_shape: list[int] = field(default_factory=list)
    input_per_sample: int = 0
    input_per_position: int | None = None
    positions: int | None = None  # steps/pixels of the input that the latent keeps
    batch: int = 1
    bypass_per_sample: int = 0
    bypass: list[str] = field(default_factory=list)  # path layers that are neither before nor after the latent
    position_word: str = ""  # "step" | "pixel" | "voxel" | "position" when the input has steps/pixels, else ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (recurses into `path`); with no latent its size and ratio are null, not 0."""
        out = asdict(self)
        if self.latent_source == "none":
            out.update(per_sample=None, compression_ratio=None)
        return out


def _is_layer(unit: Unit | None) -> bool:
    return unit is not None and not unit.is_move and unit.base not in COPY and unit.base not in SELECT


def _pick(flow: DataFlow, seq: list[int], prefer: set[int] | None = None) -> int | None:
    """The narrowest value of `seq` (per sample); among a first run of equals, the last one a layer made."""
    run = _narrowest_run(flow, seq)
    for pool in ([v for v in run if prefer and flow.values[v].producer in prefer],
                 [v for v in run if _is_layer(flow.producer_unit(v))], run):
        if pool:
            return pool[-1]
    return None


def _narrowest_run(flow: DataFlow, seq: list[int]) -> list[int]:
    """The first run of consecutive values of `seq` that have the smallest size per sample."""
    sized = [(v, flow.per_sample(v)) for v in seq]
    sizes = [s for _, s in sized if s is not None]
    if not sizes:
        return []
    low = min(sizes)
    start = next(i for i, (_, s) in enumerate(sized) if s == low)
    end = start
    while end + 1 < len(sized) and sized[end + 1][1] == low:
        end += 1
    return [v for v, _ in sized[start:end + 1]]


def _interior(flow: DataFlow, spine: list[int], is_ae: bool) -> list[int]:
    """Where a bottleneck can be: after the first weighted layer; for an autoencoder also before the last one's
    output (what follows it is already the reconstruction)."""
    weighted = [i for i, v in enumerate(spine) if (u := flow.producer_unit(v)) is not None and u.weighted]
    if not weighted:
        return spine[1:-1] if is_ae else spine[1:]
    if not is_ae:
        return spine[weighted[0]:]
    inner = spine[weighted[0]:weighted[-1]]
    return inner or spine[1:-1]


def _regions(flow: DataFlow, hints: ModelHints | None) -> tuple[set[int], set[int]]:
    """Unit indices inside the model's encoder / decoder modules."""
    if hints is None:
        return set(), set()

    def inside(paths: tuple[str, ...]) -> set[int]:
        prefixes = tuple(p + "." for p in paths)
        return {u.index for u in flow.units if u.call.module in paths or u.call.module.startswith(prefixes)}

    return inside(hints.encoder_modules), inside(hints.decoder_modules)


def _sample_latent(flow: DataFlow) -> int | None:
    """The sample's output; else where `randn_like` noise, joined to what earlier layers computed, enters a layer."""
    samples = [v for u in flow.units if u.call.kind == "sample" for v in u.outputs if flow.main(v)]
    if samples:
        return min(samples, key=lambda v: (flow.per_sample(v) or 0, v))
    if not any(v in flow.to_y for i in flow.noise_units for v in flow.units[i].outputs):
        return None
    learned = flow.downstream({v for u in flow.units if u.weighted for v in u.outputs})  # after a weighted layer
    for unit in flow.units:
        if not unit.weighted or not flow.unit_on_path(unit.index):
            continue
        noisy = [v for v in unit.inputs if v in flow.noisy and flow.main(v)]
        if noisy:
            z = noisy[0]
            while not _is_layer(flow.producer_unit(z)) and flow.producer_unit(z) is not None:
                ins = [v for v in flow.producer_unit(z).inputs if flow.main(v)]  # type: ignore[union-attr]
                if not ins:
                    break
                z = ins[0]
            return z if z in learned and z in flow.noisy else None  # noise on the raw input: a denoising AE
    return None


def _attribute_latent(flow: DataFlow, spine: list[int], enc: set[int], dec: set[int]) -> int | None:
    """What the model's encoder hands on: the narrowest spine value leaving `encoder`, or made between it and
    `decoder` (a U-Net's middle block, a reparameterisation at the top level)."""
    on_spine = [flow.values[v].producer for v in spine[1:]]
    first_enc = next((i for i, p in enumerate(on_spine) if p in enc), None)
    first_dec = next((i for i, p in enumerate(on_spine) if p in dec), None)
    if first_enc is None and first_dec is None:
        return None
    lo = first_enc if first_enc is not None else 0
    if first_dec is not None:
        hi = first_dec
    else:
        last_enc = max(i for i, p in enumerate(on_spine) if p in enc)
        hi = next((i for i, p in enumerate(on_spine) if i > last_enc and p is not None and flow.units[p].weighted),
                  len(on_spine) - 1)
    cands = []
    for v in spine[1 + lo:1 + hi]:
        p = flow.values[v].producer
        leaves = any(u not in enc for u in flow.values[v].consumers if flow.unit_on_path(u))
        if p is not None and p not in dec and (p not in enc or leaves):
            cands.append(v)
    return _pick(flow, cands, prefer=enc)


def _extents(flow: DataFlow, spine: list[int]) -> tuple[int, ...]:
    """The input's steps/pixels, as the first layer that knows its axes reads them (conv: (N, C, *positions),
    linear or LSTM: (N, *positions, C)); () when the input has none (a flat vector)."""
    for a, b in itertools.pairwise(spine):
        unit = flow.producer_unit(b)
        if unit is None:
            return ()
        axes, shape = unit.axes(), flow.values[a].shape
        if axes is not None:
            ext = shape[2:] if axes == "first" else shape[1:] if axes == "ids" else shape[1:-1]
            return ext if ext and _keeps(flow.values[flow.x or 0].shape, ext, flow.batch, exact=True) else ()
        if not (unit.is_move or shape == flow.values[b].shape):
            return ()
    return ()


def _keeps(shape: tuple[int, ...], ext: tuple[int, ...], batch: int, exact: bool = False) -> bool:
    """Whether `shape` holds the input's steps/pixels `ext` (as consecutive dims) next to a feature dim; `exact`
    also accepts a shape that is nothing but them (an input of ids, one per position)."""
    dims = list(shape)
    if batch in dims:
        dims.remove(batch)
    n = len(ext)
    if exact and tuple(dims) == ext:
        return True
    return len(dims) > n and any(tuple(dims[i:i + n]) == ext for i in range(len(dims) - n + 1))


def find_bottleneck(trace: Trace, hints: ModelHints | None = None) -> Bottleneck | None:
    """The bottleneck of the model that made `trace`; None when no output depends on any input. The data path
    starts at the first input some output depends on; the batch is the first dim of the first input."""
    flow = DataFlow(trace)
    if flow.x is None or flow.y is None:
        return None
    x, y = flow.x, flow.y
    spine = flow.best_path(x, y)
    if spine is None:
        return None
    enc, dec = _regions(flow, hints)
    x_shape, y_shape = flow.values[x].shape, flow.values[y].shape
    in_size = flow.per_sample(x) or 1
    is_ae = flow.values[y].numel == flow.values[x].numel  # the data path decides, not the modules' names
    interior = _interior(flow, spine, is_ae)
    narrow = _pick(flow, interior) or y
    narrow_from = (_narrowest_run(flow, interior) or [narrow])[0]
    mark = method_latent(flow) if is_ae else None
    latent, source = _sample_latent(flow), "sample"
    if latent is None and mark is not None:
        latent, source = mark.latent, "method"
    use_names = (enc or dec) and is_ae and (latent is None or source == "method")
    named = _attribute_latent(flow, spine, enc, dec) if use_names else None
    if (mark is not None and named is not None and _before(flow, named, mark.decode.calls[0])
            and flow.per_sample(named) == flow.per_sample(mark.latent)):
        latent, source = named, "attribute"  # encode() ends where `encoder` does: keep its name
    if latent is None and named is not None:
        latent, source = named, "attribute"
    if latent is None:
        latent, source = narrow, "narrowest"
    coded = past_codes(flow, latent)
    codes = (latent, coded) if coded != latent else None
    latent, own_name, own_type = own_layout(flow, coded, codes=codes is not None)
    if codes is not None:
        narrow_from = latent  # the codes are narrower by count; the code note says what they are
    second = None if is_ae else second_sequence(flow)
    if second is not None or (not is_ae and (flow.per_sample(latent) or 0) >= in_size):
        return _no_latent(flow, hints, second)
    if latent not in spine:
        first, second_half = flow.best_path(x, latent), flow.best_path(latent, y)
        if first is not None and second_half is not None:
            spine = first + second_half[1:]
    ext = _extents(flow, spine)
    npos = 1
    for e in ext:
        npos *= e

    def per_position(vid: int) -> tuple[int | None, int | None]:
        size = flow.per_sample(vid)
        if not ext or size is None or size % npos or not _keeps(flow.values[vid].shape, ext, flow.batch, vid == x):
            return None, None
        return size // npos, npos

    live = flow.live_totals()
    latent_at = spine.index(latent) if latent in spine else len(spine) - 1
    path = []
    for i, v in enumerate(spine):
        unit = flow.producer_unit(v)
        role = ("input" if v == x else "latent" if v == latent else "output" if v == y
                else "encoder" if i < latent_at else "decoder")
        pp, pos = per_position(v)
        size = flow.per_sample(v) or 0
        path.append(Representation(
            layer=unit.name if unit else "input", type=unit.call.type if unit else "input",
            shape=list(flow.values[v].shape), per_sample=size, per_position=pp, positions=pos, role=role,
            movement=bool(unit and (unit.is_move or unit.base in COPY)),
            bypass_per_sample=max(0, live[flow.order(v) + 1] - size)))
    enc_units, dec_units, off_units = _split(flow, latent)
    encoder, decoder, bypass = ([flow.units[i].name for i in group] for group in (enc_units, dec_units, off_units))
    lat_size = flow.per_sample(latent) or 1
    lat_pp, lat_pos = per_position(latent)
    in_pp, _ = per_position(x)
    bypassing = [v for v in flow.live_after(latent) if v != latent]
    sizes = Sizes(input=in_size, latent=lat_size, input_pp=in_pp, latent_pp=lat_pp, positions=lat_pos,
                  word=position_word(len(ext)), bypass=sum(flow.per_sample(v) or 0 for v in bypassing))
    lat_unit = flow.producer_unit(latent)
    name = own_name or (lat_unit.name if lat_unit else "input")
    lat_type = own_type or (lat_unit.call.type if lat_unit else "input")
    if own_name:
        path[latent_at].layer, path[latent_at].type = own_name, lat_type
    notes: list[str] = []
    if not flow.values[x].dtype.startswith(("float", "bfloat", "complex")):
        notes.append(f"The input holds {flow.values[x].dtype} values (ids, not features): sizes count values, "
                     "and a ratio against it compares counts only.")
    if bypassing:
        notes.append(bypass_note(flow, latent, bypassing, sizes))
    if lat_size > in_size:
        per = f" ({lat_pp:,} per {sizes.word} against {in_pp:,})" if lat_pp is not None and in_pp is not None else ""
        notes.append(f"The latent is wider than the input: {lat_size:,} values per sample against {in_size:,}{per}.")
    if mark is not None and latent == mark.latent:
        notes += method_notes(flow, mark, enc, dec, name, batch_shape(flow.values[latent].shape, flow.batch))
    notes += attribute_notes(flow, hints, enc, dec, latent, source, narrow_from)
    if codes is not None:
        notes.append(code_note(flow, *codes))
    notes += noise_notes(flow, latent, source)
    notes += tied_notes(flow, enc_units, dec_units)
    notes += _structure_notes(flow, spine, per_position, sizes.word)
    if bypass:
        notes.append(f"Off the route through the latent (neither before nor after it): {listing(bypass)}.")
    ratio = in_size / lat_size
    ratio_pp = in_pp / lat_pp if in_pp is not None and lat_pp is not None and lat_pp else None
    text = verdict(sizes, is_ae=is_ae, source=source, layer=name,
                   shape=batch_shape(flow.values[latent].shape, flow.batch),
                   x_shape=batch_shape(x_shape, flow.batch), y_shape=batch_shape(y_shape, flow.batch),
                   is_output=latent == y or all(u.is_move for u in _units_between(flow, spine, latent, y)),
                   narrower=(_name(flow, narrow_from), flow.per_sample(narrow_from) or 0)
                   if source == "attribute" and (flow.per_sample(narrow_from) or lat_size) < lat_size else None)
    return Bottleneck(
        layer=name, shape=list(flow.values[latent].shape), per_sample=lat_size, per_position=lat_pp,
        compression_ratio=round(ratio, 4), compression_ratio_per_position=round(ratio_pp, 4) if ratio_pp else None,
        verdict=text, notes=notes, is_autoencoder=is_ae, latent_source=source, path=path, encoder=encoder,
        decoder=decoder, type=lat_type, input_shape=list(x_shape),
        input_per_sample=in_size, input_per_position=in_pp, positions=lat_pos, batch=flow.batch,
        bypass_per_sample=sizes.bypass, bypass=bypass, position_word=sizes.word if ext else "")


def _before(flow: DataFlow, vid: int, cid: int) -> bool:
    unit = flow.producer_unit(vid)
    return unit is None or unit.call.cid < cid


def _no_latent(flow: DataFlow, hints: ModelHints | None, second: int | None) -> Bottleneck:
    """No bottleneck: a sequence-to-sequence model (its output follows a second input), or a network whose data
    path never gets narrower than its input. The record keeps the verdict and an empty latent."""
    assert flow.x is not None
    text, notes = no_bottleneck_words(flow, hints, second)
    return Bottleneck(layer="", shape=[], per_sample=0, per_position=None, compression_ratio=0.0,
                      compression_ratio_per_position=None, verdict=text, notes=notes, is_autoencoder=False,
                      latent_source="none", path=[], encoder=[], decoder=[], type="",
                      input_shape=list(flow.values[flow.x].shape), input_per_sample=flow.per_sample(flow.x) or 1,
                      batch=flow.batch)


def _name(flow: DataFlow, vid: int) -> str:
    unit = flow.producer_unit(vid)
    return unit.name if unit is not None else "input"


def _units_between(flow: DataFlow, spine: list[int], a: int, b: int) -> list[Unit]:
    if a not in spine or b not in spine:
        return []
    return [u for v in spine[spine.index(a) + 1:spine.index(b) + 1] if (u := flow.producer_unit(v)) is not None]


def _split(flow: DataFlow, latent: int) -> tuple[list[int], list[int], list[int]]:
    """Leaf-level units on the path: before the latent (its ancestors), after it (its descendants), and neither."""
    before, after = flow.upstream(latent), flow.downstream({latent})
    enc, dec, neither = [], [], []
    for unit in flow.units:
        listed = flow.unit_on_path(unit.index) or (
            unit.index in flow.noise_units and any(v in flow.to_y for v in unit.outputs))
        if not listed:
            continue
        if any(v in before for v in unit.outputs):
            enc.append(unit.index)
        elif any(v in after for v in unit.inputs):
            dec.append(unit.index)
        else:
            neither.append(unit.index)
    return enc, dec, neither


def _structure_notes(flow: DataFlow, spine: list[int], per_position: Any, word: str) -> list[str]:
    """Width-preserving stretches (can they be the identity?) and the pure rearrangements on the path."""
    items = []
    for start, run, after in stretches(flow, spine):
        pp, _ = per_position(start)
        width = f"{pp:,} per {word}" if pp is not None else flow.per_sample_text(start)
        items.append((start, run, after, width))
    notes = identity_notes(flow, items)
    steps = [u for v in spine[1:] if (u := flow.producer_unit(v)) is not None and u.is_move]
    moves = [u for u in steps if not u.straight_through]
    ste = [u for u in steps if u.straight_through and u.base in ("add", "radd")]
    if ste:
        listed = listing([f"{u.name} ({u.call.type})" for u in ste])
        notes.append(f"{listed}: a straight-through estimator, z + (z_q - z).detach(). Its value is the quantised "
                     "z_q and z only receives z_q's gradient: not a skip connection.")
    if moves:
        listed = listing([f"{u.name} ({u.call.type})" for u in moves])
        notes.append(f"Rearrangements on the path keep the size and compress nothing: {listed}.")
    return notes
