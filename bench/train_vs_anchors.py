"""aelab's trainer against the loops people write and against pythae and PyOD, in one run, on this machine.

1. Throughput: the same dense VAE (784-512-256-16, Bernoulli likelihood, 1.08 M parameters, batch 128;
   then a small one, 784-64-32-16 at batch 32, where the loop around a step matters more), the same
   Fashion-MNIST rows, optimizer (Adam, lr 1e-3, constant) and epochs, trained by
   - a tutorial loop: `TensorDataset` + `DataLoader(shuffle=True)`,
   - the best hand-written loop: the rows on the device, `x[perm[i:i + B]]`,
   - aelab's trainer (`aelab.training.train`, checkpointing every epoch),
   - pythae 0.1.2's `BaseTrainer` with the same architecture as a pythae `VAE`.
   The loops call the same `model.loss`; samples/s counts training steps only (no data loading, no
   model construction); aelab's wall time with its checkpoints is shown beside it.
2. Test NLL of the aelab and pythae VAEs just trained, with one estimator for both (importance
   sampling, K samples from each model's own q(z|x), the same test rows): lower is better.
3. One-class anomaly detection on Shuttle (train on the normal training rows, score the held-out
   rows): aelab's dense AE against PyOD's AutoEncoder (same widths) and PyOD's PCA; AUROC and AUPR; then
   `detect --fpr 0.05` (false alarms on the held-out normal rows, recall) beside PyOD's AutoEncoder at its
   default contamination threshold.
4. VQ-VAE on Fashion-MNIST: aelab's `vq-vae` and pythae's VQVAE around the same encoder and decoder:
   test MSE, codebook perplexity, samples/s.

    python bench/train_vs_anchors.py            # writes the `train` section of docs/benchmarks.md
    python bench/train_vs_anchors.py --quick    # fewer rows and samples (a smoke run; no doc update)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TQDM_DISABLE", "1")  # pythae's and PyOD's progress bars
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from aelab.data import load  # noqa: E402
from aelab.evaluation import importance_sampled  # noqa: E402
from aelab.models import build  # noqa: E402
from aelab.training import TrainConfig, load_run, train  # noqa: E402

LATENT, LR = 16, 1e-3


@dataclass(frozen=True)
class Arch:
    """The dense VAE 784-h1-h2-16 every contender trains, and the batch size."""

    hidden: tuple[int, int]
    batch: int

    @property
    def name(self) -> str:
        params = sum(p.numel() for p in _vae(self).parameters())
        widths = f"784-{self.hidden[0]}-{self.hidden[1]}-{LATENT}"
        return f"dense VAE {widths} ({params / 1e6:.2f} M parameters), batch {self.batch}"


BIG = Arch((512, 256), 128)  # the 1.08 M-parameter model of ANCHORS.md
SMALL = Arch((64, 32), 32)  # a step cheap enough for the loop around it to matter


def _vae(arch: Arch) -> Any:
    torch.manual_seed(0)
    return build("dense-vae", (1, 28, 28), LATENT, hidden=list(arch.hidden), likelihood="bernoulli")


def warm_up(x: Tensor, arch: Arch) -> None:
    """A few untimed steps, so no contender pays for the first kernels' one-off set-up."""
    model = _vae(arch)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    for i in range(20):
        loss = model.loss(x[i * arch.batch:(i + 1) * arch.batch]).total
        opt.zero_grad()
        loss.backward()
        opt.step()


def tutorial_loop(x: Tensor, epochs: int, arch: Arch) -> float:
    """The loop of the PyTorch tutorials: a DataLoader collating single samples into batches."""
    from torch.utils.data import DataLoader, TensorDataset

    model = _vae(arch)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(x), batch_size=arch.batch, shuffle=True)
    start = time.perf_counter()
    for _ in range(epochs):
        for (xb,) in loader:
            loss = model.loss(xb).total
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epochs * len(x) / (time.perf_counter() - start)


def hand_loop(x: Tensor, epochs: int, arch: Arch) -> float:
    """The fastest plain loop: rows already on the device, one gather per batch."""
    model = _vae(arch)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), arch.batch):
            loss = model.loss(x[perm[i:i + arch.batch]]).total
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epochs * len(x) / (time.perf_counter() - start)


