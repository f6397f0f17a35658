"""Tracking: turns config and results into MLflow params, metrics and artifacts."""

from src.tracking.mlflow_tracker import PARENT_RUN_FILE, MLflowTracker, flatten

__all__ = ["MLflowTracker", "PARENT_RUN_FILE", "flatten"]
