"""Save a study's best (or any) trial as a named experiment config.

``python -m src.sweep.export_trial kmeans_dice kmeans_tuned`` writes
``conf/experiment/kmeans_tuned.yaml``: the sweep's ``hparams_search`` overrides
that shape the runs (objective aside) plus the trial's parameters, so
``python -m src.run experiment=kmeans_tuned`` repeats the trial in one run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna
import yaml

from src.files import write_text_whole
from src.sweep.trial import FIXED_ATTR, SPACE_ATTR
from src.urls import redact

COMPLETE = optuna.trial.TrialState.COMPLETE

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"
# keys of a search space file that shape the sweep, not the runs' numbers
SWEEP_ONLY = ("defaults", "hydra", "objective", "logger")
# outputs a sweep's trials skip to save time; the exported experiment writes what a run writes
SWEEP_ONLY_OUTPUTS = ("data.write_masks",)
DEFAULT_STORAGE = f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'optuna.db'}"


def config_groups(conf_dir: Path = CONF_DIR) -> set[str]:
    return {p.name for p in conf_dir.iterdir() if p.is_dir() and p.name not in ("hydra", "experiment")}


def experiment_yaml(trial: optuna.trial.FrozenTrial, study_name: str, name: str, base: dict | None = None,
                    groups: set[str] | None = None) -> str:
    """A ``# @package _global_`` experiment file for ``trial``.

    Parameters
    ----------
    trial : FrozenTrial
        Its params are Hydra override keys (``clusterer.n_clusters``) or group
        choices (``clusterer``), as the project's sweeper names them.
    study_name : str
    name : str
        The experiment's name, also its ``task_name``.
    base : dict, optional
        The search space file's own ``defaults`` overrides and values that
        shape every trial (e.g. ``features: resnet``), as ``{"defaults": [...],
        "values": {dotted key: value}}``.
    groups : set of str
        Config group names; a param named like one becomes a defaults override.
    """
    groups = config_groups() if groups is None else groups
    base = base or {"defaults": [], "values": {}}
    defaults = list(base["defaults"])
    values: dict = {}
    for key, value in {**base["values"], **trial.params}.items():
        if isinstance(value, str) and value.startswith(("[", "{")):
            # the sweeper keeps a list or dict choice as its text (Optuna's choices are scalars): write the value
            value = yaml.safe_load(value)
        if key in groups:
            defaults = [d for d in defaults if f"override /{key}" not in d] + [f"override /{key}: {value}"]
            continue
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    # Hydra reads an override in a defaults list as a one-key mapping, not as a "key: value" string
    body = {"defaults": [dict([d.split(": ", 1)]) for d in defaults]} if defaults else {}
    body["task_name"] = name
    body.update(values)
    values_text = " ".join(f"{v:.6g}" for v in trial.values) if trial.values else "none"
    header = (f"# @package _global_\n# Trial {trial.number} of Optuna study {study_name!r} (objective value(s) "
              f"{values_text}), written by src.sweep.export_trial.\n")
    return header + yaml.safe_dump(body, sort_keys=False)


def search_space_base(study_name: str, space: str | None = None, conf_dir: Path = CONF_DIR) -> dict | None:
    """Defaults overrides and fixed values of a search space file: ``conf/hparams_search/<space>.yaml``
    (``""``: none, so nothing), or when ``space`` is None the file whose study is ``study_name`` (None if no
    file's is)."""
    if space == "":
        return {"defaults": [], "values": {}}
    paths = [conf_dir / "hparams_search" / f"{space}.yaml"] if space else \
        sorted((conf_dir / "hparams_search").glob("*.yaml"))
    for path in paths:
        spec = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
        if space or spec.get("hydra", {}).get("sweeper", {}).get("study_name") == study_name:
            defaults = [next(iter(d)) + ": " + str(next(iter(d.values()))) for d in spec.get("defaults", [])
                        if isinstance(d, dict) and "hydra/" not in next(iter(d))]
            values = _dotted({k: v for k, v in spec.items() if k not in SWEEP_ONLY})
            return {"defaults": defaults, "values": {k: v for k, v in values.items() if k not in SWEEP_ONLY_OUTPUTS}}
    return None


def _dotted(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        flat.update(_dotted(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return flat


def fixed_values(trial: optuna.trial.FrozenTrial) -> dict:
    """The fixed overrides the sweeper recorded on ``trial`` (``FIXED_ATTR``), read as Hydra reads them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    return {key.lstrip("+"): parser.parse_override(f"{key.lstrip('+')}={value}").value()
            for key, value in trial.user_attrs.get(FIXED_ATTR, {}).items()}


def load(study_name: str, storage: str) -> optuna.Study:
    """The study, or a one-line exit: a SQLite file that is not there (Optuna would make an empty one), a storage
    that cannot be opened, a study it does not hold."""
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        raise SystemExit(f"error: --storage={redact(storage)!r} is not a file; give the storage the sweep used")
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise SystemExit(f"error: study={study_name!r} is not in {redact(storage)}; "
                         "run its sweep first or give --storage") from None
    except Exception as exc:  # SQLAlchemy and Optuna raise many types for a storage that cannot be used
        raise SystemExit(redact(f"error: --storage={storage!r} cannot be used ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200]})")) from None


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", help="study name")
    parser.add_argument("name", help="experiment name: conf/experiment/<name>.yaml")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help="study storage URL (default: %(default)s)")
    parser.add_argument("--trial", type=int, default=None, help="trial number (default: the best trial)")
    parser.add_argument("--out", type=Path, default=None,
                        help="file to write (default: conf/experiment/<name>.yaml)")
    parser.add_argument("--space", default=None, metavar="NAME",
                        help="the conf/hparams_search file the study was swept with, or none (default: the one "
                             "the study records, else the one whose study_name is the study's)")
    parser.add_argument("--drop", action="append", default=[], metavar="KEY",
                        help="leave out a fixed value of the search space file and everything under it, e.g. "
                             "--drop data to score the trial on the default frames (repeatable)")
    args = parser.parse_args(argv)
    if args.trial is not None and args.trial < 0:
        parser.error(f"--trial={args.trial} is out of range; trial numbers start at 0")
    study = load(args.study, args.storage)
    if len(study.directions) > 1 and args.trial is None:
        raise SystemExit(f"error: study {args.study!r} has several objectives; pick a Pareto trial with --trial")
    complete = study.get_trials(deepcopy=False, states=(COMPLETE,))
    if args.trial is None and not complete:
        raise SystemExit(f"error: study {args.study!r} has no COMPLETE trial (it has {len(study.trials)}); "
                         "finish its sweep first")
    try:
        trial = study.best_trial if args.trial is None else study.trials[args.trial]
    except IndexError:
        raise SystemExit(f"error: --trial={args.trial} is not a trial of {args.study!r} (it has "
                         f"{len(study.trials)}, complete: {len(complete)}); omit it for the best trial") from None
    if trial.state != COMPLETE:
        raise SystemExit(f"error: --trial={args.trial} ended {trial.state.name}; export a COMPLETE trial")
    target = args.out or CONF_DIR / "experiment" / f"{args.name}.yaml"
    space = args.space if args.space is not None else study.user_attrs.get(SPACE_ATTR)
    if space is not None and space not in ("", "none") and \
            not (CONF_DIR / "hparams_search" / f"{space}.yaml").is_file():
        raise SystemExit(f"error: --space={space!r} is not a file of conf/hparams_search; choose one of "
                         f"{sorted(p.stem for p in (CONF_DIR / 'hparams_search').glob('*.yaml'))} or none")
    base = search_space_base(args.study, "" if space == "none" else space)
    if base is None:
        # the study's name is no space's (a renamed study): its fixed settings would be lost silently
        raise SystemExit(f"error: study {args.study!r} records no search space and no conf/hparams_search file "
                         "names it; give the file it was swept with as --space NAME, or --space none")
    # the sweep's own fixed overrides (command line, search space params) win over the file's values
    values = {**base["values"], **fixed_values(trial)}
    base["values"] = {key: value for key, value in values.items()
                      if not any(key == drop or key.startswith(f"{drop}.") for drop in args.drop)}
    text = experiment_yaml(trial, args.study, args.name, base)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_whole(target, text)
    except OSError as exc:
        raise SystemExit(f"error: --out={str(target)!r} cannot be written: {exc.strerror or exc}") from None
    print(f"{target}: trial {trial.number} of {args.study}, values {trial.values}")
    return target


if __name__ == "__main__":
    main()
