"""Clusterers: ``fit_predict((H, W, C) features) -> (H, W) int labels``, -1 for noise."""

from src.clustering.kmeans import KMeansClusterer
from src.clustering.objectives import inertia, n_clusters, silhouette

__all__ = ["KMeansClusterer", "inertia", "n_clusters", "silhouette"]