def aelab_trainer(rows: int, epochs: int, out: Path, arch: Arch) -> tuple[float, float, Any]:
    """(samples/s over the training steps, samples/s end to end with checkpoints, the trained model)."""
    config = TrainConfig(kind="dense-vae", data="fashion-mnist", latent=LATENT,
                         model_options={"hidden": list(arch.hidden), "likelihood": "bernoulli"}, epochs=epochs,
                         batch_size=arch.batch, lr=LR, schedule="constant", val_fraction=0.0, limit=rows, seed=0)
    start = time.perf_counter()
    result = train(out, config, quiet=True)
    wall = time.perf_counter() - start
    seconds = sum(h["seconds"] for h in result.history)
    return epochs * rows / seconds, epochs * rows / wall, load_run(out).model


def _pythae_networks(hidden: tuple[int, int]) -> tuple[nn.Module, nn.Module]:
    """Encoder and decoder with aelab's architecture, as the pythae base classes it requires."""
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden[0]), nn.ReLU(),
                                      nn.Linear(hidden[0], hidden[1]), nn.ReLU())
            self.mean, self.log_var = nn.Linear(hidden[1], LATENT), nn.Linear(hidden[1], LATENT)

        def forward(self, x: Tensor) -> Any:
            h = self.body(x)
            return ModelOutput(embedding=self.mean(h), log_covariance=self.log_var(h))

    class Decoder(BaseDecoder):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(LATENT, hidden[1]), nn.ReLU(), nn.Linear(hidden[1], hidden[0]),
                                      nn.ReLU(), nn.Linear(hidden[0], 784), nn.Sigmoid())

        def forward(self, z: Tensor) -> Any:
            return ModelOutput(reconstruction=self.body(z).view(-1, 1, 28, 28))

    return Encoder(), Decoder()


class PythaeAsAelab(nn.Module):
    """A trained pythae VAE seen through the interface aelab's NLL estimator uses (no retraining)."""

    def __init__(self, vae: Any) -> None:
        super().__init__()
        self.vae = vae

    def check_target(self, x: Tensor) -> None:
        """BCE on probabilities needs data in [0, 1]; Fashion-MNIST's are."""
        assert bool(((x >= 0) & (x <= 1)).all())

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.vae.encoder(x)
        return out.embedding, out.log_covariance

    def log_px_given_z(self, x: Tensor, z: Tensor, *, check_range: bool = True) -> Tensor:
        if check_range:
            self.check_target(x)
        p = self.vae.decoder(z).reconstruction  # pythae's own BCE on the probabilities, as in its loss
        return -nn.functional.binary_cross_entropy(p, x, reduction="none").flatten(1).sum(1)


def pythae_trainer(x: Tensor, epochs: int, out: Path, arch: Arch) -> tuple[float, Any]:
    import logging

    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    logging.getLogger("pythae").setLevel(logging.WARNING)
    torch.manual_seed(0)
    encoder, decoder = _pythae_networks(arch.hidden)
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce"),
                encoder=encoder, decoder=decoder)
    config = BaseTrainerConfig(output_dir=str(out), num_epochs=epochs, learning_rate=LR,
                               per_device_train_batch_size=arch.batch, per_device_eval_batch_size=arch.batch,
                               no_cuda=True,
                               keep_best_on_train=True, seed=0)
    trainer = BaseTrainer(model=model, train_dataset=BaseDataset(x, torch.zeros(len(x))), training_config=config)
    start = time.perf_counter()
    trainer.train()
    return epochs * len(x) / (time.perf_counter() - start), trainer.model


def test_nll(model: Any, x: Tensor, samples: int) -> float:
    torch.manual_seed(1)
    model.eval()
    with torch.no_grad():
        parts = [importance_sampled(model, x[i:i + 50], samples).log_px for i in range(0, len(x), 50)]
    return float(-torch.cat(parts).mean())


