"""What the data path says a model is, and where the model's own marks put its latent.

- **Sequence-to-sequence**: an output that does not reconstruct the input and follows a second input
  sequence, which passes through weighted layers of its own before it meets the input (a decoder's ids in
  T5, BART, MarianMT, Whisper). Such a model has no bottleneck, whatever its modules are called.
- **encode() / decode()**: when the model's forward calls its own methods (recorded by `trace.methods`), the
  latent is the value `decode()` reads; a distribution object `encode()` returns (diffusers'
  `DiagonalGaussianDistribution`, a `torch.distributions.Normal`) is named as what the encoder hands on.
- **Codes**: integer indices from an argmin/argmax that a lookup turns back into vectors are a quantiser's
  codes (a VQ layer); the latent is the looked-up value, and the looked-up table is a codebook.
- **The model's own layout**: a latent found inside an internal view (a quantiser's `(C, N, H*W)`) is reported
  as the nearest rearrangement of it that puts the batch first, named after the module that returns it.
Pure: reads a `DataFlow`, runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from aelab.inspection.bottleneck_notes import batch_shape
from aelab.inspection.dataflow import COPY, SELECT, DataFlow, Unit
from aelab.inspection.hints import ModelHints
from aelab.trace.records import DistributionInfo, MethodCall

#: pick an index per position: the codes of a quantiser when a lookup reads them
ARG = frozenset({"argmin", "argmax"})
#: read rows of a table by integer index
LOOKUP = frozenset({"embedding", "getitem", "index_select", "gather", "take", "take_along_dim"})


def input_values(flow: DataFlow) -> list[int]:
    """Value ids of the trace's inputs, in order (the first values a `DataFlow` makes)."""
    tids = [t.tid for t in flow.trace.inputs]
    return [v.vid for v in flow.values if v.producer is None and v.tid in tids]


def second_sequence(flow: DataFlow) -> int | None:
    """A second input (not `flow.x`) that the output follows: the output keeps its positions, and at least two
    weighted layers read what comes from it alone (its embedding and its own attention) before it meets the
    input. A mask or a position id that joins the input at once is not one."""
    if flow.x is None or flow.y is None:
        return None
    y_shape = flow.values[flow.y].shape
    for u in input_values(flow):
        if u == flow.x or flow.y not in (reach := flow.downstream({u})):
            continue
        own = reach - flow.from_x
        readers = [unit for unit in flow.units if unit.call.kind == "module" and unit.weighted
                   and unit.inputs and all(v in own for v in unit.inputs)]
        positions = flow.values[u].shape[1:]
        if len(readers) >= 2 and positions and tuple(y_shape[1:1 + len(positions)]) == positions:
            return u
    return None


def _value_before(flow: DataFlow, tid: int, cid: int) -> int | None:
    """The value a tensor held when the call `cid` began (its last version made before it)."""
    found = None
    for v in flow.values:
        if v.tid == tid and (v.producer is None or flow.units[v.producer].call.cid < cid):
            found = v.vid
    return found


@dataclass(frozen=True)
class MethodMark:
    """The split the model's own encode()/decode() calls mark: the value decode() reads."""

    latent: int
    encode: MethodCall | None
    decode: MethodCall


def method_latent(flow: DataFlow) -> MethodMark | None:
    """The value the model's `decode()` reads (after its `encode()`, when both ran), if it is on the data path."""
    methods = flow.trace.methods
    enc = next((m for m in methods if m.name == "encode"), None)
    dec = next((m for m in methods if m.name == "decode" and (enc is None or m.calls[0] >= enc.calls[1])), None)
    if dec is None or not dec.inputs:
        return None
    for info in dec.inputs:
        vid = _value_before(flow, info.tid, dec.calls[0])
        if vid is not None and flow.main(vid):
            return MethodMark(vid, enc, dec)
    return None


