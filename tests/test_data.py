import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from src.data import FootballDataset, ImageFolder, read_image, reduce_mask
from src.data.football import frame_scale
from src.errors import LabError
from tests.helpers import copy_dataset


def test_synthetic_frames_at_scale(synthetic_root):
    ds = FootballDataset(str(synthetic_root), n_images=None, scale=8)
    frames = ds.frames()
    assert len(frames) == 6
    assert all(f.image.shape == (135, 240, 3) and f.image.dtype == np.uint8 for f in frames)
    assert all(f.mask.shape == (135, 240) and f.mask.dtype == bool for f in frames)
    assert frames[0].mask.any() and frames[0].n_instances > 0
    empty = frames[-1]
    assert empty.n_instances == 0 and not empty.mask.any()


@pytest.mark.parametrize("scale, shape", [(4, (270, 480)), (16, (67, 120)), (1080, (1, 1))])
def test_other_scales(synthetic_root, scale, shape):
    frame = FootballDataset(str(synthetic_root), n_images=1, scale=scale).frames()[0]
    assert frame.image.shape[:2] == shape and frame.mask.shape == shape


@pytest.mark.parametrize("size, factor", [((1920, 1080), 8), ((1280, 720), 5), ((3840, 2160), 16),
                                          ((720, 576), 3), ((1080, 1920), 8), ((100, 60), 1)])
def test_auto_scale_brings_the_longer_side_near_240(size, factor):
    assert frame_scale("auto", *size) == factor
    assert frame_scale(4, *size) == 4


def test_auto_scale_matches_eight_on_broadcast_frames(synthetic_root):
    auto, eight = (FootballDataset(str(synthetic_root), n_images=2, scale=s, cache_frames=False) for s in ("auto", 8))
    assert auto.scale_label == "8"
    for a, b in zip(auto.frames(), eight.frames()):
        assert a.scale == b.scale == 8 and np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)


def test_auto_scale_is_each_images_own(tmp_path):
    for name, size in (("a.png", (1280, 720)), ("b.png", (640, 360))):
        Image.new("RGB", size, (40, 140, 60)).save(tmp_path / name)
    folder = ImageFolder(str(tmp_path), scale="auto")
    frames = folder.frames()
    assert [(f.scale, f.image.shape[:2]) for f in frames] == [(5, (144, 256)), (3, (120, 213))]
    assert folder.scale_label == "auto (3, 5)"


def test_sample_is_seeded(synthetic_root):
    a = FootballDataset(str(synthetic_root), n_images=3, seed=1).image_ids
    assert a == FootballDataset(str(synthetic_root), n_images=3, seed=1).image_ids
    assert len(a) == 3 and a == sorted(a)
    assert any(FootballDataset(str(synthetic_root), n_images=3, seed=s).image_ids != a for s in range(2, 6))


def test_reduce_mask_is_box_majority():
    full = np.zeros((8, 8), bool)
    full[:4, :4] = True            # fills the first 4x4 block
    full[4:6, 4:8] = True          # half of the last block: 8 of 16 pixels
    full[4, 0] = True              # 1 of 16
    small = reduce_mask(full, (2, 2))
    assert small.tolist() == [[True, False], [False, True]]


