"""Derived datasets that differ from the source frames, for checking that a method generalizes.

From frames of a dataset in the Kaggle layout, writes new datasets in the
same layout:

- ``closeup``: a 16:9 crop around the frame's largest player, sized so that
  player covers ``closeup_fraction`` of it, enlarged back to the frame size;
- ``kits``: every player pixel's hue turned by ``kit_hue_shift`` degrees;
- ``pitch``: every other pixel's hue turned by ``pitch_hue_shift`` degrees and
  its brightness scaled by ``pitch_brightness`` (another pitch and light).

Recoloured variants keep the source annotations; a close-up's ground truth
is cropped and enlarged with its pixels (nearest neighbour) and written as
one RLE annotation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from src.data.football import FootballDataset
from src.errors import check_choice, check_range

VARIANTS = ("closeup", "kits", "pitch")


def _rotate_hue(image: np.ndarray, where: np.ndarray, degrees: float, brightness: float = 1.0) -> np.ndarray:
    hsv = np.asarray(Image.fromarray(image).convert("HSV")).astype(np.int32)
    hsv[..., 0] = np.where(where, (hsv[..., 0] + round(degrees / 360 * 256)) % 256, hsv[..., 0])
    hsv[..., 2] = np.where(where, np.clip(hsv[..., 2] * brightness, 0, 255), hsv[..., 2])
    return np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))


def _closeup(image: np.ndarray, mask: np.ndarray, instance: np.ndarray, fraction: float):
    h, w = mask.shape
    rows, cols = np.nonzero(instance)
    area = len(rows) / fraction
    crop_w = int(min(w, max(16, np.sqrt(area * w / h))))
    crop_h = int(min(h, max(9, crop_w * h / w)))
    top = int(np.clip(rows.mean() - crop_h / 2, 0, h - crop_h))
    left = int(np.clip(cols.mean() - crop_w / 2, 0, w - crop_w))
    window = (slice(top, top + crop_h), slice(left, left + crop_w))
    big = Image.fromarray(image[window]).resize((w, h), Image.Resampling.BICUBIC)
    big_mask = Image.fromarray(mask[window].astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)
    return np.asarray(big), np.asarray(big_mask) > 127


def make_variant(dataset: FootballDataset, variant: str, out_dir: str | Path, *, closeup_fraction: float = 0.10,
                 kit_hue_shift: float = 120.0, pitch_hue_shift: float = 40.0, pitch_brightness: float = 0.7) -> Path:
    """Write ``variant`` of every sampled frame of ``dataset`` to ``out_dir`` (Kaggle layout); returns it.

    Parameters
    ----------
    dataset : FootballDataset
        Source frames (only its file names and full-size annotations are used).
    variant : {"closeup", "kits", "pitch"}
    out_dir : path
    closeup_fraction : float, default 0.10, in (0, 1]
    kit_hue_shift, pitch_hue_shift : float, degrees
    pitch_brightness : float, default 0.7, > 0
    """
    check_choice("variant", variant, VARIANTS)
    check_range("closeup_fraction", closeup_fraction, 0, 1, low_open=True)
    check_range("pitch_brightness", pitch_brightness, 0, low_open=True)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id in dataset.image_ids:
        info = dataset.coco.imgs[image_id]
        with Image.open(dataset.image_path(image_id)) as im:
            image = np.asarray(im.convert("RGB"))
        mask = dataset.full_mask(image_id)
        anns = dataset.coco.loadAnns(dataset.coco.getAnnIds(imgIds=[image_id]))
        if variant == "closeup":
            if not anns:
                continue
            largest = max(anns, key=lambda a: a["area"])
            image, mask = _closeup(image, mask, dataset.coco.annToMask(largest).astype(bool), closeup_fraction)
        elif variant == "kits":
            image = _rotate_hue(image, mask, kit_hue_shift)
        else:
            image = _rotate_hue(image, ~mask, pitch_hue_shift, pitch_brightness)
        Image.fromarray(image).save(out / "images" / info["file_name"], quality=92)
        images.append({"id": image_id, "file_name": info["file_name"], "width": image.shape[1],
                       "height": image.shape[0]})
        if variant != "closeup":
            annotations += [{**ann, "id": len(annotations) + i + 1} for i, ann in enumerate(anns)]
        elif mask.any():
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "area": float(mask.sum()), "bbox": list(mask_utils.toBbox(rle)),
                                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    (out / "annotations").mkdir(exist_ok=True)
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    (out / "annotations" / "instances_default.json").write_text(json.dumps(coco))
    return out
