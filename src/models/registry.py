"""The model registry: names to classes, and the factory that validates their arguments."""

from __future__ import annotations

from src.errors import LabError, check_choice
from src.models.autoencoder import ConvAutoencoder
from src.models.unet import UNet

MODELS = {"autoencoder": ConvAutoencoder, "unet": UNet}


def list_models() -> list[str]:
    return sorted(MODELS)


def create_model(name: str, **kwargs):
    """Build a registered model; ``kwargs`` are its constructor's (see its docstring)."""
    check_choice("name", name, MODELS)
    try:
        return MODELS[name](**kwargs)
    except TypeError as exc:
        raise LabError(f"name={name!r}: {exc}", key="name") from None