@pytest.mark.parametrize("scale", [4, 8])
def test_instances_label_each_pixel_with_the_annotation_covering_most_of_it(scale):
    from src.data.football import reduce_instances
    rng = np.random.default_rng(0)
    masks = []
    for _ in range(5):                       # overlapping blobs of ragged outline
        full = np.zeros((64, 96), np.uint8, order="F")
        top, left = rng.integers(0, 40), rng.integers(0, 70)
        full[top:top + rng.integers(8, 24), left:left + rng.integers(6, 20)] = 1
        full &= (rng.random(full.shape) < 0.8).astype(np.uint8)
        masks.append(full)
    rles = [mask_utils.encode(m) for m in masks]
    size = (96 // scale, 64 // scale)
    union = reduce_mask(np.any(masks, axis=0), size)
    labels = reduce_instances(rles, size, union)
    cover = np.stack([np.asarray(Image.fromarray(m * 255).reduce(scale)) for m in masks])
    assert np.array_equal(labels > 0, union)
    if scale == 4:                           # 4x4 samples per pixel read every full-size pixel: exact
        assert np.array_equal(labels[union], cover.argmax(axis=0)[union] + 1)
    else:                                    # sampled: the chosen one covers the pixel nearly as much as the best
        chosen = np.take_along_axis(cover, (labels - 1).clip(0)[None], axis=0)[0]
        assert np.all(chosen[union] >= cover.max(axis=0)[union] - 64)


def _ragged_masks(rng, shape, n):
    masks = []
    for _ in range(n):
        full = np.zeros(shape, np.uint8, order="F")
        top, left = rng.integers(0, shape[0] // 2), rng.integers(0, shape[1] // 2)
        full[top:top + rng.integers(4, shape[0]), left:left + rng.integers(3, 24)] = 1
        full &= (rng.random(full.shape) < 0.8).astype(np.uint8)
        masks.append(full)
    return masks


@pytest.mark.parametrize("factor", [1, 2, 3, 8])
@pytest.mark.parametrize("seed", range(4))
def test_ground_truth_from_runs_equals_decoding_at_full_size(factor, seed):
    from src.data.rle_blocks import reduce_rles
    masks = _ragged_masks(np.random.default_rng(seed), (8 * factor, 12 * factor), 4)
    masks[0][-1, :] = 1                      # runs that pass the bottom of a column into the next one
    rles = [mask_utils.encode(m) for m in masks]
    mask, labels = reduce_rles(rles, factor)
    union = reduce_mask(np.any(masks, axis=0), (12, 8))
    cover = np.stack([m.reshape(8, factor, 12, factor).sum(axis=(1, 3)) for m in masks])
    assert np.array_equal(mask, union)
    assert np.array_equal(labels, np.where(union, cover.argmax(axis=0) + 1, 0))


def test_ground_truth_from_uncompressed_runs_equals_compressed():
    from src.data.rle_blocks import reduce_rles
    masks = _ragged_masks(np.random.default_rng(7), (32, 48), 3)
    compressed = [mask_utils.encode(m) for m in masks]
    # COCO's uncompressed form: run lengths down the columns, background first (these masks start with it)
    uncompressed = [{"size": [32, 48], "counts": np.diff(np.r_[0, np.flatnonzero(np.diff(m.ravel(order="F"))) + 1,
                                                               m.size]).tolist()} for m in masks]
    assert not any(m[0, 0] for m in masks)
    for got, want in zip(reduce_rles(uncompressed, 4), reduce_rles(compressed, 4)):
        assert np.array_equal(got, want)


def test_ground_truth_from_runs_keeps_empty_annotations_apart():
    from src.data.rle_blocks import reduce_rles
    empty, full = np.zeros((16, 16), np.uint8, order="F"), np.ones((16, 16), np.uint8, order="F")
    mask, labels = reduce_rles([mask_utils.encode(empty), mask_utils.encode(full)], 8)
    assert mask.all() and (labels == 2).all()
    mask, labels = reduce_rles([mask_utils.encode(empty)], 8)
    assert not mask.any() and not labels.any()


@pytest.mark.parametrize("full_size, size, factor", [((1080, 1920), (135, 240), 8), ((1080, 1920), (154, 274), None),
                                                     ((64, 96), (16, 16), None), ((64, 96), (0, 0), None)])
def test_block_factor_only_where_both_sides_reduce_by_one_whole_factor(full_size, size, factor):
    from src.data.rle_blocks import block_factor
    assert block_factor(full_size, size) == factor


def test_frames_carry_their_players_apart(synthetic_root):
    frames = FootballDataset(str(synthetic_root), n_images=None, scale=8).frames()
    assert all(np.array_equal(f.instances > 0, f.mask) for f in frames)
    assert all(len(np.unique(f.instances[f.mask])) == f.n_instances for f in frames if f.mask.any())


def test_polygon_and_rle_segmentations(tmp_path):
    root = tmp_path / "mixed"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    Image.fromarray(np.full((40, 64, 3), 90, np.uint8)).save(root / "images" / "0.jpg")
    rle_mask = np.zeros((40, 64), np.uint8, order="F")
    rle_mask[20:40, 40:64] = 1
    rle = mask_utils.encode(rle_mask)
    rle["counts"] = rle["counts"].decode()
    coco = {"images": [{"id": 1, "file_name": "0.jpg", "width": 64, "height": 40}],
            "categories": [{"id": 1, "name": "person"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 64.0, "bbox": [0, 0, 8, 8],
                 "segmentation": [[0, 0, 8, 0, 8, 8, 0, 8]]},
                {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 480.0,
                 "bbox": [40, 20, 24, 20], "segmentation": rle}]}
    (root / "annotations" / "instances_default.json").write_text(json.dumps(coco))
    ds = FootballDataset(str(root), n_images=None, scale=4)
    full = ds.full_mask(1)
    assert full[20:, 40:].all() and full[1:8, 1:8].all()
    frame = ds.frames()[0]
    assert frame.n_instances == 2 and frame.image.shape == (10, 16, 3)
    assert frame.mask[5:, 10:].all() and frame.mask[:2, :2].all() and not frame.mask[4, 5]


def test_file_names_relative_to_the_root_are_found(tmp_path, synthetic_root):
    root = copy_dataset(synthetic_root, tmp_path / "exported")
    path = root / "annotations" / "instances_default.json"
    coco = json.loads(path.read_text())
    for image in coco["images"]:
        image["file_name"] = f"images/{image['file_name']}"
    path.write_text(json.dumps(coco))
    moved, source = (FootballDataset(str(r), n_images=None, scale=8).frames() for r in (root, synthetic_root))
    assert all(np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) for a, b in zip(moved, source))


def test_read_image_decodes_reduced(synthetic_root):
    image = read_image(synthetic_root / "images" / "0.jpg", (240, 135))
    assert image.shape == (135, 240, 3)


def test_missing_root(tmp_path):
    with pytest.raises(LabError, match=r"root='.*nowhere' is not a folder"):
        FootballDataset(str(tmp_path / "nowhere"))


def test_missing_annotation_file(tmp_path, synthetic_root):
    root = copy_dataset(synthetic_root, tmp_path / "d")
    (root / "annotations" / "instances_default.json").unlink()
    with pytest.raises(LabError, match=r"annotation file .*instances_default.json does not exist"):
        FootballDataset(str(root))


@pytest.mark.parametrize("text, match", [
    ("{not json", r"is not valid JSON"),
    ('{"images": []}', r"is not a COCO instances file: it needs 'images' and 'annotations' lists"),
    ('{"images": [{"id": 1}], "annotations": []}', r"an image entry has no 'file_name'"),
    ('{"images": [], "annotations": []}', r"lists no images"),
])
def test_malformed_annotation_file(tmp_path, synthetic_root, text, match):
    root = copy_dataset(synthetic_root, tmp_path / "d")
    (root / "annotations" / "instances_default.json").write_text(text)
    with pytest.raises(LabError, match=match):
        FootballDataset(str(root))


def test_image_named_but_absent(tmp_path, synthetic_root):
    root = copy_dataset(synthetic_root, tmp_path / "d")
    (root / "images" / "2.jpg").unlink()
    with pytest.raises(LabError, match=r"image '2.jpg' \(id 3\) named in .* is missing"):
        FootballDataset(str(root), n_images=None)


def test_image_unreadable(tmp_path, synthetic_root):
    root = copy_dataset(synthetic_root, tmp_path / "d")
    (root / "images" / "1.jpg").write_bytes(b"not a jpeg at all")
    ds = FootballDataset(str(root), n_images=None)
    with pytest.raises(LabError, match=r"image .*1.jpg cannot be read"):
        ds.frames()


@pytest.mark.parametrize("kwargs, match", [
    ({"scale": 2000}, r"scale=2000 leaves no pixels of a 1920x1080 image; use a scale of at most 1080"),
    ({"scale": 0}, r"scale=0 is out of range"),
    ({"scale": 2.5}, r"scale=2.5 must be an integer or auto"),
    ({"scale": "big"}, r"scale='big' must be an integer or auto"),
    ({"scale": -1}, r"scale=-1 is out of range; allowed \[1, inf\] or auto"),
    ({"n_images": 0}, r"n_images=0 is out of range"),
])
def test_bad_data_options(synthetic_root, kwargs, match):
    with pytest.raises(LabError, match=match):
        FootballDataset(str(synthetic_root), **kwargs)


@pytest.mark.parametrize("root", [None, ""], ids=["null", "empty FOOTBALL_DATA"])
def test_no_root_means_synthetic(tmp_path, root):
    ds = FootballDataset(root, n_images=2, synthetic_root=str(tmp_path / "syn"), synthetic_images=3)
    assert ds.source == "synthetic" and len(ds) == 2 and (tmp_path / "syn" / "SYNTHETIC.json").is_file()


def test_frames_are_decoded_once_per_process_and_read_only(synthetic_root, monkeypatch):
    first = FootballDataset(str(synthetic_root), n_images=2, scale=8, seed=5)
    frame = first.frame(first.image_ids[0])
    decoded = []
    monkeypatch.setattr(FootballDataset, "_decode", lambda self, i: decoded.append(i))
    again = FootballDataset(str(synthetic_root), n_images=2, scale=8, seed=5).frame(first.image_ids[0])
    assert again is frame and decoded == []
    with pytest.raises(ValueError, match="read-only"):
        frame.image[0, 0] = 0
    FootballDataset(str(synthetic_root), n_images=2, scale=8, seed=5, cache_frames=False).frame(first.image_ids[0])
    assert decoded == [first.image_ids[0]]


def test_frames_decoded_by_workers_join_the_cache_of_the_process(make_cfg, synthetic_root, monkeypatch):
    from src.compose import build_stages
    from src.pipeline import evaluate
    dataset = FootballDataset(str(synthetic_root), n_images=3, scale=4, seed=11)
    built = build_stages(make_cfg("data.n_images=3", "data.scale=4"))
    stages = (built.features, built.clusterer, built.postprocess)
    results, _ = evaluate(dataset, *stages, workers=2)
    one_by_one = [FootballDataset(str(synthetic_root), n_images=3, scale=4, seed=11, cache_frames=False).frame(i)
                  for i in dataset.image_ids]
    assert [r.frame.image_id for r in results] == dataset.image_ids
    assert all(r.seconds["load"] > 0 for r in results)
    for result, expected in zip(results, one_by_one):
        np.testing.assert_array_equal(result.frame.image, expected.image)
        np.testing.assert_array_equal(result.frame.mask, expected.mask)
    monkeypatch.setattr(FootballDataset, "_decode", lambda self, i: pytest.fail("decoded twice"))
    again, _ = evaluate(dataset, *stages, workers=2)
    assert all(a.frame is b.frame for a, b in zip(again, results))


@pytest.mark.parametrize("mode, suffix", [("L", "png"), ("LA", "png"), ("RGBA", "png"), ("P", "png"),
                                          ("I;16", "png"), ("I", "tiff"), ("F", "tiff"), ("CMYK", "jpg")])
def test_every_image_mode_reads_as_its_8_bit_rgb(tmp_path, mode, suffix):
    grey = np.tile(np.linspace(0, 250, 16).astype(np.uint8), (12, 1))
    if mode == "I;16":
        # 16 bits a channel: 65535 is white, so the image must not saturate where it passes 255
        picture = Image.fromarray(grey.astype(np.uint16) * 257)
    elif mode in ("I", "F"):
        picture = Image.fromarray(grey.astype(np.int32 if mode == "I" else np.float32) * (257 if mode == "I" else 1),
                                  mode)
    else:
        rgb = Image.fromarray(np.repeat(grey[..., None], 3, axis=-1), "RGB")
        picture = rgb.convert(mode, palette=Image.Palette.ADAPTIVE) if mode == "P" else rgb.convert(mode)
    picture.save(tmp_path / f"frame.{suffix}")
    image = read_image(tmp_path / f"frame.{suffix}", (16, 12))
    assert image.shape == (12, 16, 3) and image.dtype == np.uint8
    np.testing.assert_allclose(image.astype(int), np.repeat(grey[..., None], 3, axis=-1), atol=4)


def test_an_image_whose_size_disagrees_with_its_annotations_is_refused_before_any_frame(tmp_path, synthetic_root):
    import json

    root = copy_dataset(synthetic_root, tmp_path / "d")
    path = root / "annotations" / "instances_default.json"
    coco = json.loads(path.read_text())
    last = coco["images"][-1]
    real = (last["width"], last["height"])
    last["width"] += 1
    path.write_text(json.dumps(coco))
    with pytest.raises(LabError, match=rf"^image .*{last['file_name']} is {real[0]}x{real[1]} but the annotations say "
                                       rf"{real[0] + 1}x{real[1]}; fix the annotation file or the image$"):
        FootballDataset(str(root), n_images=None, scale=16)
    folder = ImageFolder(str(root / "images"), scale=16, annotation_file=str(path))
    with pytest.raises(LabError, match=rf"is {real[0]}x{real[1]} but the annotations say {real[0] + 1}x{real[1]}"):
        [folder.full_size(image_id) for image_id in folder.image_ids]


def _build_synthetic(root):
    from src.data.synthetic import ensure_synthetic_dataset

    built = ensure_synthetic_dataset(root, n_images=3)
    return sorted(p.name for p in (built / "images").iterdir()), (built / "SYNTHETIC.json").read_text()


def test_jobs_that_build_the_synthetic_set_together_each_find_it_whole(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(3) as pool:
        results = list(pool.map(_build_synthetic, [tmp_path / "synthetic"] * 6))
    assert all(result == results[0] for result in results) and results[0][0] == ["0.jpg", "1.jpg", "2.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".synthetic.lock", "synthetic"]
