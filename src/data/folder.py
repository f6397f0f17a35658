"""Any folder of images as a dataset: unlabelled footage, scored too where a COCO file names its frames."""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from src.data.football import _load_coco, cached_frame, check_scale, coco_truth, frame_scale, scale_label, working_size
from src.errors import LabError, check_bool, check_range
from src.frame import Frame, read_image

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# the annotation file a folder may hold, looked for when none is named
DEFAULT_ANNOTATIONS = "annotations/instances_default.json"


class ImageFolder:
    """Every image of a folder, sorted by path, at working size.

    Parameters
    ----------
    root : str
        The folder.
    scale : int or "auto", default 8
        Downscale factor; ``"auto"`` as for ``FootballDataset`` (each image's own).
    n_images : int or None, default None
        The first ``n_images`` in name order; None takes all.
    recursive : bool, default False
        Also take the images of subfolders.
    annotation_file : str or None, default None
        A COCO instances file, relative to ``root`` or absolute; a file given
        must exist. None uses ``annotations/instances_default.json`` under
        ``root`` when there is one, and leaves every frame unlabelled when
        not. The images the file names (matched by path relative to
        ``root``, else by file name) carry their ground truth and their COCO
        ids; the others are unlabelled.
    cache_frames : bool, default True
        As for ``FootballDataset``.
    strict : bool, default False
        As for ``FootballDataset``.
    write_masks : bool, default True
        As for ``FootballDataset``.

    Files without an image suffix (jpg, jpeg, png, webp) are skipped and
    counted in one log line.
    """

    def __init__(self, root: str, scale: int | str = 8, n_images: int | None = None, *, recursive: bool = False,
                 annotation_file: str | None = None, cache_frames: bool = True,
                 strict: bool = False, write_masks: bool = True):
        check_scale(scale)
        if n_images is not None:
            check_range("n_images", n_images, 1, integer=True)
        for option, value in [("recursive", recursive), ("cache_frames", cache_frames), ("strict", strict),
                              ("write_masks", write_masks)]:
            check_bool(option, value)
        self.root = Path(str(root)).expanduser()
        if not self.root.is_dir():
            raise LabError(f"root={str(root)!r} is not a folder; give data=folder a folder of images", key="root")
        self.source, self.scale, self.cache_frames, self.write_masks = "folder", scale, cache_frames, write_masks
        files = sorted(p for p in (self.root.rglob("*") if recursive else self.root.iterdir()) if p.is_file())
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            hint = "" if recursive else "; data.recursive=true also looks in subfolders"
            raise LabError(f"root={str(root)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}){hint}", key="root")
        annotation_path = Path(DEFAULT_ANNOTATIONS if annotation_file is None else str(annotation_file)).expanduser()
        self.annotation_path = annotation_path if annotation_path.is_absolute() else self.root / annotation_path
        if annotation_file is not None and not self.annotation_path.is_file():
            raise LabError(f"annotation_file={str(annotation_file)!r} does not exist ({self.annotation_path}); give a "
                           "COCO instances file, or null for none", key="annotation_file")
        skipped = len(files) - len(images) - (self.annotation_path in files)
        if skipped:
            log.info("data.root=%s: skipped %d files that are not images (%s)", self.root, skipped,
                     ", ".join(IMAGE_SUFFIXES))
        self.coco = _load_coco(self.annotation_path, strict=strict) if self.annotation_path.is_file() else None
        self._paths, self._labelled = {}, set()
        named = self._coco_ids()
        next_id = max(named.values(), default=0) + 1
        for path in images[:n_images]:
            image_id = named.get(path.relative_to(self.root).as_posix(), named.get(path.name))
            if image_id is None:
                image_id, next_id = next_id, next_id + 1
            elif image_id in self._paths:
                # two frames under one annotation would score one of them against the other's ground truth
                name = self.coco.imgs[image_id]["file_name"]
                raise LabError(f"root={str(root)!r}: {self._paths[image_id].relative_to(self.root).as_posix()} and "
                               f"{path.relative_to(self.root).as_posix()} both match file_name {name!r} of "
                               f"{self.annotation_path}; name each frame there by its path under the root",
                               key="root")
            else:
                self._labelled.add(image_id)
            self._paths[image_id] = path
        self.image_ids = list(self._paths)
        self._sizes = {}

    def _coco_ids(self) -> dict[str, int]:
        if self.coco is None:
            return {}
        return {info["file_name"]: image_id for image_id, info in self.coco.imgs.items()}

    def __len__(self) -> int:
        return len(self.image_ids)

    def labelled(self, image_id: int) -> bool:
        """Whether the annotation file names this frame."""
        return image_id in self._labelled

    @property
    def scale_label(self) -> str:
        """The downscale factor of the images, as runs log it (``scale_label``)."""
        return scale_label(self.scale, (self.full_size(i) for i in self.image_ids))

    def image_path(self, image_id: int) -> Path:
        return self._paths[image_id]

    def full_size(self, image_id: int) -> tuple[int, int]:
        """``(width, height)`` of the image file, read from its header; a labelled frame's must be its annotation's
        (read when a run starts, for its scale label, so a disagreement is found before the first frame)."""
        if image_id not in self._sizes:
            path = self._paths[image_id]
            try:
                with Image.open(path) as im:
                    size = im.size
            except Image.DecompressionBombError as exc:
                raise LabError(f"image {path} is too large to decode safely ({exc}); downscale it") from None
            except (OSError, SyntaxError, UnidentifiedImageError) as exc:
                raise LabError(f"image {path} cannot be read ({exc}); replace the file or move it out of "
                               "data.root") from None
            info = self.coco.imgs[image_id] if image_id in self._labelled else None
            if info is not None and size != (info["width"], info["height"]):
                raise LabError(f"image {path} is {size[0]}x{size[1]} but the annotations say "
                               f"{info['width']}x{info['height']}; fix the annotation file or the image")
            self._sizes[image_id] = size
        return self._sizes[image_id]

    def image_size(self, image_id: int) -> tuple[int, int]:
        """Working size ``(width, height)``."""
        size = working_size(*self.full_size(image_id), self.scale)
        if min(size) < 1:
            raise LabError(f"data.scale={self.scale} leaves no pixels of {self._paths[image_id]}; use a smaller scale")
        return size

    def frame(self, image_id: int, *, decoded: Frame | None = None) -> Frame:
        """Decode one frame at working size, with its ground truth when the annotation file names it.

        ``decoded``: as for ``FootballDataset.frame``.
        """
        decode = (lambda: decoded) if decoded is not None else (lambda: self._decode(image_id))
        if not self.cache_frames:
            return decode()
        key = (image_id, self.scale, self._paths[image_id],
               *((self.annotation_path,) if self.coco is not None else ()))
        return cached_frame(key, decode)

    def _decode(self, image_id: int) -> Frame:
        path, size = self._paths[image_id], self.image_size(image_id)
        expected = None
        if self.labelled(image_id):
            info = self.coco.imgs[image_id]
            expected = (info["width"], info["height"])
        image = read_image(path, size, expected=expected)
        mask = instances = None
        n_instances = 0
        if expected is not None:
            mask, instances, n_instances = coco_truth(self.coco, image_id, size)
        return Frame(image=image, mask=mask, image_id=image_id, file_name=path.relative_to(self.root).as_posix(),
                     scale=frame_scale(self.scale, *self.full_size(image_id)), n_instances=n_instances, path=path,
                     instances=instances)

    def frames(self) -> list[Frame]:
        """All frames, in name order."""
        return [self.frame(i) for i in self.image_ids]


__all__ = ["IMAGE_SUFFIXES", "ImageFolder"]