def shuttle(epochs: int, out: Path, limit: int | None = None) -> list[tuple[str, float, float, float]]:
    """(tool, AUROC, AUPR, fit seconds) for the one-class protocol on Shuttle."""
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.pca import PCA
    from sklearn.metrics import average_precision_score, roc_auc_score

    from aelab.evaluation import detect

    ds = load("shuttle")
    assert ds.y is not None
    train_rows = ds.parts["train"][ds.y[ds.parts["train"]] == 0][:limit]
    test = ds.parts["test"]
    truth = ds.y[test].numpy()
    rows = []
    start = time.perf_counter()
    config = TrainConfig(kind="dense", data="shuttle", latent=3, model_options={"hidden": [32, 16]}, epochs=epochs,
                         batch_size=128, normal_class=0, val_fraction=0.0, seed=0, limit=limit)
    train(out, config, quiet=True)
    fit = time.perf_counter() - start
    det = detect(load_run(out), ds, test)
    rows.append(("aelab dense AE (9-32-16-3)", float(det.auroc or 0), float(det.aupr or 0), fit))
    x_train, x_test = ds.x[train_rows].numpy(), ds.x[test].numpy()
    anchors = {"PyOD AutoEncoder (9-32-16-3, its defaults: BN, dropout 0.2)":
               AutoEncoder(hidden_neuron_list=[32, 16, 3], epoch_num=epochs, batch_size=128, verbose=0,
                           random_state=0, device="cpu"),
               "PyOD PCA (its defaults)": PCA()}
    for name, detector in anchors.items():
        start = time.perf_counter()
        detector.fit(x_train)
        fit = time.perf_counter() - start
        scores = detector.decision_function(x_test)
        rows.append((name, float(roc_auc_score(truth, scores)), float(average_precision_score(truth, scores)), fit))
    return rows


def shuttle_fpr(epochs: int, out: Path, fpr: float = 0.05,
                limit: int | None = None) -> list[tuple[str, float, float, int]]:
    """(detector, threshold rule, false-alarm rate on the held-out normal rows, recall, flagged) on one split:
    aelab's `detect --fpr` (threshold from the run's own normal validation rows) and PyOD's AutoEncoder
    thresholded at its default contamination (0.1: its `predict`)."""
    from pyod.models.auto_encoder import AutoEncoder

    from aelab.evaluation import detect

    ds = load("shuttle")
    assert ds.y is not None
    test = ds.parts["test"]
    truth = ds.y[test].numpy().astype(bool)
    config = TrainConfig(kind="dense", data="shuttle", latent=3, model_options={"hidden": [32, 16]}, epochs=epochs,
                         batch_size=128, normal_class=0, val_fraction=0.1, seed=0, limit=limit)
    train(out, config, quiet=True)
    det = detect(load_run(out), ds, test, fpr=fpr)
    assert det.flags is not None
    flags = det.flags.numpy()
    rows = [(f"aelab dense AE, `detect --fpr {fpr}`", float((flags & ~truth).sum() / (~truth).sum()),
             float((flags & truth).sum() / truth.sum()), int(flags.sum()))]
    train_rows = ds.parts["train"][ds.y[ds.parts["train"]] == 0][:limit]
    pyod = AutoEncoder(hidden_neuron_list=[32, 16, 3], epoch_num=epochs, batch_size=128, verbose=0, random_state=0,
                       device="cpu")
    pyod.fit(ds.x[train_rows].numpy())
    flagged = pyod.predict(ds.x[test].numpy()).astype(bool)
    rows.append((f"PyOD AutoEncoder, default contamination {pyod.contamination}",
                 float((flagged & ~truth).sum() / (~truth).sum()), float((flagged & truth).sum() / truth.sum()),
                 int(flagged.sum())))
    return rows


def _vq_networks(model: Any) -> tuple[nn.Module, nn.Module]:
    """aelab's vq-vae encoder and decoder (copied, same weights) as the pythae base classes VQVAE requires."""
    import copy

    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.body = copy.deepcopy(model.encoder)

        def forward(self, x: Tensor) -> Any:
            return ModelOutput(embedding=self.body(x))

    class Decoder(BaseDecoder):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.body = copy.deepcopy(model.decoder)

        def forward(self, z: Tensor) -> Any:
            return ModelOutput(reconstruction=self.body(z))

    return Encoder(), Decoder()


