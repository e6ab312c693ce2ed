"""Your own nn.Module trained, evaluated and scored by aelab: read once (setup.py), run through UserModel."""

from __future__ import annotations

from aelab.models.user.adapter import Latent, UserModel
from aelab.models.user.reading import Reading
from aelab.models.user.setup import read_user_model, rebuild_user_model

__all__ = ["Latent", "Reading", "UserModel", "read_user_model", "rebuild_user_model"]
