"""experiments/generality_report.py: every training seed of the U-Net holds out the same evaluation frames."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import generality_report  # noqa: E402


def test_each_unet_seed_holds_out_the_sample_the_variants_are_made_from(tmp_path):
    # data.seed follows the root seed unless pinned: a second seed would then train on evaluation frames
    configs = [generality_report.unet_config(tmp_path, seed) for seed in (0, 3)]
    assert [cfg.seed for cfg in configs] == [0, 3]
    assert {cfg.data.seed for cfg in configs} == {generality_report.SAMPLE_SEED}
    assert all(cfg.train.frames == "outside_eval" for cfg in configs)


def test_the_unet_row_gives_the_range_of_its_seeds():
    row = {"dice": 0.905, "dice_range": (0.9013, 0.914)}
    assert generality_report.dice_cell(row) == "0.905 (0.901–0.914)"
    assert generality_report.dice_cell({"dice": 0.8861}) == "0.886"
    assert [generality_report.count(v) for v in (0, 2.0, 1 / 3)] == ["0", "2", "0.3"]
