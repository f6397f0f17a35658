"""The design's import rules (DESIGN.md, "Who may import whom"), read from the source with ``ast``.

- Stages do not import each other: data, features, clustering, postprocess and
  metrics each stand alone; what they share lives on its own (``src.frame``,
  ``src.errors``, ``src.labels``, ``src.devices``).
- Only ``src/tracking`` imports mlflow.
- Only the entry points, ``src/compose.py`` and ``src/sweep/`` import Hydra.
- The entry points never import each other; they and the sweeper build through ``src.compose``.
- A colour-only run imports no torch.

An exception to a rule is listed beside it with its reason.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SRC = ROOT / "src"
STAGES = ("data", "features", "clustering", "postprocess", "metrics")
# ``python -m src.<name>`` commands
ENTRY_POINTS = ("run", "train", "benchmark", "ui", "cleanup", "clip")
HYDRA_ALLOWED = {"src/run.py", "src/train.py", "src/benchmark.py", "src/compose.py"}
HYDRA_ALLOWED_UNDER = ("src/sweep/",)
MLFLOW_ALLOWED_UNDER = ("src/tracking/",)


def modules() -> dict[str, set[str]]:
    """Every module under src/ (path relative to the project) and the absolute module names it imports."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                # ``from src import viz`` imports the module src.viz
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                raise AssertionError(f"{path}: relative import; the project imports by absolute name")
        found[path.relative_to(ROOT).as_posix()] = imported
    return found


def stage_of(module_or_path: str) -> str | None:
    parts = module_or_path.removesuffix(".py").replace("/", ".").split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "src" and parts[1] in STAGES else None


def top(name: str) -> str:
    return name.split(".", 1)[0]


def test_the_scan_sees_the_source():
    found = modules()
    assert "src/compose.py" in found and "src.errors" in found["src/compose.py"]
    assert "mlflow" in found["src/tracking/mlflow_tracker.py"]
    assert (SRC / "sweep" / "__init__.py").is_file()


def test_stages_do_not_import_each_other():
    bad = [f"{path} imports {name}" for path, imported in modules().items() if (own := stage_of(path))
           for name in imported if stage_of(name) not in (None, own)]
    assert not bad, "\n".join(bad)


def test_only_tracking_imports_mlflow():
    bad = [f"{path} imports {name}" for path, imported in modules().items()
           if not path.startswith(MLFLOW_ALLOWED_UNDER) for name in imported if top(name) == "mlflow"]
    assert not bad, "\n".join(bad)


def test_only_entry_points_compose_and_the_sweep_package_import_hydra():
    bad = [f"{path} imports {name}" for path, imported in modules().items()
           if path not in HYDRA_ALLOWED and not path.startswith(HYDRA_ALLOWED_UNDER)
           for name in imported if top(name) == "hydra"]
    assert not bad, "\n".join(bad)


def test_entry_points_and_the_sweeper_do_not_import_entry_points():
    entry_modules = {f"src.{name}" for name in ENTRY_POINTS}
    importers = [f"src/{name}.py" for name in ENTRY_POINTS] + [p for p in modules() if p.startswith("src/sweep/")]
    found = modules()
    bad = [f"{path} imports {name}" for path in importers for name in found[path] if name in entry_modules]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", ["src.run", "src.benchmark", "src.sweep.sweeper"])
def test_builders_go_through_compose(module):
    assert "src.compose" in modules()[f"{module.replace('.', '/')}.py"]


def test_a_colour_run_imports_no_torch(synthetic_root, tmp_path):
    """Building the default (colour) stages and loading the pipeline leaves torch unimported."""
    code = (
        "import sys\n"
        "from src.compose import build, load_config\n"
        f"cfg = load_config(['data.root={synthetic_root}', 'paths.cache_dir={tmp_path}'])\n"
        "for group in ('data', 'features', 'clusterer', 'postprocess'):\n"
        "    build(cfg[group], group)\n"
        "import src.pipeline, src.run\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
