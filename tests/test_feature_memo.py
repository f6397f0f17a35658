"""Features kept in memory across the runs of one process: computed once per frame and config, read-only."""

import numpy as np
import pytest
from hydra.types import RunMode
from omegaconf import OmegaConf

from src.data import FootballDataset
from src.features import ColorSpace, FeatureStack, PixelPosition, memo
from src.features.memo import MemoizedFeatures, config_key


@pytest.fixture(autouse=True)
def empty_store():
    memo.clear()
    yield
    memo.clear()


class Counting:
    def __init__(self, value=1.0):
        self.calls, self.value, self.tags = 0, value, {"kind": "counting"}

    def __call__(self, frame):
        self.calls += 1
        return np.full(frame.image.shape[:2] + (2,), self.value, np.float32)


def test_features_of_a_frame_are_computed_once_per_config(synthetic_root):
    frame = FootballDataset(str(synthetic_root), n_images=1, scale=8).frames()[0]
    inner = Counting()
    first = MemoizedFeatures(inner, "config a")
    again = MemoizedFeatures(inner, "config a")     # the next trial builds its stages anew
    assert first(frame) is again(frame) and inner.calls == 1
    other = Counting(2.0)
    assert MemoizedFeatures(other, "config b")(frame)[0, 0, 0] == 2.0 and other.calls == 1
    with pytest.raises(ValueError, match="read-only"):
        first(frame)[0, 0, 0] = 5.0
    assert first.tags == {"kind": "counting"}


def test_frames_in_memory_and_an_exhausted_budget_are_not_kept(synthetic_root):
    from dataclasses import replace
    frames = FootballDataset(str(synthetic_root), n_images=3, scale=8).frames()
    inner = Counting()
    features = MemoizedFeatures(inner, "config", max_bytes=frames[0].image.shape[0] * frames[0].image.shape[1] * 8)
    features(replace(frames[0], path=None))
    features(replace(frames[0], path=None))
    assert inner.calls == 2
    for frame in frames:
        features(frame)
    features(frames[-1])                        # the newest entry stays
    assert inner.calls == 5
    features(frames[0])                         # the oldest went over the budget
    assert inner.calls == 6


def test_a_sweep_config_builds_memoized_features_and_a_single_run_does_not(make_cfg, monkeypatch):
    from src import compose
    assert isinstance(compose.build_stages(make_cfg("data.cache_frames=true")).features, MemoizedFeatures)
    assert not isinstance(compose.build_stages(make_cfg("data.cache_frames=false")).features, MemoizedFeatures)
    single = compose.build_stages(make_cfg())
    assert not single.data.cache_frames and not isinstance(single.features, MemoizedFeatures)
    monkeypatch.setattr(compose.HydraConfig, "initialized", staticmethod(lambda: True))
    monkeypatch.setattr(compose.HydraConfig, "get", staticmethod(lambda: type("Job", (), {"mode": RunMode.MULTIRUN})))
    trial = compose.build_stages(make_cfg())
    assert trial.data.cache_frames and isinstance(trial.features, MemoizedFeatures)


def test_features_computed_in_frame_workers_are_kept_for_later_runs(make_cfg):
    from src.compose import build_stages
    from src.pipeline import evaluate

    stages = build_stages(make_cfg("data.cache_frames=true", "data.n_images=4"))
    first, _ = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess, workers=2)
    assert all(stages.features.holds(frame) for frame in stages.data.frames())

    class Refusing:
        combine = stages.features.combine

        def parts(self, frame):
            raise AssertionError("features computed again")

        __call__ = parts

    # the next trial forks its workers from this process, which now has every frame's features
    again = MemoizedFeatures(Refusing(), stages.features.config_key)
    second, _ = evaluate(stages.data, again, stages.clusterer, stages.postprocess, workers=2)
    assert [r.metrics for r in second] == [r.metrics for r in first]


def test_remembered_features_count_as_the_newest_entry(synthetic_root):
    frames = FootballDataset(str(synthetic_root), n_images=4, scale=8).frames()
    inner = Counting()
    entry = frames[0].image.shape[0] * frames[0].image.shape[1] * 2 * 4
    features = MemoizedFeatures(inner, "config", max_bytes=3 * entry)
    for frame in frames[:3]:
        features(frame)
    assert features.holds(frames[0]) and not features.holds(frames[3])
    features.remember(frames[0], np.full(frames[0].image.shape[:2] + (2,), 7.0, np.float32))
    features(frames[3])                         # over the budget: the oldest goes, which is frame 1 now
    assert features.holds(frames[0]) and not features.holds(frames[1])
    assert features(frames[0])[0, 0, 0] == 7.0 and inner.calls == 4


class CountingColor(ColorSpace):
    calls = 0

    def __call__(self, frame):
        CountingColor.calls += 1
        return super().__call__(frame)


@pytest.mark.parametrize("weight", [0.1, 0.8, 1.5])
def test_stacks_that_differ_in_weights_share_their_stored_blocks(synthetic_root, weight):
    from omegaconf import OmegaConf
    frame = FootballDataset(str(synthetic_root), n_images=1, scale=8).frames()[0]
    node = OmegaConf.create({"blocks": {"color": {"weight": 1.0}, "position": {"weight": 0.5}}})
    CountingColor.calls = 0
    MemoizedFeatures(FeatureStack({"color": CountingColor(), "position": PixelPosition(0.5)}), node)(frame)
    node.blocks.position.weight = weight
    stack = FeatureStack({"color": CountingColor(), "position": PixelPosition(weight)})
    stored = MemoizedFeatures(stack, node)(frame)
    assert CountingColor.calls == 1
    np.testing.assert_array_equal(stored, stack(frame))
    assert CountingColor.calls == 2


def test_the_store_key_tells_used_blocks_from_unused_ones_only():
    from omegaconf import OmegaConf

    def key(position, space="lab", weighted_later=True):
        return config_key(OmegaConf.create({"blocks": {"color": {"space": space, "weight": 1.0},
                                                       "position": {"weight": position}}}),
                          weighted_later=weighted_later)

    assert key(0.3) == key(1.2)
    assert key(0.3) != key(0.0) and key(0.3) != key(0.3, space="rgb")
    # features that are not stored before weighting keep every weight in their key
    assert key(0.3, weighted_later=False) != key(1.2, weighted_later=False)


def test_the_store_key_follows_the_content_of_a_checkpoint_file(tmp_path):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"first")
    node = OmegaConf.create({"blocks": {"learned": {"checkpoint": str(checkpoint), "layer": "code"}}})
    before = config_key(node)
    checkpoint.write_bytes(b"trained again")
    assert config_key(node) != before
    assert config_key(OmegaConf.create({"blocks": {"learned": {"checkpoint": "runs:/abc/model"}}})) == \
        config_key(OmegaConf.create({"blocks": {"learned": {"checkpoint": "runs:/abc/model"}}}))
