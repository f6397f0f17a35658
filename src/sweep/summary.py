"""What a finished Optuna study says, as plain params, metrics, tables and matplotlib figures.

The sweeper hands these to the tracker for the sweep's MLflow parent run, and
the sweep report reads the same tables.
"""

from __future__ import annotations

import logging
import warnings

import optuna

from src.urls import redact

log = logging.getLogger(__name__)
TrialState = optuna.trial.TrialState


def trials_table(study: optuna.Study, objectives: list[str]) -> dict[str, list]:
    """One row per trial: number, state, objective values, params and the metrics its job recorded."""
    trials = study.get_trials(deepcopy=False)
    params = sorted({name for t in trials for name in t.params})
    metrics = sorted({name for t in trials for name in t.user_attrs.get("metrics", {})})
    table: dict[str, list] = {"number": [], "state": []}
    table.update({name: [] for name in objectives})
    table.update({f"param.{name}": [] for name in params})
    table.update({f"metric.{name}": [] for name in metrics})
    for trial in trials:
        table["number"].append(trial.number)
        table["state"].append(trial.state.name)
        values = trial.values or [None] * len(objectives)
        for name, value in zip(objectives, values):
            table[name].append(value)
        for name in params:
            table[f"param.{name}"].append(trial.params.get(name))
        for name in metrics:
            table[f"metric.{name}"].append(trial.user_attrs.get("metrics", {}).get(name))
    return table


def pareto_table(study: optuna.Study, objectives: list[str]) -> dict[str, list]:
    """The best trials (the Pareto front of a multi-objective study), one row each."""
    best = study.best_trials
    table = {"number": [t.number for t in best]}
    table.update({name: [t.values[i] for t in best] for i, name in enumerate(objectives)})
    for name in sorted({p for t in best for p in t.params}):
        table[f"param.{name}"] = [t.params.get(name) for t in best]
    return table


def study_summary(study: optuna.Study, objectives: list[str], storage: str | None):
    """``(params, metrics, tables)`` of a study for its MLflow parent run."""
    counts = {state: len(study.get_trials(deepcopy=False, states=(state,)))
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    directions = [d.name.lower() for d in study.directions]
    params = {"study_name": study.study_name,
              "storage": "in-memory" if storage is None else redact(storage),
              "objectives": ",".join(objectives), "directions": ",".join(directions)}
    metrics = {f"trials_{state.name.lower()}": float(n) for state, n in counts.items()}
    tables = {"trials.json": trials_table(study, objectives)}
    if counts[TrialState.COMPLETE]:
        tables["pareto_front.json"] = pareto_table(study, objectives)
        if len(directions) == 1:
            best = study.best_trial
            metrics[f"best_{objectives[0]}"] = float(best.value)
            metrics["best_trial"] = float(best.number)
            params.update({f"best.{name}": str(value) for name, value in best.params.items()})
        else:
            metrics["pareto_size"] = float(len(study.best_trials))
    return params, metrics, tables


def study_figures(study: optuna.Study, objectives: list[str]) -> dict:
    """Optuna's matplotlib plots of the study (history or Pareto front, and parameter importances).

    A plot the study cannot support yet (too few complete trials, one value
    per parameter) is skipped with a warning.
    """
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as plots

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return {}
    wanted = {}
    if len(objectives) == 1:
        wanted["optimization_history.png"] = lambda: plots.plot_optimization_history(
            study, target_name=objectives[0])
        wanted["param_importances.png"] = lambda: plots.plot_param_importances(study, target_name=objectives[0])
    else:
        wanted["pareto_front.png"] = lambda: plots.plot_pareto_front(study, target_names=objectives)
        for i, name in enumerate(objectives):
            wanted[f"param_importances_{name}.png"] = (
                lambda i=i, name=name: plots.plot_param_importances(study, target=lambda t: t.values[i],
                                                                    target_name=name))
    figures = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for file_name, plot in wanted.items():
            try:
                axes = plot()
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                log.warning("%s skipped: %s", file_name, exc)
                continue
            figure = getattr(axes, "figure", None) or axes.flat[0].figure
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            figures[file_name] = figure
    return figures
