"""The GPU check's helpers (issue 17, target 5), on the CPU: the reference run through the device wrapper and the
frames and wheels list that experiments/device_pack.py packs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import device_pack  # noqa: E402
import dynaseg_speed  # noqa: E402

from src.data import FootballDataset  # noqa: E402


def reference_line(command):
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dynaseg_speed.REFERENCE_LINE.search(done.stdout)


@pytest.mark.skipif(not dynaseg_speed.REFERENCE.is_file(), reason="../shared/bench/reference_dfc.py is not here")
def test_the_reference_runs_its_own_loop_through_the_device_wrapper(synthetic_root):
    settings = [str(synthetic_root), "2", "32", "4", "1"]
    direct = reference_line([sys.executable, str(dynaseg_speed.REFERENCE), *settings])
    wrapped = reference_line([sys.executable, dynaseg_speed.__file__, "--reference-worker", "--device", "cpu",
                              "--reference", str(dynaseg_speed.REFERENCE), "--root", str(synthetic_root),
                              "--frames", "2", "--scale", "32", "--iterations", "4", "--threads", "1"])
    # the same frames, network and stop rule: the same number of iterations (labels decide when it stops)
    assert direct is not None and wrapped is not None
    assert wrapped.group(1) == direct.group(1)


def test_packed_frames_carry_exactly_their_own_annotations(tmp_path, synthetic_root, monkeypatch):
    monkeypatch.setattr(device_pack, "PACK", tmp_path / "pack")
    device_pack.pack_frames(synthetic_root, 3)
    packed = tmp_path / "pack" / "football"
    coco = json.loads((packed / "annotations" / "instances_default.json").read_text())
    names = sorted(p.name for p in (packed / "images").iterdir())
    assert sorted(image["file_name"] for image in coco["images"]) == names and len(names) == 3
    ids = {image["id"] for image in coco["images"]}
    source = json.loads((synthetic_root / "annotations" / "instances_default.json").read_text())
    assert coco["annotations"] == [a for a in source["annotations"] if a["image_id"] in ids]
    assert len(FootballDataset(root=str(packed), n_images=3).image_ids) == 3
    with pytest.raises(SystemExit, match=r"--frames=99 but .* has 6 annotated frames"):
        device_pack.pack_frames(synthetic_root, 99)


def test_the_wheels_list_is_what_the_project_needs_less_what_the_image_has(tmp_path):
    needed = device_pack.requirements(device_pack.PROJECT)
    assert {"hydra-core", "omegaconf", "mlflow", "optuna", "pycocotools", "torch"} <= set(needed)
    # MLflow's own requirements come along, transitively
    assert "sqlalchemy" in needed and "alembic" in needed
    kinds = tmp_path / "KINDS.md"
    kinds.write_text("| x | y |\n\nnvidia: Packages: absl-py, scikit-learn, torch, Pillow.\n")
    assert device_pack.image_packages(kinds) == {"absl-py", "scikit-learn", "torch", "pillow"}
    kinds.write_text("nothing listed\n")
    with pytest.raises(SystemExit, match=r"has no 'Packages:' line; give the names with --have"):
        device_pack.image_packages(kinds)


def test_the_gpu_section_is_spliced_into_the_speed_report_and_kept(tmp_path, monkeypatch, synthetic_root):
    import speed_report

    speed, report = tmp_path / "SPEED.md", tmp_path / "REPORT.md"
    speed.write_text("# Speed\n\nWritten by ...\n\n### Peak memory\n\nMeasured on 2026-12-02.\n\n| run |\n")
    report.write_text("# Report\n\n## Speed\n\nold\n\n## Later section\n\nkept\n")
    measured = tmp_path / "gpu_speed.md"
    measured.write_text(f"### {speed_report.GPU_TITLE}\n\nMeasured on 2026-12-04 by `experiments/gpu_speed.py` "
                        "on CUDA (a GPU).\n\n| precision | images_per_batch |\n")
    monkeypatch.setattr(speed_report, "SPEED", speed)
    monkeypatch.setattr(speed_report, "REPORT", report)
    monkeypatch.setenv("FOOTBALL_DATA", str(synthetic_root))
    everything = ["--skip", *speed_report.SECTIONS]
    for extra in (["--gpu", str(measured)], []):    # a later run without --gpu keeps the section
        monkeypatch.setattr(sys, "argv", ["speed_report.py", *everything, *extra])
        speed_report.main()
        text = speed.read_text()
        assert text.count(f"### {speed_report.GPU_TITLE}") == 1 and "on CUDA (a GPU)" in text
        assert "### Peak memory\n\nMeasured on 2026-12-02." in text
        assert "come from `experiments/gpu_speed.py` on a GPU machine" in text and "are unmeasured" not in text
        spliced = report.read_text()
        assert "on CUDA (a GPU)" in spliced and "old" not in spliced and "## Later section\n\nkept" in spliced
    measured.write_text("### Something else\n")
    monkeypatch.setattr(sys, "argv", ["speed_report.py", *everything, "--gpu", str(measured)])
    with pytest.raises(SystemExit, match=r"--gpu=.* does not start with '### GPU \(issue 17, target 5\)'"):
        speed_report.main()
