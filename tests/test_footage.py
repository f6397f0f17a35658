"""Footage without labels: image folders, and the prediction files every run writes."""

import copy
import csv
import io
import json
import logging
import math
import shutil
import tarfile

import mlflow
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from src import viz
from src.compose import build_stages
from src.data import FootballDataset, ImageFolder
from src.errors import LabError
from src.pipeline import ImageResult, evaluate
from src.postprocess import PlayerMask, connected_components
from src.predictions import (
    PredictionWriter,
    coco_results,
    coco_scores,
    component_rows,
    full_size_png,
    full_size_rle,
    upscale,
)
from src.run import run_and_log


def unlabelled_folder(synthetic_root, tmp_path):
    folder = tmp_path / "footage"
    shutil.copytree(synthetic_root / "images", folder)
    (folder / "notes.txt").write_text("not an image")
    return folder


def write_all(results, full_size, out_dir, **options):
    with PredictionWriter(out_dir, full_size, **options) as writer:
        for result in results:
            writer.add(result)
    return writer.final


def run_metrics(tracking_uri, run_id):
    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.get_run(run_id).data.metrics


def test_a_folder_without_annotations_runs_and_logs_only_what_needs_no_truth(make_cfg, synthetic_root, tmp_path,
                                                                               caplog):
    folder = unlabelled_folder(synthetic_root, tmp_path)
    cfg = make_cfg("data=folder", f"data.root={folder}", "logger.log_images=false")
    with caplog.at_level(logging.INFO, logger="src.data.folder"):
        summary, run_id = run_and_log(cfg)
    assert [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()] == [
        f"data.root={folder}: skipped 1 files that are not images (.jpg, .jpeg, .png, .webp)"]
    metrics = run_metrics(cfg.logger.tracking_uri, run_id)
    assert "dice_mean" not in metrics and "coco_segm_ap" not in metrics and "blob_recall_mean" not in metrics
    # an unlabelled frame has no count of players to be wrong against
    assert "n_instances_mean" not in metrics and "component_count_error_mean" not in metrics
    assert metrics["n_components_mean"] > 0 and math.isfinite(metrics["silhouette_mean"])
    assert math.isnan(summary["dice_mean"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "predictions")}
    assert artifacts == {"predictions/coco_results.json", "predictions/components.csv", "predictions/masks"}


def test_a_folder_with_annotations_is_scored_and_gets_coco_ap(make_cfg, synthetic_root):
    annotations = synthetic_root / "annotations" / "instances_default.json"
    labelled = make_cfg("data=folder", f"data.root={synthetic_root / 'images'}", f"data.annotation_file={annotations}",
                        "logger.log_images=false")
    summary, run_id = run_and_log(labelled)
    reference, _ = run_and_log(make_cfg("data.n_images=null", "logger.log_images=false"))
    assert summary["dice_mean"] == pytest.approx(reference["dice_mean"])
    metrics = run_metrics(labelled.logger.tracking_uri, run_id)
    assert 0 < metrics["coco_segm_ap"] <= metrics["coco_segm_ap50"] <= 1


