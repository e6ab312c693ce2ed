"""`aelab train`: parse the options into a TrainConfig, run it, say where the run is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from aelab.cli.load import parse_kwargs
from aelab.cli.ranges import COUNT, INT64, NON_NEGATIVE_FLOAT, POSITIVE, POSITIVE_FLOAT, SEED, Finite
from aelab.errors import UsageError
from aelab.models import KINDS
from aelab.models.config import option_help
from aelab.training import TrainConfig, train
from aelab.training.config import SCHEDULES


def _model_option_help() -> dict[str, str]:
    """Every option any kind accepts -> help text naming its default(s) and the kinds that take it."""
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    for kind, entry in KINDS.items():
        for name, (default, text) in option_help(entry.config).items():
            seen.setdefault(name, (text, {}))[1][kind] = default
    out = {}
    for name, (text, defaults) in sorted(seen.items()):
        shown = {",".join(map(str, d)) if isinstance(d, tuple) else str(d) for d in defaults.values()}
        default_text = shown.pop() if len(shown) == 1 else "depends on the kind"
        if name == "likelihood":
            default_text = "bernoulli when the data lie in [0, 1], else gaussian"
        out[name] = f"{text} (default {default_text}; kinds: {', '.join(defaults)})"
    return out


MODEL_OPTIONS = _model_option_help()


def _with_model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for name in reversed(MODEL_OPTIONS):
        f = click.option(f"--{name.replace('_', '-')}", name, default=None, metavar="VALUE",
                         help=MODEL_OPTIONS[name])(f)
    return f


_RESUME_MAY_CHANGE = {"resume", "epochs", "quiet", "stop_after"}


@click.command(name="train")
@click.option("--kind", type=click.Choice(list(KINDS)), help="Autoencoder kind (or --model for your own).")
@click.option("--model", "model_spec", default=None, metavar="FILE.py:NAME",
              help="Your own nn.Module (a class or factory) instead of a built kind.")
@click.option("--arg", "model_arg", multiple=True, metavar="K=V", help="Constructor argument of --model.")
@click.option("--loss", default="auto", show_default=True,
              help="--model: mse, bce (the reconstruction error), recon (no KL), elbo, model (its loss(x)); "
                   "comma-separated, e.g. recon,bce.")
@click.option("--output", default=None, metavar="FIELD",
              help="--model: the field (or position) of forward's output that is the reconstruction.")
@click.option("--kl-warmup", type=COUNT, default=0, show_default=True,
              help="VAEs: epochs over which the KL weight ramps from 0 to 1.")
@click.option("--free-bits", type=NON_NEGATIVE_FLOAT, default=0.0, show_default=True,
              help="VAEs: nats; each latent dimension's batch-mean KL counts at least this much.")
@click.option("--log", type=click.Choice(["none", "tensorboard"]), default="none", show_default=True,
              help="tensorboard: event files in RUN/tensorboard too (history.csv is always written).")
@click.option("--data", help="Embedded set (see `aelab data list`) or a .npy/.npz/.csv file or a folder.")
@click.option("--data-opt", multiple=True, metavar="K=V",
              help="Data option: speech/wav frames=, stride=; csv label=; npz key=, label_key=; npy labels=FILE.")
@click.option("--latent", type=POSITIVE, default=16, show_default=True, help="Size of the code z.")
@click.option("--epochs", type=POSITIVE, default=None,
              help="Epochs to train, at least 1 (default 10); on --resume the new total, at least the epochs done.")
@click.option("--batch-size", type=POSITIVE, default=128, show_default=True, help="Global batch (split over ranks).")
@click.option("--lr", type=POSITIVE_FLOAT, default=1e-3, show_default=True, help="Peak learning rate (AdamW).")
@click.option("--weight-decay", type=NON_NEGATIVE_FLOAT, default=0.0, show_default=True)
@click.option("--schedule", type=click.Choice(SCHEDULES), default="cosine", show_default=True,
              help="Learning-rate schedule over all steps.")
@click.option("--warmup-epochs", type=COUNT, default=0, show_default=True, help="Linear warm-up length.")
@click.option("--val-fraction", type=Finite(0.0, 1.0, max_open=True), default=0.1, show_default=True,
              help="Share of the training rows held out for validation (0: none).")
@click.option("--patience", type=COUNT, default=0, show_default=True,
              help="Stop after this many epochs without a better validation loss (0: never).")
@click.option("--min-delta", type=NON_NEGATIVE_FLOAT, default=0.0, show_default=True,
              help="Smallest improvement that counts.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seeds init, split and shuffling.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp", type=click.Choice(["auto", "bf16", "off"]), default="auto", show_default=True,
              help="auto: bf16 autocast on CUDA only.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model and loss.")
@click.option("--grad-clip", type=NON_NEGATIVE_FLOAT, default=0.0, show_default=True,
              help="Max gradient norm (0: off).")
@click.option("--normalize", type=click.Choice(["auto", "none", "zscore", "minmax"]), default="auto",
              show_default=True, help="auto: z-scores for tables not in [0, 1], nothing otherwise.")
@click.option("--normal-class", type=INT64, default=None, help="One-class training: keep only this label.")
@click.option("--limit", type=POSITIVE, default=None, help="Train on at most this many rows (a seeded subset).")
@click.option("--skip-bad", is_flag=True, help="Leave out NaN/inf rows, empty files and odd shapes.")
@click.option("--keep-checkpoints", type=POSITIVE, default=2, show_default=True)
@click.option("--opt", multiple=True, metavar="K=V", help="Any model option as name=value.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (default runs/KIND-DATA).")
@click.option("--resume", type=click.Path(path_type=Path), default=None,
              help="Continue the run in this folder from its last complete epoch.")
@click.option("--stop-after", type=POSITIVE, default=None,
              help="End this invocation once the run has this many epochs (resume it later).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or epoch lines.")
@_with_model_options
@click.pass_context
def command(ctx: click.Context, **kw: Any) -> None:
    """Train an autoencoder; checkpoints every epoch into the run folder (resumable, atomic).

    Under `torchrun --nproc-per-node N -m aelab train ...` the ranks train data-parallel (DDP).
    """
    if kw["resume"] is not None:
        given = [name for name in ctx.params
                 if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE and name not in _RESUME_MAY_CHANGE]
        if given:
            flags = ", ".join("--" + n.replace("_", "-").rstrip("-") for n in given)
            raise UsageError(f"--resume continues the run with its own settings; drop {flags} (only --epochs "
                             "may change)")
        result = train(kw["resume"], None, epochs=kw["epochs"], quiet=kw["quiet"], stop_after=kw["stop_after"])
    else:
        config = _config(kw)
        name = config.model.rpartition(":")[2] if config.model else config.kind
        out = kw["out"] or Path("runs") / f"{name}-{Path(config.data).stem}"
        result = train(out, config, quiet=kw["quiet"], stop_after=kw["stop_after"])
    if result.main and not kw["quiet"]:
        best = ""
        if result.best_val is not None:
            best = f"; best validation loss {result.best_val:.5g} at epoch {result.best_epoch}"
        state = "finished" if result.finished else "stopped"
        weights = result.run_dir / "model.safetensors"
        click.echo(f"{state} after {result.epochs_done} epochs{best}; weights in {weights}")
        click.echo(f"next: aelab evaluate {result.run_dir}")


def _config(kw: dict[str, Any]) -> TrainConfig:
    if (kw["kind"] is None and kw["model_spec"] is None) or kw["data"] is None:
        raise UsageError("aelab train needs --kind (or --model FILE.py:Name) and --data (or --resume RUN)")
    if kw["kind"] is not None and kw["model_spec"] is not None:
        raise UsageError("give --kind or --model, not both")
    # `--hidden 64,32` is `hidden=64,32`: a Python literal ((64, 32)) or else the text; --opt items come last
    given = [f"{name}={kw[name]}" for name in MODEL_OPTIONS if kw.get(name) is not None]
    options = parse_kwargs(given + list(kw["opt"]))
    user: dict[str, Any] = {}
    if kw["model_spec"] is not None:
        from aelab.training.user import absolute_spec

        beta = options.pop("beta", 1.0)
        if options:
            raise UsageError(f"--model trains your own model: {', '.join('--' + k for k in options)} apply to "
                             "built kinds only (constructor arguments go in --arg)")
        user = {"model": absolute_spec(kw["model_spec"]), "model_args": parse_kwargs(list(kw["model_arg"])),
                "beta": float(beta), "loss": kw["loss"], "output": kw["output"]}
    elif kw["model_arg"] or kw["loss"] != "auto" or kw["output"] is not None:
        raise UsageError("--arg, --loss and --output go with --model (built kinds take --opt and their options)")
    config = TrainConfig(
        kind=kw["kind"] or "user", data=kw["data"], latent=kw["latent"], model_options=options, **user,
        kl_warmup=kw["kl_warmup"], free_bits=kw["free_bits"], log=kw["log"],
        data_options=parse_kwargs(list(kw["data_opt"])), epochs=kw["epochs"] or 10,
        batch_size=kw["batch_size"], lr=kw["lr"], weight_decay=kw["weight_decay"], schedule=kw["schedule"],
        warmup_epochs=kw["warmup_epochs"], val_fraction=kw["val_fraction"], patience=kw["patience"],
        min_delta=kw["min_delta"], seed=kw["seed"], device=kw["device"], amp=kw["amp"], compile=kw["compile_"],
        grad_clip=kw["grad_clip"], normalize=kw["normalize"], normal_class=kw["normal_class"],
        limit=kw["limit"], skip_bad=kw["skip_bad"], keep_checkpoints=kw["keep_checkpoints"])
    config.validate()
    return config
