"""Pixel features: ``(Frame) -> (H, W, C) float32``."""

from src.features.blocks import COLOR_SPACES, ColorSpace, PixelPosition, Texture
from src.features.stack import FeatureStack, standardize

__all__ = ["COLOR_SPACES", "ColorSpace", "FeatureStack", "PixelPosition", "Texture", "standardize"]
