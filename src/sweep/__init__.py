"""Sweeps: the Optuna sweeper, a job's handle on its trial, the multirun's parent run, study summaries and
trial export.

Nothing is imported here, so that Hydra's callback import of ``src.sweep.parent_run`` stays light.
"""
