"""Pictures of a run (matplotlib, Agg, PNG): reconstructions, prior samples, the latent space, loss curves.

Each picture is one function of plain tensors and returns the path it wrote; none runs a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor


def _is_image(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[0] in (1, 3)


def _as_picture(t: Tensor) -> tuple[np.ndarray, str | None]:
    a = t.detach().float().clamp(0, 1).numpy()
    if a.shape[0] == 1:
        return a[0], "gray"
    return a.transpose(1, 2, 0), None


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def reconstructions(inputs: Tensor, recon: Tensor, kind: str, path: Path) -> Path:
    """Originals (top) beside their reconstructions (bottom): images, spectrograms or feature profiles."""
    n = min(len(inputs), 8 if kind != "spectrogram" else 4)
    shape = tuple(inputs.shape[1:])
    if kind == "spectrogram" or (len(shape) == 2 and not _is_image(shape)):
        fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 4.6), squeeze=False)
        for i in range(n):
            for row, (src, title) in enumerate(((inputs, "original"), (recon, "reconstruction"))):
                ax = axes[row][i]
                ax.imshow(src[i].float().numpy().T, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
                ax.set_title(f"{title} {i}", fontsize=8)
                ax.set_xlabel("frame", fontsize=7)
                ax.set_ylabel("frequency bin", fontsize=7)
        return _save(fig, path)
    if _is_image(shape):
        fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 2.9), squeeze=False)
        for i in range(n):
            for row, src in enumerate((inputs, recon)):
                pic, cmap = _as_picture(src[i])
                axes[row][i].imshow(pic, cmap=cmap, vmin=0, vmax=1)
                axes[row][i].axis("off")
        axes[0][0].set_title("original", fontsize=8, loc="left")
        axes[1][0].set_title("reconstruction", fontsize=8, loc="left")
        return _save(fig, path)
    fig, axes = plt.subplots(1, min(n, 4), figsize=(3.2 * min(n, 4), 2.8), squeeze=False)
    for i in range(min(n, 4)):
        ax = axes[0][i]
        ax.plot(inputs[i].flatten().float().numpy(), "o-", label="original", ms=3)
        ax.plot(recon[i].flatten().float().numpy(), "x--", label="reconstruction", ms=3)
        ax.set_xlabel("feature")
        ax.set_title(f"row {i}", fontsize=8)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def samples(drawn: Tensor, kind: str, path: Path) -> Path | None:
    """Draws from the prior, decoded; images and spectrograms only."""
    shape = tuple(drawn.shape[1:])
    if kind == "spectrogram":
        n = min(len(drawn), 4)
        fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.6), squeeze=False)
        for i in range(n):
            axes[0][i].imshow(drawn[i].float().numpy().T, origin="lower", aspect="auto", cmap="magma",
                              vmin=0, vmax=1)
            axes[0][i].set_title(f"sample {i}", fontsize=8)
        return _save(fig, path)
    if not _is_image(shape):
        return None
    n = len(drawn)
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows + 0.3), squeeze=False)
    for i in range(rows * cols):
        ax = axes[i // cols][i % cols]
        ax.axis("off")
        if i < n:
            pic, cmap = _as_picture(drawn[i])
            ax.imshow(pic, cmap=cmap, vmin=0, vmax=1)
    fig.suptitle("samples from the prior N(0, I)", fontsize=9)
    return _save(fig, path)


def latent_space(latents: Tensor, labels: Tensor | None, class_names: list[str] | None, path: Path,
                 max_points: int = 5000) -> Path:
    """Codes in 2-D coloured by label: the codes themselves when 2-wide, else their first two principal axes."""
    z = latents[:max_points].double().numpy()
    y = labels[:max_points].numpy() if labels is not None else None
    axis_names = ("z1", "z2")
    if z.shape[1] > 2:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2)
        z = pca.fit_transform(z)
        share = pca.explained_variance_ratio_
        axis_names = (f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%})")
    elif z.shape[1] == 1:
        z = np.concatenate([z, np.zeros_like(z)], axis=1)
        axis_names = ("z1", "")
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    if y is None:
        ax.scatter(z[:, 0], z[:, 1], s=4, alpha=0.6)
    else:
        classes = np.unique(y)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, c in enumerate(classes):
            name = class_names[c] if class_names and 0 <= c < len(class_names) else str(c)
            ax.scatter(z[y == c, 0], z[y == c, 1], s=4, alpha=0.6, color=cmap(i % cmap.N), label=name)
        ax.legend(fontsize=7, markerscale=3, loc="best")
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title("latent space (test rows)", fontsize=9)
    return _save(fig, path)


def loss_curves(history: list[dict[str, Any]], path: Path) -> Path | None:
    """Training and validation loss per epoch."""
    if not history:
        return None
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    ax.plot(epochs, [h["loss"] for h in history], "o-", label="train")
    if all("val_loss" in h for h in history):
        ax.plot(epochs, [h["val_loss"] for h in history], "s--", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)
