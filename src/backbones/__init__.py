"""CNN backbones (timm) with offline weight loading; importing this imports torch."""

from src.backbones.factory import Backbone, create_backbone, list_backbones
from src.backbones.weights import OFFLINE_WEIGHTS, list_offline_weights, map_by_order, offline_state_dict

__all__ = ["Backbone", "OFFLINE_WEIGHTS", "create_backbone", "list_backbones", "list_offline_weights", "map_by_order",
           "offline_state_dict"]
