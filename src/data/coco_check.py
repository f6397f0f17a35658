"""Checks of a COCO instances file before any pixel is decoded.

pycocotools trusts its input: a compressed RLE string with characters outside
its alphabet makes it loop forever, and counts that do not add up to the
image's pixels make it write past its buffer. Every image entry and every
annotation is checked here, so a bad file fails with one line that names the
annotation and its image, before a run starts.
"""

from __future__ import annotations

import logging
import math
from numbers import Real

import numpy as np
from PIL import Image

from src.errors import LabError

log = logging.getLogger(__name__)
# the longest number a valid RLE string can hold: 7 characters of 5 bits cover any image pycocotools can decode
_MAX_CHARS_PER_COUNT = 7


def rle_counts(counts: str) -> np.ndarray:
    """Run lengths of a compressed COCO RLE string, as pycocotools decodes them.

    Each number is a little-endian sequence of 5-bit groups, one character
    each (``chr(48 + group)``, bit 0x20 meaning "more follows", bit 0x10 of
    the last group the sign); from the fourth number on, each is stored as the
    difference to the number two places before it.

    Parameters
    ----------
    counts : str
        The ``counts`` string of an RLE segmentation.

    Returns
    -------
    (n,) int64 ndarray
        Alternating run lengths, starting with background.

    Raises
    ------
    ValueError
        If the string has characters outside ``'0'..'o'``, ends inside a
        number, or holds a number too long to be a run length.
    """
    return rle_runs([counts])[0]


