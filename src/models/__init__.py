"""Networks trained on frames: a convolutional autoencoder and a U-Net (imports torch).

One factory, ``create_model``, and a registry, ``list_models``. Every model
names the maps it can hand to a feature extractor, with their channels and
reductions (``feature_info``), so callers never hard-code sizes.
"""

from src.models.registry import create_model, list_models

__all__ = ["create_model", "list_models"]