def _perplexity(indices: Tensor, codes: int) -> float:
    p = torch.bincount(indices.reshape(-1), minlength=codes).double()
    p = p[p > 0] / p.sum()
    return float(torch.exp(-(p * p.log()).sum()))


def vq_vae(rows: int, test_rows: int, epochs: int, out: Path, codes: int = 128,
           latent: int = 16) -> list[tuple[str, float, float, float]]:
    """(tool, test MSE per element, codebook perplexity on the test rows, training samples/s): aelab's vq-vae
    and pythae's VQVAE (EMA codebook, same decay and commitment) around the same encoder and decoder."""
    import logging

    from pythae.data.datasets import BaseDataset
    from pythae.models import VQVAE, VQVAEConfig
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    logging.getLogger("pythae").setLevel(logging.WARNING)
    ds = load("fashion-mnist")
    x_test = ds.x[ds.parts["test"][:test_rows]].float()
    options = {"channels": [32, 64], "codes": codes, "commitment": 0.25, "decay": 0.99}
    config = TrainConfig(kind="vq-vae", data="fashion-mnist", latent=latent, model_options=options, epochs=epochs,
                         batch_size=128, lr=LR, schedule="constant", val_fraction=0.0, limit=rows, seed=0)
    result = train(out / "aelab", config, quiet=True)
    model = load_run(out / "aelab").model
    with torch.no_grad():
        mse = float(((model(x_test).reconstruction - x_test) ** 2).mean())
        idx = model.quantizer.indices(model.encoder(x_test))
    table = [("aelab vq-vae", mse, _perplexity(idx, codes), epochs * rows / sum(h["seconds"] for h in result.history))]

    torch.manual_seed(0)
    encoder, decoder = _vq_networks(build("vq-vae", (1, 28, 28), latent, **options))
    pythae = VQVAE(VQVAEConfig(input_dim=(1, 28, 28), latent_dim=latent, num_embeddings=codes, use_ema=True,
                               decay=0.99, commitment_loss_factor=0.25), encoder=encoder, decoder=decoder)
    subset = ds.parts["train"][torch.randperm(60_000, generator=torch.Generator().manual_seed(0))[:rows]]
    x = ds.x[subset].float()
    trainer_config = BaseTrainerConfig(output_dir=str(out / "pythae"), num_epochs=epochs, learning_rate=LR,
                                       per_device_train_batch_size=128, per_device_eval_batch_size=128,
                                       no_cuda=True, keep_best_on_train=True, seed=0)
    trainer = BaseTrainer(model=pythae, train_dataset=BaseDataset(x, torch.zeros(len(x))),
                          training_config=trainer_config)
    start = time.perf_counter()
    trainer.train()
    rate = epochs * rows / (time.perf_counter() - start)
    trained = trainer.model.eval()
    with torch.no_grad():
        got = trained({"data": x_test})
        mse = float(((got.recon_x - x_test) ** 2).mean())
        table.append(("pythae 0.1.2 VQVAE (use_ema)", mse, _perplexity(got.quantized_indices, codes), rate))
    return table


