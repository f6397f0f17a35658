"""Registers the project's Optuna sweeper with Hydra, which only loads plugins from ``hydra_plugins``."""

from src.sweep.sweeper import OptunaSweeper


class LabOptunaSweeper(OptunaSweeper):
    """``src.sweep.sweeper.OptunaSweeper`` under the name Hydra's plugin discovery accepts."""
