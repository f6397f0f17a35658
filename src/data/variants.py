"""Derived datasets that differ from the source frames, for checking that a method generalizes.

From frames of a dataset in the Kaggle layout, writes new datasets in the
same layout:

- ``closeup``: a 16:9 crop around the frame's largest player, sized so that
  player covers ``closeup_fraction`` of it, enlarged back to the frame size;
- ``kits``: every player pixel's hue turned by ``kit_hue_shift`` degrees;
- ``pitch``: every other pixel's hue turned by ``pitch_hue_shift`` degrees and
  its brightness scaled by ``pitch_brightness`` (another pitch and light);
- ``zoom2``, ``zoom3``, ``zoom4``: a 2x, 3x or 4x zoom anchored at the far
  touchline, centred on the player nearest to it, so players stand in front
  of the boards and the crowd;
- ``edge``: a 1.5x zoom whose left edge cuts through the frame's largest
  player (players cut by the frame edge);
- ``foot``: a 1.5x zoom whose foot cuts the frame's largest player at half
  his height (a close-up that cuts players at the waist);
- ``touchline``: the source frames, unchanged, in which some player's blob
  reaches the far touchline (his head crosses the boards);
- ``shadow``: a stadium roof's shadow over part of the pitch: everything left
  of a slanted line (from 60 % of the width at the top to 20 % at the bottom)
  darkened to ``shadow_light`` of its light (in linear RGB), so one pitch
  shows two greens far apart in lightness, as on a sunny afternoon;
- ``washed``: a flat, washed-out picture (haze, floodlights, a flat camera
  profile): saturation scaled by ``washed_saturation`` about each pixel's
  grey, then contrast by ``washed_contrast`` about mid-grey, so every colour
  difference shrinks;
- ``graphics``: the broadcaster's graphics laid over the picture, as on air:
  a score bug in the top left corner and a name caption in the lower third,
  each a solid bar with a colour block and lines of text; the players they
  cover are hidden, so their pixels leave the ground truth;
- ``pillarbox``: 4:3 footage in a 16:9 frame: the picture's middle 4:3 part
  between black bars at the sides, players under the bars left out of the
  ground truth.
- ``ticker``: a score ticker from edge to edge along the foot of the
  picture (6 % of its height); the players it covers leave the ground truth;
- ``resolution``: the frames resized to ``resolution`` (width, height;
  default 1280x720), as footage of another broadcast standard; each player's
  annotation is resized with the pixels (box average, then majority);
- ``logo``: a logo painted on the pitch (a ring around a bar, seen flat as
  from the main camera, 18 % of the frame wide), as cup competitions paint
  them; players stand on it, so the paint lies under them and the ground
  truth is kept.

The far touchline is found from the image, not the labels: the pitch is the
colour of the lower half of the frame, and the line is the median over
columns of the pitch's top edge.

Recoloured variants keep the source annotations; in a close-up, zoom or crop
each player's annotation is cropped and enlarged with its pixels (nearest
neighbour) and written as one RLE annotation per player still in view.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from scipy import ndimage as ndi

from src.data.football import FootballDataset
from src.errors import LabError, check_choice, check_range

VARIANTS = ("closeup", "kits", "pitch", "zoom2", "zoom3", "zoom4", "edge", "foot", "touchline", "shadow", "washed",
            "graphics", "pillarbox", "logo", "ticker", "resolution")
# (top, left, height, width) as fractions of the frame, background, block and text colours: a score bug over
# the stands and a name caption in the lower third, both inside the title-safe area
GRAPHICS = (((0.04, 0.03, 0.045, 0.22), (20, 30, 70), (200, 20, 40), (240, 240, 240)),
            ((0.83, 0.20, 0.07, 0.45), (245, 245, 245), (10, 60, 160), (20, 20, 20)))
# a score ticker from edge to edge along the foot of the picture, as GRAPHICS
TICKER = (((0.94, 0.0, 0.06, 1.0), (20, 40, 110), (230, 180, 20), (240, 240, 240)),)
ZOOMS = {"zoom2": 2.0, "zoom3": 3.0, "zoom4": 4.0}
# the painted logo: centre (row, column), the ring's outer and inner half axes and the bar's half sides (rows,
# columns), all as fractions of the frame; paint colour and its opacity over the grass
LOGO = ((0.72, 0.35), (0.045, 0.09), (0.03, 0.07), (0.012, 0.05), (30, 70, 170), 0.75)


def _rotate_hue(image: np.ndarray, where: np.ndarray, degrees: float, brightness: float = 1.0) -> np.ndarray:
    hsv = np.asarray(Image.fromarray(image).convert("HSV")).astype(np.int32)
    hsv[..., 0] = np.where(where, (hsv[..., 0] + round(degrees / 360 * 256)) % 256, hsv[..., 0])
    hsv[..., 2] = np.where(where, np.clip(hsv[..., 2] * brightness, 0, 255), hsv[..., 2])
    return np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))


def _shadow(image: np.ndarray, light: float) -> np.ndarray:
    """The part left of a slanted line (60 % of the width at the top, 20 % at the bottom) at ``light`` of its light."""
    height, width = image.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width]
    shaded = cols < width * (0.6 - 0.4 * rows / max(height - 1, 1))
    # one entry per sRGB value: a lookup, not a power of every pixel of a full-size frame
    table = np.clip((light * (np.arange(256) / 255.0) ** 2.2) ** (1 / 2.2) * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.where(shaded[..., None], table[image], image)


def _washed(image: np.ndarray, saturation: float, contrast: float) -> np.ndarray:
    """``image`` with its saturation scaled about each pixel's grey (Rec. 601 luma), then its contrast about 128."""
    pixels = image.astype(np.float32)
    grey = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
    flat = 128 + contrast * (grey[..., None] + saturation * (pixels - grey[..., None]) - 128)
    return np.clip(flat + 0.5, 0, 255).astype(np.uint8)


