"""Networks trained on frames: a convolutional autoencoder and a U-Net (imports torch).

The ``model`` config group names a class by ``_target_`` (``src.models.UNet``)
with its arguments; a checkpoint names its architecture in the registry
(``create_model``, ``list_models``, ``model_name``). Every model names the
maps it can hand to a feature extractor, with their channels and reductions
(``feature_info``), so callers never hard-code sizes, and says what it is
trained for (``task``).
"""

from src.models.autoencoder import ConvAutoencoder
from src.models.registry import create_model, list_models, model_name
from src.models.unet import UNet

__all__ = ["ConvAutoencoder", "UNet", "create_model", "list_models", "model_name"]
