"""Frames and ground truth of a dataset in the Kaggle "Football Player Segmentation" layout.

The layout is ``ROOT/images/<name>.jpg`` plus one COCO file,
``ROOT/annotations/instances_default.json``. Segmentations may be polygons or
RLE; the union of an image's annotations is its ground-truth player mask.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from src.data.coco_check import check_coco, rle_runs
from src.data.rle_blocks import block_factor, reduce_rles
from src.data.synthetic import ensure_synthetic_dataset
from src.errors import LabError, check_bool, check_range, check_seed
from src.frame import Frame, read_image

log = logging.getLogger(__name__)
# decoded frames shared by every dataset object of this process, so the trials of a sweep decode once
_FRAMES: OrderedDict[tuple, Frame] = OrderedDict()
FRAME_CACHE_SIZE = 1024
# parsed annotation files of this process, by file version and strictness
_COCO: OrderedDict[tuple, COCO] = OrderedDict()
COCO_CACHE_SIZE = 8
# samples per side of a working pixel when telling which annotation covers it most
SAMPLES = 4


# the longer side a frame is brought near by ``scale="auto"``: a 1920x1080 broadcast at factor 8, the size at
# which the pixel-sized settings (a line's width, a leg one pixel wide, an outline's ring) were measured
AUTO_LONG_SIDE = 240


def check_scale(scale) -> None:
    """Raise LabError unless ``scale`` is ``"auto"`` or a whole downscale factor of at least 1."""
    if scale == "auto":
        return
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise LabError(f"scale={scale!r} must be an integer or auto", key="scale")
    if scale < 1:
        raise LabError(f"scale={scale!r} is out of range; allowed [1, inf] or auto", key="scale")


def frame_scale(scale: int | str, width: int, height: int) -> int:
    """The downscale factor of a ``width x height`` frame: ``scale``, or for ``"auto"`` the whole factor that
    brings its longer side nearest ``AUTO_LONG_SIDE`` pixels (8 for 1080p, 5 for 720p, 16 for 2160p)."""
    if scale != "auto":
        return scale
    return max(1, round(max(width, height) / AUTO_LONG_SIDE))


def scale_label(scale: int | str, sizes) -> str:
    """How a run names its downscale: the factor, or ``"auto (5, 8)"`` where frames of the full ``sizes``
    ``(width, height)`` come to several."""
    if scale != "auto":
        return str(scale)
    factors = sorted({frame_scale(scale, *size) for size in sizes}) or [scale]
    return str(factors[0]) if len(factors) == 1 else f"{scale} ({', '.join(map(str, factors))})"


def working_size(width: int, height: int, scale: int | str) -> tuple[int, int]:
    """Size ``(width, height)`` of an image of ``width x height`` downscaled by ``scale`` (see ``frame_scale``)."""
    factor = frame_scale(scale, width, height)
    return width // factor, height // factor


def reduce_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Reduce a full-size bool mask to ``size``: box average, then majority.

    Every run reduces ground truth this way, whatever its features or scale.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape[::-1] == tuple(size):
        return mask.copy()
    if mask.flags.f_contiguous and not mask.flags.c_contiguous:
        # pycocotools decodes column-major; reducing the transpose (a box filter is
        # symmetric) spares PIL a full-size reordering copy
        return reduce_mask(mask.T, size[::-1]).T
    (w, h), (full_h, full_w) = size, mask.shape
    full = Image.fromarray(mask.view(np.uint8) * np.uint8(255))
    if full_h % h == 0 and full_w % w == 0 and full_h // h == full_w // w:
        small = full.reduce(full_h // h)  # the same box average as BOX below, in one fast pass
    else:
        small = full.resize(size, Image.Resampling.BOX)
    return np.asarray(small) >= 128


def reduce_instances(rles: list[dict], size: tuple[int, int], union: np.ndarray) -> np.ndarray:
    """Label each pixel of the reduced ``union`` with the annotation covering most of it.

    Coverage is sampled on a ``SAMPLES x SAMPLES`` grid inside each working
    pixel, read straight from the RLE runs, so no annotation is decoded at
    full size (that would cost more than the frame's JPEG decode).

    Parameters
    ----------
    rles : list of compressed COCO RLE dicts
        One per annotation, in annotation order, all of one full size.
    size : (width, height)
        Working size.
    union : (height, width) bool ndarray
        ``reduce_mask`` of the annotations' union; only its pixels are labelled.

    Returns
    -------
    (height, width) int32 ndarray
        0 outside ``union``, ``i`` for the i-th annotation (1-based).
    """
    labels = np.zeros(union.shape, np.int32)
    if not rles or not union.any():
        return labels
    best = np.zeros(union.shape)
    (full_h, full_w), (width, height) = rles[0]["size"], size
    offsets = (np.arange(SAMPLES) + 0.5) / SAMPLES
    runs, lengths = rle_runs([rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"]
                              for rle in rles])
    ends_of = [np.cumsum(runs_of) for runs_of in np.split(runs, np.cumsum(lengths)[:-1])]
    for index, (ends, box) in enumerate(zip(ends_of, mask_utils.toBbox(rles)), start=1):
        x, y, w, h = box
        window = union[int(y * height / full_h):int(np.ceil((y + h) * height / full_h)),
                       int(x * width / full_w):int(np.ceil((x + w) * width / full_w))]
        rows, cols = np.nonzero(window)
        if rows.size == 0:
            continue
        rows, cols = rows + int(y * height / full_h), cols + int(x * width / full_w)
        sample_rows = ((rows[:, None] + offsets) * full_h / height).astype(np.int64)
        sample_cols = ((cols[:, None] + offsets) * full_w / width).astype(np.int64)
        flat = (sample_cols[:, None, :] * full_h + sample_rows[:, :, None]).reshape(len(rows), -1)
        # runs alternate background/foreground in column-major order: an odd run index is inside
        run = np.searchsorted(ends, flat, side="right")
        cover = (run % 2 == 1).mean(axis=1)
        larger = cover > best[rows, cols]
        labels[rows[larger], cols[larger]] = index
        best[rows[larger], cols[larger]] = cover[larger]
    return labels


def coco_truth(coco: COCO, image_id: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Ground truth of one COCO image at working ``size``: union mask, instance labels, number of annotations."""
    info = coco.imgs[image_id]
    rles = [coco.annToRLE(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=None))]
    factor = block_factor((info["height"], info["width"]), size[::-1])
    if rles and factor is not None:
        return *reduce_rles(rles, factor), len(rles)
    mask = reduce_mask(_union(rles, (info["height"], info["width"])), size)
    return mask, reduce_instances(rles, size, mask), len(rles)