def test_folder_options_and_bad_input(synthetic_root, tmp_path):
    folder = unlabelled_folder(synthetic_root, tmp_path)
    (folder / "deeper").mkdir()
    shutil.copy(next(folder.glob("*.jpg")), folder / "deeper" / "z.png")
    flat, deep = ImageFolder(str(folder)), ImageFolder(str(folder), recursive=True)
    assert len(deep) == len(flat) + 1 and len(ImageFolder(str(folder), n_images=2)) == 2
    names = [flat.frame(i).file_name for i in flat.image_ids]
    assert names == sorted(names) and all(flat.frame(i).mask is None for i in flat.image_ids)
    assert deep.frame(deep.image_ids[-1]).artifact_stem.endswith("deeper_z")
    with pytest.raises(LabError, match=r"root='/no/such/folder' is not a folder"):
        ImageFolder("/no/such/folder")
    with pytest.raises(LabError, match=r"^annotation_file='nothere.json' does not exist \(.*nothere.json\); give a "
                                       r"COCO instances file, or null for none$"):
        ImageFolder(str(folder), annotation_file="nothere.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabError, match=r"holds no images \(.jpg, .jpeg, .png, .webp\); data.recursive=true"):
        ImageFolder(str(tmp_path / "empty"))


def test_two_frames_matching_one_annotated_name_are_refused(synthetic_root, tmp_path):
    folder = tmp_path / "labelled"
    shutil.copytree(synthetic_root / "images", folder)
    (folder / "other").mkdir()
    shutil.copy(folder / "1.jpg", folder / "other" / "0.jpg")
    annotations = synthetic_root / "annotations" / "instances_default.json"
    assert len(ImageFolder(str(folder), annotation_file=str(annotations))) == len(list(folder.glob("*.jpg")))
    with pytest.raises(LabError, match=r"^root='.*': 0.jpg and other/0.jpg both match file_name '0.jpg' of "):
        ImageFolder(str(folder), annotation_file=str(annotations), recursive=True)


def test_an_image_too_large_to_decode_safely_is_one_line(make_cfg, tmp_path, monkeypatch):
    folder = tmp_path / "bomb"
    folder.mkdir()
    Image.new("1", (200, 200)).save(folder / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)     # so 200x200 is past Pillow's bomb limit (2x)
    dataset = ImageFolder(str(folder))
    with pytest.raises(LabError, match=r"huge.png is too large to decode safely .*; downscale it"):
        dataset.frames()
    with pytest.raises(LabError, match=r"huge.png is too large to decode safely"):
        run_and_log(make_cfg("data=folder", f"data.root={folder}", "clusterer=dynaseg"))


def test_coco_results_of_the_ground_truth_score_ap_one(synthetic_root, tmp_path):
    dataset = FootballDataset(str(synthetic_root), n_images=None, scale=1)
    entries = []
    for frame in dataset.frames():
        # each annotated player as the one component of a perfect segmenter's mask (players may overlap)
        for ann in dataset.coco.loadAnns(dataset.coco.getAnnIds(imgIds=[frame.image_id])):
            player = dataset.coco.annToMask(ann).astype(bool)
            centroid = np.argwhere(player).mean(axis=0)[None]
            player_mask = PlayerMask(mask=player, components=player.astype(int), centroids=centroid)
            entries += coco_results(ImageResult(frame=frame, labels=None, player=player_mask, metrics={}),
                                    dataset.full_size(frame.image_id))
    assert len(entries) == len(dataset.coco.getAnnIds())
    (tmp_path / "results.json").write_text(json.dumps(entries))
    before = json.dumps(dataset.coco.dataset, sort_keys=True)
    scores = coco_scores(dataset.coco, dataset.image_ids, tmp_path / "results.json")
    assert scores == {"coco_segm_ap": pytest.approx(1.0), "coco_segm_ap50": pytest.approx(1.0),
                      "coco_segm_ar100": pytest.approx(1.0)}
    # the parsed annotation file is shared by the runs of a process: scoring leaves it as it was
    assert json.dumps(dataset.coco.dataset, sort_keys=True) == before


def test_coco_scores_equal_cocoevals_own_summary(synthetic_root, tmp_path):
    dataset = FootballDataset(str(synthetic_root), n_images=None, scale=1)
    entries, rng = [], np.random.default_rng(0)
    for frame in dataset.frames():
        # an imperfect segmenter: players shifted by various amounts, some missed, plus a false blob per frame
        anns = dataset.coco.loadAnns(dataset.coco.getAnnIds(imgIds=[frame.image_id]))
        masks = [np.roll(dataset.coco.annToMask(a).astype(bool), int(rng.integers(0, 6)), axis=1)
                 for a in anns if rng.random() < 0.8]
        false = np.zeros(frame.mask.shape, bool)
        false[:4, :4] = True
        for player in [*masks, false]:
            player_mask = PlayerMask(mask=player, components=player.astype(int),
                                     centroids=np.argwhere(player).mean(axis=0)[None])
            entries += coco_results(ImageResult(frame=frame, labels=None, player=player_mask, metrics={}),
                                    dataset.full_size(frame.image_id))
    (tmp_path / "results.json").write_text(json.dumps(entries))
    scores = coco_scores(dataset.coco, dataset.image_ids, tmp_path / "results.json")
    truth = COCO()   # a copy: COCOeval rewrites the ground truth, and the parsed file is shared within a process
    truth.dataset = copy.deepcopy(dataset.coco.dataset)
    truth.createIndex()
    full = COCOeval(truth, truth.loadRes(str(tmp_path / "results.json")), "segm")
    full.evaluate()
    full.accumulate()
    full.summarize()
    assert 0.1 < scores["coco_segm_ap"] < 0.9
    assert [scores["coco_segm_ap"], scores["coco_segm_ap50"], scores["coco_segm_ar100"]] == \
        pytest.approx(list(full.stats[[0, 1, 8]]), abs=1e-12)


def test_components_are_in_full_resolution_pixels():
    mask = np.zeros((10, 16), bool)
    mask[2:6, 4:6] = True                                  # 4 rows x 2 cols at working size
    components, centroids = connected_components(mask)
    frame = type("F", (), {"image_id": 7, "file_name": "a.jpg"})()
    result = ImageResult(frame=frame, labels=None, player=PlayerMask(mask, components, centroids), metrics={})
    (row,) = component_rows(result, (160, 100), frame=3, timestamp=1.5)   # full size is 10x the working size
    assert row == {"frame": 3, "timestamp": "1.500", "image_id": 7, "file_name": "a.jpg", "component": 1,
                   "centroid_x": 50.0, "centroid_y": 40.0, "area": 800.0, "bbox_x": 40.0, "bbox_y": 20.0,
                   "bbox_w": 20.0, "bbox_h": 40.0}


def test_prediction_files_are_complete_masks_at_full_size(make_cfg, synthetic_root, tmp_path):
    dataset = FootballDataset(str(synthetic_root), n_images=2, scale=4)
    stages = build_stages(make_cfg("data.n_images=2", "data.scale=4"))
    results, _ = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess)
    predictions = write_all(results, dataset.full_size, tmp_path)
    with open(predictions / "components.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(r.player.n_components for r in results)
    for result in results:
        saved = np.asarray(Image.open(predictions / "masks" / f"{result.frame.artifact_stem}.png"))
        assert saved.shape == dataset.full_size(result.frame.image_id)[::-1]
        assert saved.sum() == result.player.mask.sum() * 16
    entries = json.loads((predictions / "coco_results.json").read_text())
    assert all(mask_utils.decode(e["segmentation"]).shape == (1080, 1920) for e in entries)
    assert not write_all(results, dataset.full_size, tmp_path, write_masks=False).joinpath("masks").exists()
    assert not list(tmp_path.glob(".predictions.partial-*"))


@pytest.mark.parametrize("shape, size", [((27, 48), (384, 216)), ((10, 16), (160, 100)), ((7, 9), (20, 15))])
@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_full_size_rle_matches_encoding_the_upscaled_mask(shape, size, share):
    mask = np.random.default_rng(1).random(shape) < share
    expected = mask_utils.encode(np.asfortranarray(upscale(mask, size).astype(np.uint8)))
    assert full_size_rle(mask, size) == {"size": [size[1], size[0]], "counts": expected["counts"].decode()}


@pytest.mark.parametrize("shape, size", [((27, 48), (384, 216)), ((5, 3), (15, 10)), ((7, 9), (20, 15))])
@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_full_size_png_is_the_one_bit_png_of_the_upscaled_mask(shape, size, share):
    mask = np.random.default_rng(2).random(shape) < share
    full = upscale(mask, size)
    buffer = io.BytesIO()
    Image.frombytes("1", size, np.packbits(full, axis=1).tobytes()).save(buffer, format="PNG", compress_level=1)
    png = full_size_png(mask, size)
    assert png == buffer.getvalue()
    decoded = Image.open(io.BytesIO(png))
    assert decoded.mode == "1" and np.array_equal(np.asarray(decoded), full)


def test_an_interrupted_writer_leaves_no_predictions_folder(make_cfg, tmp_path):
    stages = build_stages(make_cfg("data.n_images=1"))
    results, _ = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess)
    with pytest.raises(KeyboardInterrupt):
        with PredictionWriter(tmp_path / "out", stages.data.full_size) as writer:
            writer.add(results[0])
            raise KeyboardInterrupt
    assert list((tmp_path / "out").iterdir()) == []