def throughput(x: Tensor, rows: int, epochs: int, rounds: int, tmp: Path, notes: list[str],
               arch: Arch) -> dict[str, list[float]]:
    """samples/s of every contender, `rounds` times, the order rotated each round (load changes hit all)."""
    warm_up(x, arch)
    tag = f"{arch.hidden[0]}-{arch.batch}"
    contenders = {
        "tutorial": lambda r: tutorial_loop(x, epochs, arch),
        "hand": lambda r: hand_loop(x, epochs, arch),
        "aelab": lambda r: aelab_trainer(rows, epochs, tmp / f"aelab{tag}-{r}", arch)[0:2],
        "pythae": lambda r: pythae_trainer(x, epochs, tmp / f"pythae{tag}-{r}", arch)[0],
    }
    rates: dict[str, list[float]] = {k: [] for k in [*contenders, "aelab_wall"]}
    names = list(contenders)
    failed = False
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if name == "pythae" and failed:
                continue
            try:
                got = contenders[name](r)
            except Exception as exc:  # recorded in the table, never faked
                if name != "pythae":
                    raise
                notes.append(f"pythae failed: {type(exc).__name__}: {exc}")
                failed = True
                continue
            if name == "aelab":
                rates["aelab"].append(got[0])
                rates["aelab_wall"].append(got[1])
            else:
                rates[name].append(got)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, no doc update")
    parser.add_argument("--rows", type=int, default=20_000, help="Fashion-MNIST training rows")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (median reported)")
    parser.add_argument("--nll-epochs", type=int, default=5, help="epochs of the two VAEs compared by NLL")
    parser.add_argument("--nll-rows", type=int, default=500)
    parser.add_argument("--nll-samples", type=int, default=1000)
    parser.add_argument("--shuttle-epochs", type=int, default=5)
    parser.add_argument("--vq-rows", type=int, default=20_000, help="Fashion-MNIST rows for the VQ-VAE comparison")
    parser.add_argument("--vq-epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:  # every stage once, tiny: tests/bench/test_bench_quick.py runs this so the script cannot rot
        args.rows, args.rounds, args.nll_epochs, args.nll_rows, args.nll_samples, args.shuttle_epochs = \
            256, 1, 1, 16, 4, 1
        args.vq_rows, args.vq_epochs = 256, 1
    load_before = os.getloadavg()[0]
    ds = load("fashion-mnist")
    subset = ds.parts["train"][torch.randperm(60_000, generator=torch.Generator().manual_seed(0))[:args.rows]]
    x = ds.x[subset].contiguous()
    x_test = ds.x[ds.parts["test"][: args.nll_rows]].contiguous()
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        rates = {arch: throughput(x, args.rows, args.epochs, args.rounds, Path(tmp), notes, arch)
                 for arch in (BIG, SMALL)}
        nll: dict[str, float] = {}
        _, _, aelab_model = aelab_trainer(args.rows, args.nll_epochs, Path(tmp) / "aelab-nll", BIG)
        nll["aelab"] = test_nll(aelab_model, x_test, args.nll_samples)
        if rates[BIG]["pythae"]:
            _, pythae_model = pythae_trainer(x, args.nll_epochs, Path(tmp) / "pythae-nll", BIG)
            nll["pythae"] = test_nll(PythaeAsAelab(pythae_model), x_test, args.nll_samples)
        limit = 1000 if args.quick else None
        detection = shuttle(args.shuttle_epochs, Path(tmp) / "shuttle", limit)
        thresholds = shuttle_fpr(args.shuttle_epochs, Path(tmp) / "shuttle-fpr", limit=limit)
        vq = vq_vae(args.vq_rows, args.nll_rows * 4, args.vq_epochs, Path(tmp) / "vq")
    load_after = os.getloadavg()[0]
    text = _table(args, rates, nll, detection, notes, load_before, load_after)
    text += _more_tables(args, thresholds, vq)
    print(text)
    if not args.quick:
        from _table import write_section

        print(f"written to {write_section('train', text)}")


def _more_tables(args: Any, thresholds: list[tuple[str, float, float, int]],
                 vq: list[tuple[str, float, float, float]]) -> str:
    lines = ["", "Shuttle, a threshold without labelled anomalies (the same split; the run keeps 10% of its normal "
             "training rows for validation, the threshold is their 0.95 quantile): the false-alarm rate measured on "
             "the 9,116 held-out normal rows (target 5% ± 1 point) and the recall of the 703 anomalies.", "",
             "| detector, threshold | false alarms (held-out normal) | recall | flagged |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {fa:.2%} | {rec:.4f} | {n:,} |" for name, fa, rec, n in thresholds]
    lines += ["", f"VQ-VAE on Fashion-MNIST: the same conv encoder/decoder (aelab's `vq-vae`, channels 32, 64, a 7x7 "
              f"grid of 16-wide codes, 128 codes, EMA decay 0.99, commitment 0.25; pythae gets copies of the same "
              f"modules), {args.vq_rows:,} training rows, {args.vq_epochs} epoch(s), Adam lr {LR:g}, batch 128; "
              f"test MSE per element and codebook perplexity on {args.nll_rows * 4:,} test rows; samples/s over "
              "training (pythae: its trainer's wall time).", "",
              "| model | test MSE | perplexity | samples/s |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {mse:.5f} | {ppl:.1f} | {rate:,.0f} |" for name, mse, ppl, rate in vq]
    if len(vq) == 2:
        lines += ["", f"aelab/pythae: test MSE {vq[0][1] / vq[1][1]:.2f}x, throughput {vq[0][3] / vq[1][3]:.2f}x "
                  "(targets: lower MSE, >= 1.2x samples/s)."]
    return "\n".join(lines) + "\n"


def _median(values: list[float]) -> float:
    return float(np.median(values))


def _rate(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{_median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def _throughput_rows(rates: dict[str, list[float]]) -> list[str]:
    aelab = _median(rates["aelab"])
    lines = ["| trainer | samples/s | aelab is | target |", "|---|---:|---:|---|",
             f"| tutorial `DataLoader` loop | {_rate(rates['tutorial'])} | "
             f"{aelab / _median(rates['tutorial']):.2f}× as fast | ≥ 5× |",
             f"| hand-written device-resident loop | {_rate(rates['hand'])} | "
             f"{aelab / _median(rates['hand']):.2f}× as fast | ≥ 0.9× |"]
    if rates["pythae"]:
        lines.append(f"| pythae 0.1.2 `BaseTrainer` | {_rate(rates['pythae'])} | "
                     f"{aelab / _median(rates['pythae']):.2f}× as fast | ≥ 2× |")
    else:
        lines.append("| pythae 0.1.2 `BaseTrainer` | failed (see below) | | ≥ 2× |")
    wall = _rate(rates["aelab_wall"])
    return [*lines, f"| **aelab** trainer (training steps) | **{_rate(rates['aelab'])}** | | |",
            f"| aelab end to end (data load, setup, a checkpoint every epoch) | {wall} | | |"]


def _table(args: Any, rates: dict[Arch, dict[str, list[float]]], nll: dict[str, float],
           detection: list[tuple[str, float, float, float]], notes: list[str], load_before: float,
           load_after: float) -> str:
    import pyod

    lines = [
        "## Training, NLL and anomaly detection vs the anchors", "",
        f"`python bench/train_vs_anchors.py` — torch {torch.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} cores, {torch.get_num_threads()} thread(s); pythae 0.1.2, PyOD {pyod.__version__}. "
        f"Load average {load_before:.1f} before, {load_after:.1f} after (other work shared the cores: compare "
        "rows of one run, not runs).", "",
        f"Throughput: {args.rows:,} Fashion-MNIST training rows, Bernoulli likelihood, Adam lr {LR:g} (constant), "
        f"{args.epochs} epoch(s) per round from a fresh model, {args.rounds} rounds in rotating order: "
        "median (min–max). Every loop calls the same `model.loss`.", ""]
    for arch, got in rates.items():
        lines += [f"{arch.name}:", "", *_throughput_rows(got), ""]
    lines += [f"Test NLL: each {BIG.name.split(', batch')[0]} trained {args.nll_epochs} epochs on those rows "
              f"(batch {BIG.batch}), then the first {args.nll_rows} test rows scored by importance sampling with "
              f"K = {args.nll_samples} from the model's own q(z|x) (one estimator for both):", "",
              "| model | NLL (nats, lower is better) |", "|---|---:|"]
    lines += [f"| {'aelab dense-vae' if k == 'aelab' else 'pythae VAE, same architecture'} | {v:.2f} |"
              for k, v in nll.items()]
    lines += ["", "Shuttle, one class: trained on the normal training rows, scored on the 9,819 held-out rows "
              f"(703 anomalies); {args.shuttle_epochs} epochs for both autoencoders, batch 128.", "",
              "| detector | AUROC | AUPR | fit (s) |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {auroc:.4f} | {aupr:.4f} | {fit:.1f} |" for name, auroc, aupr, fit in detection]
    lines += [f"\n{note}" for note in notes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
