"""``src.benchmark``: its rows, and the per-step timing of the post-processing chain behind them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from src.benchmark import format_table, measure
from src.compose import build
from src.postprocess import PostprocessChain
from tests.helpers import ROOT


def test_a_chain_adds_each_steps_seconds_under_its_name(make_cfg):
    chain = build(make_cfg().postprocess, "postprocess")
    labels = np.zeros((40, 60), np.int64)
    labels[10:30, 20:26] = 1
    image = np.zeros((40, 60, 3), np.uint8)
    image[:] = (40, 130, 40)
    image[10:30, 20:26] = (200, 30, 30)
    seconds = {"field": 1.0}
    first = chain(labels, image, seconds=seconds)
    assert list(seconds) == list(chain.steps)
    assert seconds["field"] > 1.0 and all(value >= 0 for value in seconds.values())
    # timing changes nothing of the result
    np.testing.assert_array_equal(first.mask, chain(labels, image).mask)


def test_measure_gives_the_stages_with_the_chains_steps_indented_under_postprocess(make_cfg):
    cfg = make_cfg("data.n_images=2")
    rows = measure(cfg, repeats=1)
    names = [name for name, _, _ in rows]
    steps = [f"  {name}" for name in build(cfg.postprocess, "postprocess").steps]
    at = names.index("postprocess")
    assert names[:at] == ["decode floor", "load", "features", "cluster"]
    assert names[at + 1:] == [*steps, "metrics", "total", "full decode"]
    assert all(median > 0 and low > 0 for _, median, low in rows)
    # one column layout for every row, however long a step's name
    assert len({len(line) for line in format_table(rows, "title").splitlines()[1:]}) == 1


@pytest.mark.parametrize("option", sorted(path.stem for path in (ROOT / "conf" / "postprocess").glob("*.yaml")))
def test_every_post_processing_option_is_a_chain_whose_steps_can_be_timed(make_cfg, option):
    assert isinstance(build(make_cfg(f"postprocess={option}").postprocess, "postprocess"), PostprocessChain)


@pytest.mark.parametrize("repeats, message", [("0", "repeats=0 is out of range; allowed [1, inf]"),
                                              ("abc", "repeats='abc' must be an integer")])
def test_a_bad_repeat_count_is_one_line_before_any_work(tmp_path, synthetic_root, repeats, message):
    proc = subprocess.run([sys.executable, "-m", "src.benchmark", f"data.root={synthetic_root}",
                           f"+repeats={repeats}", f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: {message}"]


def test_a_video_that_gives_no_frame_is_one_line_not_a_division_by_zero(make_cfg, tiny_video, monkeypatch):
    from src.benchmark import report
    from src.data.video import VideoFile
    from src.errors import LabError

    # a file whose frames all fail to decode, as a damaged recording's can
    monkeypatch.setattr(VideoFile, "stream", lambda self: iter(()))
    with pytest.raises(LabError, match=r"^data.path='.*tiny.mp4' gave no frame to time$"):
        report(make_cfg("data=video", f"data.path={tiny_video}"))


def test_a_mistyped_key_is_one_line_before_any_work(tmp_path, synthetic_root):
    proc = subprocess.run([sys.executable, "-m", "src.benchmark", f"data.root={synthetic_root}",
                           "clusterer.n_cluster=8", f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: clusterer.n_cluster=8: clusterer has no key 'n_cluster'")
