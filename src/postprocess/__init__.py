"""Post-processing: label map (+ image) -> binary player mask, components and centroids."""

from src.postprocess.chain import PlayerMask, PostprocessChain, connected_components, majority
from src.postprocess.edges import BlendedEdges
from src.postprocess.flat import RemoveFlat
from src.postprocess.grabcut import GrabCutRefine
from src.postprocess.graphics import RemoveGraphics
from src.postprocess.standing import StandingOnPitch, paired_legs, pitch_area
from src.postprocess.steps import (
                                   CloseMask,
                                   DropLargeClusters,
                                   EnclosedByField,
                                   FieldClusters,
                                   FillHoles,
                                   MaskState,
                                   MergeSimilarRegions,
                                   NoiseAsPlayers,
                                   ReclusterCandidates,
                                   RemoveLines,
                                   RemoveSmall,
                                   RemoveThin,
                                   cluster_mean_colors,
)

__all__ = ["BlendedEdges", "CloseMask", "DropLargeClusters", "EnclosedByField", "FieldClusters", "FillHoles",
           "GrabCutRefine", "MaskState", "MergeSimilarRegions", "NoiseAsPlayers", "PlayerMask", "PostprocessChain",
           "ReclusterCandidates", "RemoveFlat", "RemoveGraphics", "RemoveLines", "RemoveSmall", "RemoveThin",
           "StandingOnPitch", "cluster_mean_colors", "connected_components", "majority", "paired_legs",
           "pitch_area"]