def _graphics(image: np.ndarray, bars: tuple = GRAPHICS) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with ``bars`` (as ``GRAPHICS``) drawn over it, and the mask of the pixels they cover."""
    height, width = image.shape[:2]
    out, covered = image.copy(), np.zeros((height, width), bool)
    for (top, left, bar_h, bar_w), background, block, text in bars:
        rows = slice(round(top * height), round((top + bar_h) * height))
        cols = slice(round(left * width), round((left + bar_w) * width))
        bar_rows, bar_cols = rows.stop - rows.start, cols.stop - cols.start
        out[rows, cols] = background
        out[rows, cols.start:cols.start + bar_cols // 6] = block
        # the text: glyph-sized strokes on the middle third of the bar
        glyph = max(2, bar_cols // 40)
        for start in range(cols.start + bar_cols // 6 + glyph, cols.stop - 2 * glyph, 2 * glyph):
            out[rows.start + bar_rows // 3:rows.stop - bar_rows // 3, start:start + glyph] = text
        covered[rows, cols] = True
    return out, covered


def _pillarbox(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with black bars at the sides around its middle 4:3 part, and the mask of the bars."""
    height, width = image.shape[:2]
    side = max(0, (width - round(height * 4 / 3)) // 2)
    bars = np.zeros((height, width), bool)
    bars[:, :side] = True
    bars[:, width - side:] = True
    return np.where(bars[..., None], np.uint8(0), image), bars


def _logo(image: np.ndarray, players: np.ndarray) -> np.ndarray:
    """``image`` with the ``LOGO`` painted on the ground under the ``players`` (their pixels keep their colour)."""
    (centre_y, centre_x), outer, inner, bar, colour, opacity = LOGO
    height, width = image.shape[:2]
    # the logo's box with a pixel to spare: the arithmetic runs on a few thousand pixels, not a frame's millions
    reach_y, reach_x = max(outer[0], bar[0]), max(outer[1], bar[1])
    box = (slice(max(0, int((centre_y - reach_y) * height) - 1), int((centre_y + reach_y) * height) + 2),
           slice(max(0, int((centre_x - reach_x) * width) - 1), int((centre_x + reach_x) * width) + 2))
    rows, cols = np.mgrid[box]
    y, x = rows / height - centre_y, cols / width - centre_x

    def inside(half_axes: tuple[float, float]) -> np.ndarray:
        return (y / half_axes[0]) ** 2 + (x / half_axes[1]) ** 2 <= 1

    paint = ((inside(outer) & ~inside(inner)) | ((np.abs(y) <= bar[0]) & (np.abs(x) <= bar[1]))) & ~players[box]
    blend = image[box] * (1 - opacity) + np.array(colour) * opacity
    out = image.copy()
    out[box] = np.where(paint[..., None], np.clip(blend + 0.5, 0, 255).astype(np.uint8), image[box])
    return out


def _window(shape: tuple[int, int], top: float, left: float, crop_h: int, crop_w: int) -> tuple[slice, slice]:
    """The ``crop_h x crop_w`` window at (top, left), moved into a frame of ``shape``."""
    h, w = shape
    top = int(np.clip(top, 0, h - crop_h))
    left = int(np.clip(left, 0, w - crop_w))
    return slice(top, top + crop_h), slice(left, left + crop_w)


def _enlarged(image: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
    """The window of an RGB image enlarged back to the image's size (bicubic)."""
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image[window]).resize((w, h), Image.Resampling.BICUBIC))


