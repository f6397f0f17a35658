"""Clusterers: ``fit_predict((H, W, C) features) -> (H, W) int labels``, -1 for noise."""

from src.clustering.kmeans import KMeansClusterer
from src.clustering.objectives import inertia, n_clusters, silhouette
from src.clustering.sklearn_pixels import (DBSCANClusterer, GaussianMixtureClusterer, HDBSCANClusterer,
                                           MeanShiftClusterer, MiniBatchKMeansClusterer, SampledClusterer)
from src.clustering.superpixels import (AgglomerativeClusterer, FelzenszwalbClusterer, SLICClusterer,
                                        region_adjacency)

__all__ = ["AgglomerativeClusterer", "DBSCANClusterer", "FelzenszwalbClusterer", "GaussianMixtureClusterer",
           "HDBSCANClusterer", "KMeansClusterer", "MeanShiftClusterer", "MiniBatchKMeansClusterer", "SLICClusterer",
           "SampledClusterer", "inertia", "n_clusters", "region_adjacency", "silhouette"]
