"""Annotation files are checked when the dataset loads: every bad entry is one line, before any work."""

import json
import logging
import time

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from src.data import FootballDataset
from src.data.coco_check import rle_counts, rle_runs
from src.data.football import read_image
from src.errors import LabError
from tests.helpers import copy_dataset


def runs_of(mask: np.ndarray) -> list[int]:
    """Run lengths of a mask in column-major order, starting with background (COCO's convention)."""
    flat = np.asarray(mask, dtype=np.uint8).ravel(order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], edges, [flat.size]))
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0] + runs


@pytest.mark.parametrize("seed", range(5))
def test_rle_counts_match_pycocotools(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((37, 53), dtype=np.uint8, order="F")
    for _ in range(6):
        y, x = rng.integers(0, 30, 2)
        mask[y:y + rng.integers(1, 9), x:x + rng.integers(1, 25)] = 1
    mask[0, 0] = seed % 2  # both a background and a foreground first run
    encoded = mask_utils.encode(mask)["counts"].decode()
    assert rle_counts(encoded).tolist() == runs_of(mask)


def test_rle_counts_of_a_large_real_size_mask():
    mask = np.zeros((1080, 1920), dtype=np.uint8, order="F")
    mask[500:700, 900:960] = 1
    counts = rle_counts(mask_utils.encode(mask)["counts"].decode())
    assert counts.sum() == 1080 * 1920 and counts.tolist() == runs_of(mask)


def test_rle_runs_of_many_strings_are_each_strings_runs_in_turn():
    rng = np.random.default_rng(0)
    masks = [np.zeros((5, 4), np.uint8, order="F"), np.ones((5, 4), np.uint8, order="F")]
    for _ in range(6):
        mask = np.zeros((rng.integers(3, 40), rng.integers(3, 40)), dtype=np.uint8, order="F")
        mask[rng.random(mask.shape) < rng.random()] = 1
        masks.append(mask)
    strings = [mask_utils.encode(m)["counts"].decode() for m in masks]
    runs, lengths = rle_runs(strings)
    assert lengths.tolist() == [len(runs_of(m)) for m in masks]
    assert runs.tolist() == [run for m in masks for run in runs_of(m)]


@pytest.mark.parametrize("strings, match", [(["Ul0", "0P"], "ends inside a number"), (["Ul0", ""], "empty"),
                                            (["Ul0", "?!"], r"'!', outside")])
def test_rle_runs_refuse_a_bad_string_among_good_ones(strings, match):
    with pytest.raises(ValueError, match=match):
        rle_runs(strings)


@pytest.mark.parametrize("counts, match", [
    ("!!!notrle", r"has '!', outside the RLE alphabet"),
    ("", r"empty"),
    ("Tg\\k0P", r"ends inside a number"),
    ("ooooooooo0", r"too long"),
])
def test_rle_counts_refuses_bad_strings(counts, match):
    with pytest.raises(ValueError, match=match):
        rle_counts(counts)


def write_annotations(root, edit):
    path = root / "annotations" / "instances_default.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def first_ann(data):
    return next(a for a in data["annotations"] if a["image_id"] == data["images"][0]["id"])


def set_seg(value):
    return lambda data: first_ann(data).update(segmentation=value)


def good_rle(data, **change):
    image = data["images"][0]
    mask = np.zeros((image["height"], image["width"]), np.uint8, order="F")
    mask[10:20, 10:20] = 1
    rle = mask_utils.encode(mask)
    rle["counts"] = rle["counts"].decode()
    return {**rle, **change}


@pytest.mark.parametrize("edit, match", [
    (set_seg({"size": [1080, 1920], "counts": "!!!notrle"}), r"annotation id \d+ \(image '0.jpg', id 1\): its counts "
                                                              r"string has '!', outside the RLE alphabet"),
    (set_seg("garbage"), r"its segmentation 'garbage' is neither a polygon list nor an RLE dict"),
    (set_seg([[1, 2, 3, 4, 5, 6, 7]]), r"a polygon of 7 coordinates; a polygon needs an even number, at least 6"),
    (set_seg([[1, 2, 3, 4]]), r"a polygon of 4 coordinates"),
    (set_seg([]), r"empty polygon list"),
    (set_seg([["a", "b", "c", "d", "e", "f"]]), r"not a list of numbers"),
    # pycocotools allocates without end for these, or dies
    (set_seg([[10, 10, float("nan"), 20, 20, 30]]), r"a polygon coordinate that is not a number within \[-\d+, \d+\]"),
    (set_seg([[10, 10, 1e12, 20, 20, 30]]), r"a polygon coordinate that is not a number within"),
    (lambda d: first_ann(d).update(segmentation=good_rle(d, size=[float("nan"), 1920])),
     r"its RLE size \[nan, 1920\] is not the image's \[height, width\]"),
    (lambda d: first_ann(d).pop("segmentation"), r"annotation id \d+ \(image '0.jpg', id 1\) has no 'segmentation'"),
    (lambda d: first_ann(d).update(segmentation=good_rle(d, size=[100, 100])),
     r"its RLE size \[100, 100\] is not the image's \[height, width\]"),
    (lambda d: first_ann(d).update(segmentation=good_rle(d, counts="0k2")), r"its RLE counts cover \d+ pixels, not"),
    (lambda d: first_ann(d).update(segmentation=good_rle(d, counts=[5, 10])), r"its RLE counts cover 15 pixels"),
    (lambda d: first_ann(d).update(segmentation=good_rle(d, counts=[-5, 10])), r"not all non-negative integers"),
    (lambda d: first_ann(d).pop("id"), r"annotation #\d+ \(image_id 1\) has no 'id'"),
    (lambda d: first_ann(d).pop("image_id"), r"annotation id \d+ has no 'image_id'"),
    (lambda d: d["images"][0].update(width="wide"), r"image '0.jpg' \(id 1\) has width 'wide'; it must be a positive"),
    (lambda d: d["images"][0].update(height=0), r"has height 0; it must be a positive integer"),
    (lambda d: d["images"][1].update(id=d["images"][0]["id"]), r"image id 1 is used twice"),
    (lambda d: next(a for a in d["annotations"] if a["image_id"] == d["images"][1]["id"]).update(
        id=first_ann(d)["id"]), r"annotation id \d+ is used twice \(images '0.jpg' and '1.jpg'\)"),
    (lambda d: d["images"][0].update(width=20000, height=20000), r"over Pillow's decompression-bomb limit"),
    (lambda d: d["annotations"].__setitem__(0, "x"), r"annotation #0 is 'x', not an object"),
])
def test_bad_annotation_content_is_one_line_at_load(tmp_path, synthetic_root, edit, match):
    root = copy_dataset(synthetic_root, tmp_path / "d")
    write_annotations(root, edit)
    start = time.perf_counter()
    with pytest.raises(LabError, match=match) as caught:
        FootballDataset(str(root), n_images=2)
    assert time.perf_counter() - start < 10  # the malformed RLE once made pycocotools loop forever
    assert "\n" not in str(caught.value)


def test_annotations_of_unknown_images_warn_once_or_are_refused(tmp_path, synthetic_root, caplog):
    root = copy_dataset(synthetic_root, tmp_path / "d")
    orphan = lambda d, i: {**first_ann(d), "id": 9000 + i, "image_id": 777}  # noqa: E731
    write_annotations(root, lambda d: d["annotations"].extend([orphan(d, 0), orphan(d, 1), orphan(d, 2)]))
    with caplog.at_level(logging.WARNING, logger="src.data.coco_check"):
        dataset = FootballDataset(str(root), n_images=None)
    warnings = [r.getMessage() for r in caplog.records if "image_id is not in 'images'" in r.getMessage()]
    assert len(warnings) == 1 and "dropped 3 annotation(s)" in warnings[0]
    assert all(a["image_id"] != 777 for a in dataset.coco.dataset["annotations"])
    with pytest.raises(LabError, match=r"3 annotation\(s\) \(ids \[9000, 9001, 9002\]...\) point to an image id not "
                                       r"in 'images'; fix them, or set data.strict=false"):
        FootballDataset(str(root), n_images=None, strict=True)


def test_the_annotation_file_is_not_changed_by_the_check(tmp_path, synthetic_root):
    root = copy_dataset(synthetic_root, tmp_path / "d")
    before = (root / "annotations" / "instances_default.json").read_text()
    dataset = FootballDataset(str(root), n_images=None)
    assert (root / "annotations" / "instances_default.json").read_text() == before
    assert len(dataset.coco.dataset["annotations"]) == len(json.loads(before)["annotations"])


def test_an_image_over_the_decompression_bomb_limit_is_one_line(synthetic_root, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(LabError, match=r"0.jpg is too large to decode safely .*; downscale it"):
        read_image(synthetic_root / "images" / "0.jpg", (24, 13))


@pytest.mark.slow
def test_the_real_annotation_file_passes_the_check_quickly(football_root):
    start = time.perf_counter()
    dataset = FootballDataset(str(football_root), n_images=None)
    assert time.perf_counter() - start < 5
    assert len(dataset.coco.dataset["annotations"]) == len(
        json.loads((football_root / "annotations" / "instances_default.json").read_text())["annotations"])