def _enlarged_mask(mask: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
    """The window of a mask enlarged back to the mask's size (nearest neighbour, as its pixels)."""
    h, w = mask.shape
    crop = Image.fromarray(np.ascontiguousarray(mask[window]).astype(np.uint8) * 255)
    return np.asarray(crop.resize((w, h), Image.Resampling.NEAREST)) > 127


def _meets(bbox: np.ndarray, window: tuple[slice, slice]) -> bool:
    """Whether a COCO box ``[x, y, width, height]`` (as ``toBbox`` gives it from a mask) overlaps ``window``."""
    x, y, width, height = bbox
    rows, cols = window
    return y < rows.stop and y + height > rows.start and x < cols.stop and x + width > cols.start


def _resized_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask at ``size`` (width, height): box average of its pixels, then majority."""
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)) >= 128


def _closeup(mask: np.ndarray, instance: np.ndarray, fraction: float) -> tuple[slice, slice]:
    h, w = mask.shape
    rows, cols = np.nonzero(instance)
    area = len(rows) / fraction
    crop_w = int(min(w, max(16, np.sqrt(area * w / h))))
    crop_h = int(min(h, max(9, crop_w * h / w)))
    return _window(mask.shape, rows.mean() - crop_h / 2, cols.mean() - crop_w / 2, crop_h, crop_w)


def far_touchline(image: np.ndarray, *, max_distance: float = 25.0) -> int:
    """Row of the far touchline: the median over columns of the top edge of the pitch.

    The pitch is every pixel within ``max_distance`` (Delta E) of the median
    colour of the frame's lower half, a wide shot's bottom being pitch.
    """
    from skimage import color

    small = np.asarray(Image.fromarray(image).reduce(4))
    lab = color.rgb2lab(small)
    reference = np.median(lab[lab.shape[0] // 2:].reshape(-1, 3), axis=0)
    pitch = np.linalg.norm(lab - reference, axis=-1) < max_distance
    pitch = ndi.binary_fill_holes(ndi.binary_opening(pitch, iterations=2))
    has_pitch = pitch.any(axis=0)
    if not has_pitch.any():
        return 0
    return int(np.median(np.argmax(pitch[:, has_pitch], axis=0)) * 4)


def _blobs(mask: np.ndarray) -> list[tuple[slice, slice]]:
    labelled, _ = ndi.label(mask, structure=np.ones((3, 3)))
    return [box for box in ndi.find_objects(labelled) if box is not None]


def _zoom(image: np.ndarray, mask: np.ndarray, factor: float) -> tuple[slice, slice]:
    h, w = mask.shape
    crop_h, crop_w = int(h / factor), int(w / factor)
    line = far_touchline(image)
    blobs = _blobs(mask)
    # the player whose top is nearest the far touchline: the one most likely in front of the boards
    nearest = min(blobs, key=lambda box: abs(box[0].start - line), default=None)
    centre = w / 2 if nearest is None else (nearest[1].start + nearest[1].stop) / 2
    return _window(mask.shape, line - 0.35 * crop_h, centre - crop_w / 2, crop_h, crop_w)


def _largest_blob(mask: np.ndarray) -> tuple[slice, slice]:
    return max(_blobs(mask), key=lambda box: (box[0].stop - box[0].start) * (box[1].stop - box[1].start))


def _edge(mask: np.ndarray) -> tuple[slice, slice]:
    h, w = mask.shape
    crop_h, crop_w = int(h / 1.5), int(w / 1.5)
    rows, cols = _largest_blob(mask)
    middle = (cols.start + cols.stop) / 2
    # the window's left edge runs through the player's middle, unless the frame's own edge is in the way
    left = middle if middle + crop_w <= w else middle - crop_w
    return _window(mask.shape, (rows.start + rows.stop) / 2 - crop_h / 2, left, crop_h, crop_w)


def _foot(mask: np.ndarray) -> tuple[slice, slice]:
    h, w = mask.shape
    crop_h, crop_w = int(h / 1.5), int(w / 1.5)
    rows, cols = _largest_blob(mask)
    # the window's foot runs through the player's middle row, unless the frame's own top is in the way
    return _window(mask.shape, (rows.start + rows.stop) / 2 - crop_h, (cols.start + cols.stop) / 2 - crop_w / 2,
                   crop_h, crop_w)


def reaches_touchline(image: np.ndarray, mask: np.ndarray, *, margin: float = 0.01) -> bool:
    """Whether some player blob's top comes within ``margin`` of the frame height of the far touchline, or above."""
    line = far_touchline(image)
    return any(box[0].start <= line + margin * mask.shape[0] for box in _blobs(mask))


def make_variant(dataset: FootballDataset, variant: str, out_dir: str | Path, *, closeup_fraction: float = 0.10,
                 kit_hue_shift: float = 120.0, pitch_hue_shift: float = 40.0, pitch_brightness: float = 0.7,
                 shadow_light: float = 0.3, washed_saturation: float = 0.5, washed_contrast: float = 0.7,
                 resolution: tuple[int, int] = (1280, 720)) -> Path:
    """Write ``variant`` of every sampled frame of ``dataset`` to ``out_dir`` (Kaggle layout); returns it.

    Parameters
    ----------
    dataset : FootballDataset
        Source frames (only its file names and full-size annotations are used).
    variant : str
        One of ``VARIANTS``.
    out_dir : path
    closeup_fraction : float, default 0.10, in (0, 1]
    kit_hue_shift, pitch_hue_shift : float, degrees
    pitch_brightness : float, default 0.7, > 0
    shadow_light : float, default 0.3, in (0, 1]
        Share of the light left in the shade (linear RGB); sun against shade on a pitch is often 3 to 5 times.
    washed_saturation, washed_contrast : float, default 0.5 and 0.7, in (0, 1]
        Factors of the ``washed`` picture's saturation and contrast.
    resolution : (int, int), default (1280, 720)
        Width and height of the ``resolution`` variant's frames, each at least 1.
    """
    check_choice("variant", variant, VARIANTS)
    check_range("closeup_fraction", closeup_fraction, 0, 1, low_open=True)
    check_range("pitch_brightness", pitch_brightness, 0, low_open=True)
    check_range("shadow_light", shadow_light, 0, 1, low_open=True)
    check_range("washed_saturation", washed_saturation, 0, 1, low_open=True)
    check_range("washed_contrast", washed_contrast, 0, 1, low_open=True)
    for side in resolution:
        check_range("resolution", side, 1, integer=True)
    check_range("kit_hue_shift", kit_hue_shift)
    check_range("pitch_hue_shift", pitch_hue_shift)
    resolution = tuple(resolution)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LabError(f"out_dir={str(out)!r} exists and is not an empty folder; the variant would mix with what is "
                       "there: give a new folder", key="out_dir")
    # written beside the folder and moved into place whole: a failed or stopped run leaves no half a dataset
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        _write_variant(dataset, variant, partial, kit_hue_shift, closeup_fraction, pitch_hue_shift,
                       pitch_brightness, shadow_light, washed_saturation, washed_contrast, resolution)
        if out.exists():
            out.rmdir()
        partial.replace(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out


def _write_variant(dataset: FootballDataset, variant: str, out: Path, kit_hue_shift: float, closeup_fraction: float,
                   pitch_hue_shift: float, pitch_brightness: float, shadow_light: float, washed_saturation: float,
                   washed_contrast: float, resolution: tuple[int, int]) -> None:
    """The frames and annotations of ``make_variant``, written into the folder ``out``."""
    (out / "images").mkdir()
    images, annotations = [], []
    for image_id in dataset.image_ids:
        info = dataset.coco.imgs[image_id]
        with Image.open(dataset.image_path(image_id)) as im:
            image = np.asarray(im.convert("RGB"))
        mask = dataset.full_mask(image_id)
        anns = dataset.coco.loadAnns(dataset.coco.getAnnIds(imgIds=[image_id]))
        if variant in ("closeup", *ZOOMS, "edge", "foot", "touchline") and not anns:
            continue
        window, covered = None, None
        if variant == "closeup":
            largest = max(anns, key=lambda a: a["area"])
            window = _closeup(mask, dataset.coco.annToMask(largest).astype(bool), closeup_fraction)
        elif variant in ZOOMS:
            window = _zoom(image, mask, ZOOMS[variant])
        elif variant == "edge":
            window = _edge(mask)
        elif variant == "foot":
            window = _foot(mask)
        elif variant == "touchline":
            if not reaches_touchline(image, mask):
                continue
        elif variant == "kits":
            image = _rotate_hue(image, mask, kit_hue_shift)
        elif variant == "shadow":
            image = _shadow(image, shadow_light)
        elif variant == "washed":
            image = _washed(image, washed_saturation, washed_contrast)
        elif variant == "graphics":
            image, covered = _graphics(image)
        elif variant == "pillarbox":
            image, covered = _pillarbox(image)
        elif variant == "logo":
            image = _logo(image, mask)
        elif variant == "ticker":
            image, covered = _graphics(image, TICKER)
        elif variant == "resolution":
            image = np.asarray(Image.fromarray(image).resize(resolution, Image.Resampling.LANCZOS))
        else:
            image = _rotate_hue(image, ~mask, pitch_hue_shift, pitch_brightness)
        if window is not None:
            image = _enlarged(image, window)
        Image.fromarray(image).save(out / "images" / info["file_name"], quality=92)
        images.append({"id": image_id, "file_name": info["file_name"], "width": image.shape[1],
                       "height": image.shape[0]})
        if window is None and covered is None and variant != "resolution":
            annotations += [{**ann, "id": len(annotations) + i + 1} for i, ann in enumerate(anns)]
            continue
        for ann in anns:
            rle = dataset.coco.annToRLE(ann)
            if window is not None and not _meets(mask_utils.toBbox(rle), window):
                continue
            player = mask_utils.decode(rle).astype(bool)
            if variant == "resolution":
                player = _resized_mask(player, resolution)
            else:
                player = player & ~covered if window is None else _enlarged_mask(player, window)
            if not player.any():
                continue
            rle = mask_utils.encode(np.asfortranarray(player.astype(np.uint8)))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "area": float(player.sum()), "bbox": list(mask_utils.toBbox(rle)),
                                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    (out / "annotations").mkdir(exist_ok=True)
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    (out / "annotations" / "instances_default.json").write_text(json.dumps(coco))


def main(argv: list[str] | None = None) -> Path:
    """``python -m src.data.variants VARIANT OUT_DIR [--root R] [--n-images N] [--seed S] [--kit-hue-shift D]
    [--closeup-fraction F] [--pitch-hue-shift D] [--pitch-brightness B] [--resolution WxH]``."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m src.data.variants",
                                     description="Write a variant of real frames, with its ground truth, in the "
                                                 "Kaggle layout; score it with data.root=OUT_DIR data.n_images=null.")
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("out_dir")
    parser.add_argument("--root", default=os.environ.get("FOOTBALL_DATA"),
                        help="source dataset (default: $FOOTBALL_DATA)")
    parser.add_argument("--n-images", type=int, default=50,
                        help="frames sampled from the source, as data.n_images (default 50: the evaluation frames)")
    parser.add_argument("--seed", type=int, default=0, help="seed of that sample, as seed (default 0)")
    parser.add_argument("--kit-hue-shift", type=float, default=120.0,
                        help="degrees the kits variant turns every player pixel's hue (default 120)")
    parser.add_argument("--closeup-fraction", type=float, default=0.10,
                        help="share of the closeup variant's frame its largest player covers (default 0.10)")
    parser.add_argument("--pitch-hue-shift", type=float, default=40.0,
                        help="degrees the pitch variant turns every other pixel's hue (default 40)")
    parser.add_argument("--pitch-brightness", type=float, default=0.7,
                        help="share of their light the pitch variant leaves those pixels (default 0.7)")
    parser.add_argument("--resolution", default="1280x720",
                        help="WIDTHxHEIGHT of the resolution variant's frames (default 1280x720)")
    args = parser.parse_args(argv)
    if not args.root:
        parser.error("no source frames: pass --root or set FOOTBALL_DATA")
    try:
        resolution = tuple(int(side) for side in args.resolution.lower().split("x"))
    except ValueError:
        resolution = ()
    if len(resolution) != 2:
        parser.error(f"--resolution {args.resolution!r} is not WIDTHxHEIGHT, such as 1280x720")
    try:
        out = make_variant(FootballDataset(args.root, n_images=args.n_images, seed=args.seed), args.variant,
                           args.out_dir, kit_hue_shift=args.kit_hue_shift, closeup_fraction=args.closeup_fraction,
                           pitch_hue_shift=args.pitch_hue_shift, pitch_brightness=args.pitch_brightness,
                           resolution=resolution)
    except LabError as exc:
        message = str(exc)
        flags = {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}
        if exc.key in flags and message.startswith(exc.key):
            # named as the command line names it
            message = flags[exc.key] + message[len(exc.key):]
        raise SystemExit(f"error: {message}") from None
    print(out)
    return out


if __name__ == "__main__":
    main()
