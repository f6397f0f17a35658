"""The model registry: names to classes, for checkpoints that say which architecture they hold."""

from __future__ import annotations

from src.errors import LabError, check_choice
from src.models.autoencoder import ConvAutoencoder
from src.models.unet import UNet

MODELS = {"autoencoder": ConvAutoencoder, "unet": UNet}


def list_models() -> list[str]:
    return sorted(MODELS)


def model_name(model) -> str:
    """The registry name of ``model``'s architecture (``"autoencoder"``, ``"unet"``), as checkpoints record it."""
    return next(name for name, cls in MODELS.items() if type(model) is cls)


def create_model(name: str, **kwargs):
    """Build a registered model; ``kwargs`` are its constructor's (see its docstring)."""
    check_choice("name", name, MODELS)
    try:
        return MODELS[name](**kwargs)
    except TypeError as exc:
        raise LabError(f"name={name!r}: {exc}", key="name") from None