def distribution_note(flow: DataFlow, mark: MethodMark, name: str, shape: str) -> str | None:
    """What encode() hands on when it returns a distribution, and how the latent comes from it."""
    if mark.encode is None or not mark.encode.distributions:
        return None
    dist: DistributionInfo = mark.encode.distributions[0]
    if not dist.fields:
        return None
    latent_tid = flow.values[mark.latent].tid
    made = {flow.values[v].tid for v in flow.upstream(mark.latent)}
    same = [k for k, t in dist.fields.items() if t.tid == latent_tid]
    used = [k for k, t in dist.fields.items() if t.tid in made]
    how = (f"its {same[0]}" if same else f"drawn from its {', '.join(used)}" if used else "made from it")
    parts = ", ".join(f"{k} {batch_shape(t.shape, flow.batch)}" for k, t in dist.fields.items())
    return (f"encode() returns a {dist.type} ({parts}): the encoder hands on the posterior's moments, and the "
            f"latent {name} {shape}, the value decode() reads, is {how}.")


def is_code_lookup(flow: DataFlow, unit: Unit) -> bool:
    """A lookup whose indices come from an argmin/argmax over the data: a quantiser reading its codebook."""
    if unit.base not in LOOKUP:
        return False
    for v in unit.inputs:
        src = flow.producer_unit(v)
        while src is not None and (src.is_move or src.base in SELECT) and src.inputs:
            src = flow.producer_unit(src.inputs[0])
        if src is not None and src.base in ARG and flow.values[v].dtype.startswith(("int", "uint")):
            return True
    return False


def past_codes(flow: DataFlow, latent: int) -> int:
    """Integer codes (argmin/argmax indices) that a lookup turns back into vectors: the latent is the lookup's
    output, the quantised value the decoder reads."""
    unit = flow.producer_unit(latent)
    if unit is None or unit.base not in ARG:
        return latent
    for u in flow.values[latent].consumers:
        reader = flow.units[u]
        if flow.unit_on_path(u) and is_code_lookup(flow, reader):
            outs = [v for v in reader.outputs if flow.main(v)]
            if outs:
                return outs[0]
    return latent


def _module_output(flow: DataFlow, vid: int) -> bool:
    tid = flow.values[vid].tid
    return any(c.kind == "module" and c.parent is not None and any(t.tid == tid for t in c.outputs)
               for c in flow.trace.calls)


def code_note(flow: DataFlow, codes: int, looked_up: int) -> str:
    """The quantiser: how many codes per sample, from which table, and the vectors they stand for."""
    arg, lookup = flow.producer_unit(codes), flow.producer_unit(looked_up)
    assert arg is not None and lookup is not None
    n, per = flow.per_sample(codes), flow.per_sample(looked_up)  # None: the batch does not divide them
    picks = f"{n:,} codes per sample" if n is not None else "its codes (how many per sample is not known)"
    reads = f"{per:,} values per sample" if per is not None else "the vectors"
    return (f"The latent is quantised: {arg.name} ({arg.call.type}) picks {picks}, and {lookup.name} "
            f"({lookup.call.type}) looks them up in its codebook, {reads} that the decoder reads; "
            "the codes carry the information, so the real compression is higher than the ratio of values.")


def own_layout(flow: DataFlow, latent: int, codes: bool = False) -> tuple[int, str | None, str | None]:
    """(value, module name, module type): the latent as the model lays it out. A latent made in an internal view
    inside a module that hands its input's shape on (a quantiser's `(C, 1, N*H*W)` or `(N, H*W, C)` inside a
    `(N, C, H, W) -> (N, C, H, W)` module) moves, through rearrangements only, to that module's output, named
    after it. Else a latent whose first dim is not the batch, and that no module returns as it is, moves to the
    last rearrangement of it, before the next layer, that puts the batch first. `codes`: the latent is a code
    lookup's output (internal even when the lookup module returns it). A module's own output (an LSTM's
    `(layers, N, H)` state) stays."""
    shape = flow.values[latent].shape
    numel, v, chain = flow.values[latent].numel, latent, [latent]
    for _ in range(64):
        nxt = [out for u in flow.values[v].consumers if flow.unit_on_path(u)
               and _keeps_values(flow.units[u]) for out in flow.units[u].outputs
               if flow.main(out) and flow.values[out].numel == numel]
        if not nxt:
            break
        v = nxt[0]
        chain.append(v)
    owner = flow.producer_unit(latent)
    if owner is not None:
        inside = owner.call.module
        enclosing = [c for c in flow.trace.calls if c.kind == "module" and c.parent is not None
                     and c.cid != owner.call.cid and (inside == c.module or inside.startswith(c.module + "."))]
        for c in chain[1:]:
            value = flow.values[c]
            for call in enclosing:
                if (any(t.tid == value.tid for t in call.outputs) and call.inputs
                        and call.inputs[0].shape == value.shape != shape and value.shape[0] == flow.batch):
                    return c, call.name, call.type
    if not shape or shape[0] == flow.batch or (not codes and _module_output(flow, latent)):
        return latent, None, None
    first = [c for c in chain[1:] if flow.values[c].shape and flow.values[c].shape[0] == flow.batch]
    return (first[-1], None, None) if first else (latent, None, None)