def test_a_tar_stream_is_a_tar_archive_any_reader_lists(tmp_path):
    from src.predictions import TarStream

    members = {f"frame_{i:03d}.png": bytes(range(i % 256)) * (i + 1) for i in range(30)}
    stream = TarStream(tmp_path / "masks.tar")
    for name, data in members.items():
        stream.add(name, data)
    stream.close()
    assert (tmp_path / "masks.tar").stat().st_size % tarfile.RECORDSIZE == 0
    with tarfile.open(tmp_path / "masks.tar") as archive:
        assert archive.getnames() == list(members)
        assert all(archive.extractfile(name).read() == data for name, data in members.items())


def test_a_run_that_keeps_no_result_still_sends_every_frame_to_its_sink(make_cfg, tmp_path):
    from src.tracking.mlflow_tracker import RunPictures
    stages = build_stages(make_cfg("data.n_images=3", "data.scale=8"))
    pictures, seen = RunPictures(tmp_path / "pictures", 240), []
    kept, summary = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess, keep=False,
                             sink=lambda result: (seen.append(result),
                                                  pictures.add(result, pictures.prepare(result))))
    assert kept == [] and [r.frame.image_id for r in seen] == stages.data.image_ids and summary["n_frames"] == 3
    assert sorted(pictures.folders()) == ["clusters", "components", "masks", "overlays"]
    assert all(len(list(folder.iterdir())) == 3 for folder in pictures.folders().values())
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in (tmp_path / "pictures").rglob("*.png"))
    # fast deflate is still PNG: the files hold the pictures' exact pixels
    last = seen[-1]
    written = tmp_path / "pictures" / "clusters" / f"{last.frame.artifact_stem}.png"
    np.testing.assert_array_equal(np.asarray(Image.open(written)), viz.label_image(last.labels))
    assert RunPictures(tmp_path / "none", None).folders() == {}


def test_a_labelled_folder_counts_players_only_over_its_labelled_frames(make_cfg, synthetic_root, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(synthetic_root / "images", folder)
    annotations = synthetic_root / "annotations" / "instances_default.json"
    labelled, _ = run_and_log(make_cfg("data=folder", f"data.root={folder}", f"data.annotation_file={annotations}",
                                       "logger.log_images=false"))
    shutil.copy(folder / "0.jpg", folder / "unlabelled.jpg")
    mixed, _ = run_and_log(make_cfg("data=folder", f"data.root={folder}", f"data.annotation_file={annotations}",
                                    "logger.log_images=false"))
    for key in ("n_instances_mean", "component_count_error_mean", "dice_mean"):
        assert mixed[key] == pytest.approx(labelled[key])


@pytest.mark.parametrize("data, key", [("video", "data.path"), ("folder", "data.root")])
def test_a_source_without_its_path_is_one_line(make_cfg, data, key):
    with pytest.raises(LabError, match=rf"^{key} has no value \(\?\?\?\); give one on the command line: {key}=\.\.\.$"):
        build_stages(make_cfg(f"data={data}", f"{key}=???"))
