"""Clusterers: ``fit_predict((H, W, C) features) -> (H, W) int labels``, -1 for noise."""

from src.clustering.auto_k import AutoKClusterer, elbow
from src.clustering.kmeans import KMeansClusterer
from src.clustering.ncut import NormalizedCutClusterer
from src.clustering.objectives import inertia, n_clusters, silhouette
from src.clustering.sklearn_pixels import (
                                           DBSCANClusterer,
                                           GaussianMixtureClusterer,
                                           HDBSCANClusterer,
                                           MeanShiftClusterer,
                                           MiniBatchKMeansClusterer,
                                           SampledClusterer,
)
from src.clustering.superpixels import (
                                           AgglomerativeClusterer,
                                           FelzenszwalbClusterer,
                                           SLICClusterer,
                                           SuperpixelFeatureClusterer,
                                           region_adjacency,
                                           segment_means,
)

__all__ = ["AgglomerativeClusterer", "AutoKClusterer", "DBSCANClusterer", "FelzenszwalbClusterer",
           "GaussianMixtureClusterer", "HDBSCANClusterer", "KMeansClusterer", "MeanShiftClusterer",
           "MiniBatchKMeansClusterer", "NormalizedCutClusterer", "SLICClusterer", "SampledClusterer",
           "SuperpixelFeatureClusterer", "elbow", "inertia", "n_clusters", "region_adjacency", "segment_means",
           "silhouette"]
