"""A trained model on disk: ``model.json`` (architecture, arguments, task, training frames) and ``weights.pt``."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from src.errors import LabError
from src.models.registry import create_model, model_name
from src.torch_threads import torch_threads


def model_folder(models_dir: str | Path, model: torch.nn.Module) -> Path:
    """``<models_dir>/<architecture>_<task>``: where training writes ``model`` unless told otherwise, and where
    the learned feature sets (``conf/features``) look for it."""
    return Path(models_dir) / f"{model_name(model)}_{model.task}"


def save_model(model: torch.nn.Module, folder: str | Path, *, name: str, kwargs: dict, task: str,
               meta: dict | None = None) -> Path:
    """Write the weights and the description that rebuilds ``model``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "weights.pt")
    (folder / "model.json").write_text(json.dumps({"name": name, "kwargs": kwargs, "task": task, **(meta or {})},
                                                  indent=1))
    return folder


def load_model(folder: str | Path, *, option: str, expected: str | None = None) -> tuple[torch.nn.Module, dict]:
    """Rebuild a saved model in eval mode; returns it and its description.

    ``expected`` is the architecture the caller asked for; a checkpoint of
    another one is refused with one line that names ``option``.
    """
    folder = Path(folder)
    description_file, weights_file = folder / "model.json", folder / "weights.pt"
    if not description_file.is_file() or not weights_file.is_file():
        raise LabError(f"{option}={str(folder)!r} holds no trained model (model.json and weights.pt); train one "
                       "with `python -m src.train` or give a runs:/<run_id>/model URI", key=option)
    description = json.loads(description_file.read_text())
    if expected is not None and description.get("name") != expected:
        raise LabError(f"{option}={str(folder)!r} is a {description.get('name')!r} checkpoint, not {expected!r}; "
                       f"give a {expected} checkpoint or set the architecture to {description.get('name')!r}",
                       key=option)
    # on one thread: loading on several starts OpenMP's thread pool, and frame workers forked from this process
    # afterwards (src.parallel) hang in their first torch call
    with torch_threads(1):
        model = create_model(description["name"], **description["kwargs"])
        try:
            model.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
        except (RuntimeError, KeyError) as exc:
            raise LabError(f"{option}={str(folder)!r}: weights.pt does not fit the architecture in model.json "
                           f"({str(exc).splitlines()[0][:120]})", key=option) from None
    return model.eval(), description
