"""Draw every picture that fits a run into its folder; returns the paths written."""

from __future__ import annotations

from pathlib import Path

import torch

from aelab.evaluation import plots
from aelab.evaluation.report import Outputs
from aelab.models.kind import Capability
from aelab.training.rundir import LoadedRun


@torch.no_grad()
def draw_all(run: LoadedRun, outputs: Outputs, kind: str, out_dir: Path, n_samples: int = 32) -> list[Path]:
    """Reconstructions, prior samples (VAEs), the latent space and the loss curves."""
    written: list[Path | None] = [
        plots.reconstructions(outputs.inputs, outputs.reconstructions, kind, out_dir / "reconstructions.png")]
    if run.model.has(Capability.PRIOR_SAMPLE):
        drawn = run.model.sample(n_samples).float().cpu()
        written.append(plots.samples(drawn, kind, out_dir / "samples.png"))
    names = run.info.data.get("class_names")
    if outputs.latents.shape[1] > 0:  # a user model whose latent the bottleneck analysis did not find has none
        written.append(plots.latent_space(outputs.latents, outputs.labels, names, out_dir / "latent.png"))
    written.append(plots.loss_curves(run.history, out_dir / "loss.png"))
    return [p for p in written if p is not None]