def _keeps_values(unit: Unit) -> bool:
    return unit.is_move or unit.base in SELECT or unit.base in COPY


def method_notes(flow: DataFlow, mark: MethodMark, enc: set[int], dec: set[int], name: str, shape: str) -> list[str]:
    """The split the model's encode()/decode() mark, and the weighted layers that run inside them but outside the
    modules named encoder/decoder (a VAE's `quant_conv` / `post_quant_conv`)."""
    notes = [f"The model's own encode() and decode() mark the split: decode() reads {name} {shape}, the latent."]
    dist = distribution_note(flow, mark, name, shape)
    if dist:
        notes.append(dist)
    for method, region, part in ((mark.encode, enc, "encoder"), (mark.decode, dec, "decoder")):
        if method is None:
            continue
        lo, hi = method.calls
        extra = [u.name for u in flow.units if lo <= u.call.cid < hi and u.weighted and u.index not in region
                 and flow.unit_on_path(u.index)]
        if extra and region:
            verb = "runs" if len(extra) == 1 else "run"
            notes.append(f"{', '.join(extra)} {verb} inside {method.name}(): part of the {part}, though not inside "
                         f"the module named {part}.")
    return notes


def no_bottleneck_words(flow: DataFlow, hints: ModelHints | None, second: int | None) -> tuple[str, list[str]]:
    """The verdict and notes of a model with no bottleneck: sequence-to-sequence (`second` is the input its
    output follows), or never narrower than its input."""
    assert flow.x is not None and flow.y is not None
    x, y = flow.values[flow.x], flow.values[flow.y]
    xs, ys = batch_shape(x.shape, flow.batch), batch_shape(y.shape, flow.batch)
    in_size = flow.per_sample(flow.x) or 1
    notes = []
    if not x.dtype.startswith(("float", "bfloat", "complex")):
        notes.append(f"The input holds {x.dtype} values (ids, not features): sizes count values.")
    if second is not None:
        names = flow.trace.input_names
        idx = [t.tid for t in flow.trace.inputs].index(flow.values[second].tid)
        label = names[idx] if idx < len(names) else "another input"
        other = f"{label} {batch_shape(flow.values[second].shape, flow.batch)}"
        text = (f"Sequence-to-sequence, not an autoencoder: the output {ys} follows the second input {other}, which "
                f"weighted layers of its own read before it meets the input {xs}, and does not reconstruct the "
                "input; there is no bottleneck to report.")
        if hints is not None and (hints.encoder_modules or hints.decoder_modules):
            parts = " / ".join(", ".join(f"`{m}`" for m in p)
                               for p in (hints.encoder_modules, hints.decoder_modules) if p)
            notes.append(f"The model's {parts} modules map one sequence to another: an encoder-decoder, and their "
                         "names do not make it an autoencoder.")
    else:
        text = (f"Not an autoencoder: the output {ys} does not reconstruct the input {xs}, and no representation on "
                f"its data path is narrower than the input ({in_size:,} values per sample): there is no bottleneck "
                "to report.")
        if hints is not None and hints.decoder_modules:
            notes.append(f"A module named like a decoder ({', '.join(f'`{m}`' for m in hints.decoder_modules)}) "
                         "does not make an autoencoder: the output is not the input.")
    return text, notes