def rle_runs(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Run lengths of several compressed COCO RLE strings, decoded together (see ``rle_counts``).

    A frame's dozen annotations are short strings; one pass over all of them
    costs about what one string's pass does.

    Parameters
    ----------
    strings : non-empty list of str

    Returns
    -------
    runs : (n,) int64 ndarray
        Every string's run lengths, one string after the other.
    lengths : (len(strings),) int64 ndarray
        How many runs each string has.

    Raises
    ------
    ValueError
        As ``rle_counts``, if any string is bad.
    """
    try:
        raw = "".join(strings).encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("its counts string has non-ASCII characters") from None
    characters = np.array([len(s) for s in strings])
    if characters.min() == 0:
        raise ValueError("its counts string is empty")
    codes = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if codes.min() < 0 or codes.max() > 63:
        bad = next(ch for ch in "".join(strings) if not 48 <= ord(ch) <= 111)
        raise ValueError(f"its counts string has {bad!r}, outside the RLE alphabet '0'..'o'")
    more = (codes & 0x20) != 0
    last_character = np.cumsum(characters) - 1
    if more[last_character].any():
        raise ValueError("its counts string ends inside a number")
    # every string ends with a whole number, so numbers never straddle two strings
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _MAX_CHARS_PER_COUNT:
        raise ValueError(f"its counts string holds a number of {lengths.max()} characters, too long for a run length")
    position = np.arange(codes.size) - np.repeat(starts, lengths)
    values = np.add.reduceat((codes & 0x1F) << (5 * position), starts)
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])
    numbers = np.diff(np.searchsorted(ends, last_character, side="right"), prepend=0)
    # from a string's second number on, the odd and the even ones are each a running sum within the string
    index = np.arange(values.size) - np.repeat(np.cumsum(numbers) - numbers, numbers)
    group = np.repeat(np.arange(len(strings)), numbers) * 3 + np.where(index == 0, 0, 2 - index % 2)
    order = np.argsort(group, kind="stable")
    ordered = values[order]
    sums = np.cumsum(ordered)
    group_start = np.flatnonzero(np.diff(group[order], prepend=-1))
    sums -= np.repeat(sums[group_start] - ordered[group_start], np.diff(group_start, append=values.size))
    runs = np.empty_like(values)
    runs[order] = sums
    return runs, numbers


def _segmentation_problem(segmentation, height: int, width: int, runs: np.ndarray | None = None) -> str | None:
    """Why ``segmentation`` cannot be rasterized on a ``height x width`` image, or None if it can; ``runs`` are its
    compressed counts already decoded, if they were."""
    if isinstance(segmentation, list):
        if not segmentation:
            return "its segmentation is an empty polygon list"
        for polygon in segmentation:
            if not isinstance(polygon, list) or not all(isinstance(v, Real) and not isinstance(v, bool)
                                                       for v in polygon):
                return f"its segmentation has a polygon that is not a list of numbers ({str(polygon)[:40]})"
            if len(polygon) < 6 or len(polygon) % 2:
                return (f"its segmentation has a polygon of {len(polygon)} coordinates; a polygon needs an even "
                        "number, at least 6 (three x, y points)")
            # pycocotools walks every edge pixel by pixel: a NaN or a far-off point makes it allocate without end
            reach = max(height, width)
            if not all(math.isfinite(v) and -reach <= v <= 2 * reach for v in polygon):
                return (f"its segmentation has a polygon coordinate that is not a number within [-{reach}, "
                        f"{2 * reach}] of the {width}x{height} image ({str(polygon)[:40]})")
        return None
    if not isinstance(segmentation, dict):
        return f"its segmentation {str(segmentation)[:40]!r} is neither a polygon list nor an RLE dict"
    if "counts" not in segmentation or "size" not in segmentation:
        return "its RLE segmentation needs 'counts' and 'size'"
    size = segmentation["size"]
    if not isinstance(size, list) or [int(v) if isinstance(v, Real) and math.isfinite(v) else v
                                      for v in size] != [height, width]:
        return f"its RLE size {size!r} is not the image's [height, width] = [{height}, {width}]"
    counts = segmentation["counts"]
    if isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
            return "its uncompressed RLE counts are not all non-negative integers"
        runs = np.asarray(counts, dtype=np.int64)
    elif isinstance(counts, (str, bytes)):
        try:
            runs = rle_counts(_text(counts)) if runs is None else runs
        except ValueError as exc:
            return str(exc)
        if runs.min() < 0:
            return "its counts string decodes to a negative run length"
    else:
        return f"its RLE counts are a {type(counts).__name__}, not a string or a list"
    if int(runs.sum()) != height * width:
        return (f"its RLE counts cover {int(runs.sum())} pixels, not the image's {height}x{width} = "
                f"{height * width}")
    return None


def _text(counts: str | bytes) -> str:
    return counts.decode("ascii", "replace") if isinstance(counts, bytes) else counts


def _decoded_counts(annotations: list) -> dict[int, np.ndarray]:
    """Runs of every compressed RLE string among ``annotations``, by index, decoded in one pass (a file has
    thousands); empty when some string is bad, so that each is decoded alone and the error names its annotation."""
    strings = {}
    for index, ann in enumerate(annotations):
        segmentation = ann.get("segmentation") if isinstance(ann, dict) else None
        if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), (str, bytes)):
            strings[index] = _text(segmentation["counts"])
    if not strings:
        return {}
    try:
        runs, lengths = rle_runs(list(strings.values()))
    except ValueError:
        return {}
    return dict(zip(strings, np.split(runs, np.cumsum(lengths)[:-1])))


def _check_images(images: list, path) -> dict:
    """Image entries by id; raises LabError for the first entry that cannot be used."""
    by_id = {}
    for image in images:
        if not isinstance(image, dict):
            raise LabError(f"annotation file {path}: an image entry is {str(image)[:60]!r}, not an object")
        for key in ("id", "file_name", "width", "height"):
            if key not in image:
                raise LabError(f"annotation file {path}: an image entry has no {key!r} ({str(image)[:120]}); "
                               "every image needs id, file_name, width and height")
        name = image["file_name"]
        for key in ("width", "height"):
            value = image[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LabError(f"annotation file {path}: image {name!r} (id {image['id']}) has {key} {value!r}; "
                               "it must be a positive integer")
        if image["width"] * image["height"] > (Image.MAX_IMAGE_PIXELS or float("inf")):
            raise LabError(f"annotation file {path}: image {name!r} is {image['width']}x{image['height']}, over "
                           f"Pillow's decompression-bomb limit of {Image.MAX_IMAGE_PIXELS} pixels; downscale it")
        if image["id"] in by_id:
            raise LabError(f"annotation file {path}: image id {image['id']!r} is used twice "
                           f"({by_id[image['id']]['file_name']!r} and {name!r}); image ids must be unique")
        by_id[image["id"]] = image
    return by_id


def check_coco(dataset: dict, path, *, strict: bool = False) -> dict:
    """Check a parsed COCO instances file; returns it without annotations of unknown images.

    Parameters
    ----------
    dataset : dict
        The parsed file, with ``images`` and ``annotations`` lists.
    path : str or Path
        The file, for messages.
    strict : bool, default False
        Refuse annotations whose ``image_id`` is not among the images
        instead of dropping them with a warning.

    Returns
    -------
    dict
        A shallow copy of ``dataset`` whose ``annotations`` all belong to a
        listed image; the input is not changed.

    Raises
    ------
    LabError
        For the first image entry or annotation that cannot be used, naming
        it, its image and what is wrong.
    """
    images = _check_images(dataset["images"], path)
    decoded = _decoded_counts(dataset["annotations"])
    kept, orphans = [], []
    # pycocotools indexes annotations by id: a repeated id would give one image another image's ground truth
    first_image: dict = {}
    for index, ann in enumerate(dataset["annotations"]):
        if not isinstance(ann, dict):
            raise LabError(f"annotation file {path}: annotation #{index} is {str(ann)[:60]!r}, not an object")
        if "id" not in ann:
            raise LabError(f"annotation file {path}: annotation #{index} (image_id {ann.get('image_id')!r}) has "
                           "no 'id'; every annotation needs id, image_id and segmentation")
        where = f"annotation id {ann['id']!r}"
        if "image_id" not in ann:
            raise LabError(f"annotation file {path}: {where} has no 'image_id'")
        image = images.get(ann["image_id"])
        if image is None:
            orphans.append(ann["id"])
            continue
        if ann["id"] in first_image:
            raise LabError(f"annotation file {path}: annotation id {ann['id']!r} is used twice (images "
                           f"{first_image[ann['id']]!r} and {image['file_name']!r}); annotation ids must be unique")
        first_image[ann["id"]] = image["file_name"]
        where += f" (image {image['file_name']!r}, id {ann['image_id']})"
        if "segmentation" not in ann:
            raise LabError(f"annotation file {path}: {where} has no 'segmentation'")
        problem = _segmentation_problem(ann["segmentation"], image["height"], image["width"], decoded.get(index))
        if problem is not None:
            raise LabError(f"annotation file {path}: {where}: {problem}; fix or remove the annotation")
        kept.append(ann)
    if orphans:
        if strict:
            raise LabError(f"annotation file {path}: {len(orphans)} annotation(s) (ids {orphans[:5]}...) point to "
                           "an image id not in 'images'; fix them, or set data.strict=false to drop them")
        log.warning("annotation file %s: dropped %d annotation(s) whose image_id is not in 'images' (ids %s); "
                    "data.strict=true refuses them", path, len(orphans), orphans[:5])
    return {**dataset, "annotations": kept}


__all__ = ["check_coco", "rle_counts", "rle_runs"]
