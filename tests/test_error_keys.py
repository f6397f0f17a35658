"""Contract: a bad number in any option of any config group fails in one line that starts with a real key.

Stages name only their own parameter (``max_distance=-1 is out of range``);
``src.compose.build`` puts the path of the failing node in front. For every
option YAML of every group, each numeric leaf of its node is set to values a
check should refuse, the node is built, and the key the LabError starts with
must exist in the composed config (``postprocess.steps.field.max_distance``,
not ``postprocess.field.max_distance``).
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

import src.backbones
from src.compose import build, keyed
from src.errors import LabError
from tests.helpers import CONF_DIR

BAD_VALUES = (-1, 10**9)
GROUPS = ("clusterer", "features", "postprocess", "data", "logger", "backbone", "model")
# a group built as part of another: the backbone is the CNN feature block's network
BUILT_IN = {"backbone": "features"}
NEEDS = {"backbone": ("features=cnn",)}
_ABSENT = object()


def options(group: str) -> list[str]:
    return sorted(path.stem for path in Path(CONF_DIR, group).glob("*.yaml"))


def numeric_leaves(node, prefix: str):
    """``(dotted key, value)`` of every int, float or ``"auto"`` below ``node``; nodes that refer elsewhere are
    skipped."""
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        if key == "_target_" or OmegaConf.is_missing(node, key):
            continue
        path = f"{prefix}.{key}"
        value = node[key]
        if OmegaConf.is_config(value):
            if not OmegaConf.is_interpolation(node, key):  # e.g. ${backbone}: checked in its own group
                yield from numeric_leaves(value, path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) or value == "auto":
            # "auto" stands for a number the option works out (data.scale, a clusterer's radius)
            yield path, value


@pytest.fixture
def built_once(monkeypatch):
    """Networks that build are built once per set of arguments: the checks under test run before them."""
    real = src.backbones.create_backbone

    @functools.cache
    def cached(frozen):
        return real(**{key: list(value) if isinstance(value, tuple) else value for key, value in frozen})

    def create_backbone(**kwargs):
        return cached(tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items())))

    monkeypatch.setattr(src.backbones, "create_backbone", create_backbone)


@pytest.fixture
def option_config(make_cfg, make_train_cfg, tiny_video, synthetic_root):
    """``(group, option) -> cfg``: the root config (the training config for ``model``) with that option chosen,
    and the paths a data source needs."""
    def compose(group: str, option: str):
        overrides = [f"{group}={option}", *NEEDS.get(group, ())]
        if option == "video":
            overrides.append(f"data.path={tiny_video}")
        if option == "folder":
            overrides.append(f"data.root={synthetic_root / 'images'}")
        return (make_train_cfg if group == "model" else make_cfg)(*overrides)
    return compose


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_bad_numbers_name_a_key_of_the_config(group, option, option_config, built_once):
    cfg = option_config(group, option)
    built = BUILT_IN.get(group, group)
    checked = []
    for key, _ in numeric_leaves(cfg[group], group):
        for bad in BAD_VALUES:
            # a copy of the node keeps its parent, so its interpolations resolve; a group built inside another
            # is seen through the root
            trial = copy.deepcopy(cfg if built != group else cfg[group])
            OmegaConf.update(trial, key if built != group else key.split(".", 1)[1], bad)
            try:
                build(trial[built] if built != group else trial, built)
            except LabError as exc:
                message = str(exc)
                named = re.match(r"[\w.]+", message).group(0)
                assert OmegaConf.select(cfg, named, default=_ABSENT) is not _ABSENT, \
                    f"{key}={bad}: the message names {named!r}, not a key of the config: {message}"
                checked.append(named)
    assert checked, f"no bad number of {group}={option} was refused"


@pytest.mark.parametrize("option", options("clusterer"))
def test_too_small_frames_name_a_key_of_the_config(option, make_cfg):
    """``check_input`` runs outside instantiation; compose puts ``clusterer`` in front of what it names."""
    cfg = make_cfg(f"clusterer={option}")
    clusterer = build(cfg.clusterer, "clusterer")
    if not hasattr(clusterer, "check_input"):
        pytest.skip(f"clusterer={option} has no size check")
    try:
        with keyed("clusterer"):
            clusterer.check_input(1)
    except LabError as exc:
        named = re.match(r"[\w.]+", str(exc)).group(0)
        assert OmegaConf.select(cfg, named, default=_ABSENT) is not _ABSENT, str(exc)
    else:
        pytest.skip(f"clusterer={option} clusters a one-pixel frame")


@pytest.mark.parametrize("overrides, message", [
    (["postprocess.steps.field.max_distance=-1"],
     r"^postprocess.steps.field.max_distance=-1 is out of range; allowed \(0, inf\]$"),
    # NaN compares False with both bounds
    (["postprocess.steps.field.max_distance=nan"],
     r"^postprocess.steps.field.max_distance=nan is not a number; allowed \(0, inf\]$"),
    (["postprocess.steps.edges.coverage=nan"], r"^postprocess.steps.edges.coverage=nan is not a number"),
    (["features.blocks.color.space=xyz"], r"^features.blocks.color.space='xyz' is not allowed"),
    # the CNN block's network is ${backbone}: the key to set is the backbone group's
    (["features=cnn", "backbone.threads=0"], r"^backbone.threads=0 is out of range"),
    (["clusterer=kmeans_auto", "clusterer.clusterer.n_init=0"], r"^clusterer.clusterer.n_init=0 is out of range"),
    (["postprocess.steps.field=null"], r"^postprocess.steps.standing needs a field mask"),
])
def test_build_names_the_full_key(overrides, message, make_cfg, built_once):
    cfg = make_cfg(*overrides)
    group = "features" if "backbone" in overrides[-1] else overrides[-1].split(".", 1)[0]
    with pytest.raises(LabError, match=message):
        build(cfg[group], group)


def bool_leaves(node, prefix: str):
    """``(dotted key, value)`` of every true/false option below ``node`` (nodes that refer elsewhere skipped)."""
    for key in node.keys():
        if OmegaConf.is_missing(node, key) or OmegaConf.is_interpolation(node, key):
            continue
        value = node[key]
        if isinstance(value, DictConfig):
            yield from bool_leaves(value, f"{prefix}.{key}")
        elif isinstance(value, bool):
            yield f"{prefix}.{key}", value


# the groups that have true/false options (postprocess and model have none)
BOOL_GROUPS = ("data", "logger", "features", "clusterer", "backbone")


@pytest.mark.parametrize("group", BOOL_GROUPS)
def test_a_word_for_a_yes_or_no_option_is_refused(group, option_config, built_once):
    """``no`` is a non-empty string, so it would switch an option on; every true/false option refuses it."""
    checked = []
    for option in options(group):
        cfg = option_config(group, option)
        built = BUILT_IN.get(group, group)
        for key, _ in bool_leaves(cfg[group], group):
            trial = copy.deepcopy(cfg if built != group else cfg[group])
            OmegaConf.update(trial, key if built != group else key.split(".", 1)[1], "no")
            with pytest.raises(LabError, match=rf"^{re.escape(key)}='no' must be true or false$"):
                build(trial[built] if built != group else trial, built)
            checked.append(key)
    assert checked, f"no true/false option in group {group}"


@pytest.mark.parametrize("group", GROUPS)
def test_every_number_refuses_infinity_before_any_work(group, option_config, built_once):
    """Hydra reads ``inf``; no option takes it (a weight or radius of inf makes features or distances inf and the
    run fails mid-frame), so every numeric option of every option file is refused when built."""
    accepted = []
    for option in options(group):
        cfg = option_config(group, option)
        built = BUILT_IN.get(group, group)
        for key, _ in numeric_leaves(cfg[group], group):
            trial = copy.deepcopy(cfg if built != group else cfg[group])
            OmegaConf.update(trial, key if built != group else key.split(".", 1)[1], float("inf"))
            try:
                build(trial[built] if built != group else trial, built)
            except LabError as exc:
                assert "inf" in str(exc), str(exc)
            else:
                accepted.append(f"{group}={option}: {key}")
    assert not accepted, accepted
