"""What a training run is asked to do: one dataclass, stored as JSON in the run folder."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from aelab.errors import UsageError

SCHEDULES = ("constant", "cosine", "step")


@dataclass
class TrainConfig:
    """Every choice that shapes a run; `to_dict`/`from_dict` round-trip it through JSON exactly."""

    kind: str
    data: str
    latent: int
    model_options: dict[str, Any] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: int = 0
    val_fraction: float = 0.1
    patience: int = 0  # epochs without a better validation loss before stopping; 0 never stops early
    min_delta: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # "auto": bf16 autocast on CUDA, none on CPU; "bf16"; "off"
    compile: bool = False
    grad_clip: float = 0.0  # max gradient norm; 0 leaves gradients alone
    normalize: str = "auto"
    normal_class: int | None = None  # one-class training: keep only training rows with this label
    limit: int | None = None  # use at most this many training rows (quick runs)
    skip_bad: bool = False
    keep_checkpoints: int = 2
    # a user's own model (kind "user"): its spec FILE.py:Name (absolute path) and constructor arguments
    model: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    loss: str = "auto"  # user models: auto, mse, bce, recon, elbo, model (comma-separated)
    output: str | None = None  # user models: the field of forward's output holding the reconstruction
    beta: float = 1.0  # user models' KL weight (built VAEs take --beta as a model option)
    kl_warmup: int = 0  # epochs over which the KL weight ramps linearly from 0 to 1
    free_bits: float = 0.0  # nats: the floor of each latent dimension's batch-mean KL
    log: str = "none"  # "tensorboard": event files in RUN/tensorboard as well

    def validate(self) -> None:
        """Raise UsageError, one sentence, for a value that cannot work."""
        checks = [
            (self.latent >= 1, f"--latent must be at least 1, got {self.latent}"),
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"--lr must be a positive number, got {self.lr}"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}"),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
             "--warmup-epochs must be smaller than --epochs"),
            (0.0 <= self.val_fraction < 1.0, f"--val-fraction must be in [0, 1), got {self.val_fraction}"),
            (self.patience >= 0, f"--patience must be >= 0, got {self.patience}"),
            (self.amp in ("auto", "bf16", "off"), "--amp must be auto, bf16 or off"),
            (self.grad_clip >= 0, f"--grad-clip must be >= 0, got {self.grad_clip}"),
            (self.limit is None or self.limit >= 1, "--limit must be at least 1"),
            (self.keep_checkpoints >= 1, "--keep-checkpoints must be at least 1"),
            (self.kind != "user" or self.model is not None, "kind 'user' needs --model FILE.py:Name"),
            (self.beta >= 0, f"--beta must be >= 0, got {self.beta}"),
            (self.kl_warmup >= 0, f"--kl-warmup must be >= 0, got {self.kl_warmup}"),
            (self.free_bits >= 0, f"--free-bits must be >= 0, got {self.free_bits}"),
            (self.log in ("none", "tensorboard"), "--log must be none or tensorboard"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The config stored in a run folder, checked field by field (a hand-edited file says what is wrong)."""
        if not isinstance(d, dict):
            raise UsageError("the training config is not a JSON object")
        fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise UsageError(f"training config has unknown fields: {', '.join(unknown)}")
        for name, value in d.items():
            allowed = _JSON_TYPES.get(fields[name], (object,))
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise UsageError(f"training config field {name!r} is {value!r}, not {fields[name]}")
        config = cls(**d)
        config.validate()
        return config


#: the annotation of each TrainConfig field -> the JSON values it takes
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (float, int), "bool": (bool,), "dict[str, Any]": (dict,),
    "int | None": (int, type(None)), "str | None": (str, type(None)),
}
