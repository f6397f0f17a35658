"""Post-processing: label map (+ image) -> binary player mask, components and centroids."""

from src.postprocess.chain import PlayerMask, PostprocessChain, connected_components
from src.postprocess.steps import (DropLargeClusters, EnclosedByField, FieldClusters, MaskState, RemoveSmall,
                                   RemoveThin, cluster_mean_colors)

__all__ = ["DropLargeClusters", "EnclosedByField", "FieldClusters", "MaskState", "PlayerMask", "PostprocessChain",
           "RemoveSmall", "RemoveThin", "cluster_mean_colors", "connected_components"]