def _union(rles: list[dict], shape: tuple[int, int]) -> np.ndarray:
    if not rles:
        return np.zeros(shape, dtype=bool)
    # decoded values are 0 and 1, so a view is the bool mask without a full-size copy
    return mask_utils.decode(mask_utils.merge(rles)).view(bool)


def cached_frame(key: tuple, decode) -> Frame:
    """The frame of ``key`` from the process's frame cache, decoded by ``decode()`` on a miss.

    Paths in ``key`` are replaced by their modification time and size, so an
    edited file is decoded again. Cached arrays are read-only.
    """
    key = tuple((str(k), k.stat().st_mtime_ns, k.stat().st_size) if isinstance(k, Path) else k for k in key)
    if key in _FRAMES:
        _FRAMES.move_to_end(key)
        return _FRAMES[key]
    frame = decode()
    for array in (frame.image, frame.mask, frame.instances):
        if array is not None:
            array.setflags(write=False)
    _FRAMES[key] = frame
    if len(_FRAMES) > FRAME_CACHE_SIZE:
        _FRAMES.popitem(last=False)
    return frame


class FootballDataset:
    """A sample of frames of a football dataset at working size.

    Parameters
    ----------
    root : str or None
        Dataset folder. None (or "", an empty FOOTBALL_DATA) means the
        project's synthetic dataset, generated on first use under
        ``synthetic_root``.
    n_images : int or None, default 50
        Number of frames to sample; None takes all. More than the dataset has
        takes all, with a warning.
    scale : int or "auto", default 8
        Downscale factor; 1920x1080 frames become 240x135 at 8. ``"auto"``
        picks each frame's own factor so that its longer side comes near 240
        pixels (``frame_scale``): footage of another resolution is then seen
        at the size the pixel-sized settings were measured at.
    seed : int, default 0
        Seed of the frame sample.
    image_dir : str, default "images"
    annotation_file : str, default "annotations/instances_default.json"
    synthetic_root : str, optional
        Where the synthetic dataset lives when ``root`` is None.
    synthetic_images : int, default 12
        Size of the synthetic dataset.
    cache_frames : bool, default True
        Keep decoded frames in memory for the process (read-only arrays),
        keyed by file, modification time and scale, so repeated runs of one
        process (the trials of a sweep) decode each frame once. Off for
        timing decoding.
    write_masks : bool, default True
        Whether a run writes each frame's mask as a PNG under
        ``predictions/masks``.

    Everything that can be checked without decoding pixels is checked here,
    so a bad path or file fails before any work starts.
    """

    def __init__(self, root: str | None = None, n_images: int | None = 50, scale: int | str = 8, seed: int = 0, *,
                 image_dir: str = "images", annotation_file: str = "annotations/instances_default.json",
                 synthetic_root: str | None = None, synthetic_images: int = 12, cache_frames: bool = True,
                 strict: bool = False, warn_synthetic: bool = True, write_masks: bool = True):
        check_scale(scale)
        if n_images is not None:
            check_range("n_images", n_images, 1, integer=True)
        check_seed("seed", seed)
        check_range("synthetic_images", synthetic_images, 1, integer=True)
        for option, value in [("cache_frames", cache_frames), ("strict", strict), ("warn_synthetic", warn_synthetic),
                              ("write_masks", write_masks)]:
            check_bool(option, value)
        if root is None or str(root) == "":
            if synthetic_root is None:
                raise LabError("root is null and synthetic_root is null; set one of them", key="root")
            self.source = "synthetic"
            root = ensure_synthetic_dataset(synthetic_root, n_images=synthetic_images)
            if warn_synthetic:
                log.warning("NO REAL FRAMES: using the generated synthetic set (%d frames in %s); set FOOTBALL_DATA "
                            "or data.root to a folder with images/ and annotations/ for real footage",
                            synthetic_images, root)
        else:
            self.source = "football"
        self.root = Path(root)
        self.scale = scale
        self.seed = seed
        self.cache_frames = cache_frames
        self.write_masks = write_masks
        self.image_dir = self.root / image_dir
        self.annotation_path = self.root / annotation_file
        if not self.root.is_dir():
            raise LabError(f"root={str(root)!r} is not a folder; point it (or FOOTBALL_DATA) at a dataset "
                           "with images/ and annotations/, or leave it unset for the synthetic set", key="root")
        self.coco = _load_coco(self.annotation_path, strict=strict)
        self.image_ids = self._sample(n_images)
        for image_id in self.image_ids:
            self._check_image(image_id)

    def _sample(self, n_images: int | None) -> list[int]:
        ids = sorted(self.coco.getImgIds())
        if not ids:
            raise LabError(f"annotation file {self.annotation_path} lists no images")
        if n_images is None or n_images >= len(ids):
            if n_images is not None and n_images > len(ids) and self.source != "synthetic":
                log.warning("data.n_images=%d but the dataset has %d images; using all of them", n_images, len(ids))
            return ids
        rng = np.random.default_rng(self.seed)
        return sorted(int(ids[i]) for i in rng.choice(len(ids), size=n_images, replace=False))

    def image_size(self, image_id: int) -> tuple[int, int]:
        """Working size ``(width, height)`` of an image, from its annotation entry."""
        info = self.coco.imgs[image_id]
        return working_size(info["width"], info["height"], self.scale)

    @property
    def scale_label(self) -> str:
        """The downscale factor of the sampled frames, as runs log it (``scale_label``)."""
        return scale_label(self.scale, (self.full_size(i) for i in self.image_ids))

    def image_path(self, image_id: int) -> Path:
        """Where an image is: its ``file_name`` under the image folder, or under the dataset's root where only
        that exists (exporters that name images from the root, ``images/0.jpg``)."""
        name = self.coco.imgs[image_id]["file_name"]
        path = self.image_dir / name
        if not path.is_file() and (self.root / name).is_file():
            return self.root / name
        return path

    def full_size(self, image_id: int) -> tuple[int, int]:
        """``(width, height)`` of the image, from its annotation entry."""
        info = self.coco.imgs[image_id]
        return info["width"], info["height"]

    def labelled(self, image_id: int) -> bool:
        """Every frame of this dataset has ground truth (possibly no players)."""
        return True

    def _check_image(self, image_id: int) -> None:
        info = self.coco.imgs[image_id]
        if not self.image_path(image_id).is_file():
            raise LabError(f"image {info['file_name']!r} (id {image_id}) named in {self.annotation_path} "
                           f"is missing from {self.image_dir}")
        w, h = self.image_size(image_id)
        if w < 1 or h < 1:
            raise LabError(f"scale={self.scale} leaves no pixels of a {info['width']}x{info['height']} "
                           f"image; use a scale of at most {min(info['width'], info['height'])}", key="scale")
        # the header only: a size that disagrees with the annotations is found before the first frame, not at its
        # own; a file that cannot be read is left to its decoding, which names it
        try:
            with Image.open(self.image_path(image_id)) as im:
                size = im.size
        except (OSError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError):
            return
        if size != (info["width"], info["height"]):
            raise LabError(f"image {self.image_path(image_id)} is {size[0]}x{size[1]} but the annotations say "
                           f"{info['width']}x{info['height']}; fix the annotation file or the image")

    def __len__(self) -> int:
        return len(self.image_ids)

    def frame(self, image_id: int, *, decoded: Frame | None = None) -> Frame:
        """Decode one frame and rasterize its ground truth at working size.

        ``decoded``, where given, is this frame as another process decoded it
        (a worker of ``src.pipeline.evaluate``): it is cached and returned
        instead of decoding again.
        """
        decode = (lambda: decoded) if decoded is not None else (lambda: self._decode(image_id))
        if not self.cache_frames:
            return decode()
        return cached_frame((image_id, self.scale, self.image_path(image_id), self.annotation_path), decode)

    def _decode(self, image_id: int) -> Frame:
        info = self.coco.imgs[image_id]
        size = self.image_size(image_id)
        image = read_image(self.image_path(image_id), size, expected=(info["width"], info["height"]))
        mask, instances, n_instances = coco_truth(self.coco, image_id, size)
        return Frame(image=image, mask=mask, image_id=image_id, file_name=info["file_name"],
                     scale=frame_scale(self.scale, info["width"], info["height"]),
                     n_instances=n_instances, path=self.image_path(image_id), instances=instances)

    def _annotations(self, image_id: int) -> list[dict]:
        return self.coco.loadAnns(self.coco.getAnnIds(imgIds=[image_id], iscrowd=None))

    def full_mask(self, image_id: int) -> np.ndarray:
        """Union of the image's annotations at full size, (H, W) bool."""
        info = self.coco.imgs[image_id]
        return _union([self.coco.annToRLE(a) for a in self._annotations(image_id)], (info["height"], info["width"]))

    def frames(self) -> list[Frame]:
        """All sampled frames, in image-id order."""
        return [self.frame(i) for i in self.image_ids]


def _load_coco(path: Path, *, strict: bool = False) -> COCO:
    """The checked and indexed COCO file at ``path``, parsed once per process and version of the file.

    A sweep builds its dataset again for every trial; parsing and checking
    the file each time cost more than scoring a trial's frames at small
    scales. The object is shared and must not be altered. Warnings about
    the file's content are logged when it is first parsed.
    """
    if not path.is_file():
        raise LabError(f"annotation file {path} does not exist; data.annotation_file must name a COCO json "
                       "inside data.root")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, strict)
    if key not in _COCO:
        _COCO[key] = _parse_coco(path, strict=strict)
        if len(_COCO) > COCO_CACHE_SIZE:
            _COCO.popitem(last=False)
    return _COCO[key]


def _parse_coco(path: Path, *, strict: bool) -> COCO:
    try:
        dataset = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabError(f"annotation file {path} is not valid JSON ({exc}); it must be a COCO instances file") from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("images"), list) \
            or not isinstance(dataset.get("annotations"), list):
        raise LabError(f"annotation file {path} is not a COCO instances file: it needs 'images' and "
                       "'annotations' lists")
    dataset = check_coco(dataset, path, strict=strict)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco
