"""What a run found, in files other tools read: COCO results, a table of components, mask images.

Everything is in full-resolution pixel coordinates, so the files line up
with the source footage whatever the working scale.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tarfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy import ndimage as ndi

PERSON = 1
COMPONENT_FIELDS = ("frame", "timestamp", "image_id", "file_name", "component", "centroid_x", "centroid_y", "area",
                    "bbox_x", "bbox_y", "bbox_w", "bbox_h")


def upscale(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A working-size mask (H, W) at full ``size`` ``(width, height)``, nearest neighbour."""
    width, height = size
    if width % mask.shape[1] == 0 and height % mask.shape[0] == 0:
        return np.repeat(np.repeat(mask, height // mask.shape[0], axis=0), width // mask.shape[1], axis=1)
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 127


def full_size_png(mask: np.ndarray, size: tuple[int, int]) -> bytes:
    """``upscale(mask, size)`` as a one-bit PNG, deflated fast (a third less time than an 8-bit PNG at best
    compression).

    With whole scale factors the rows are widened and packed at working
    height and the packed rows repeated, so the full-size mask is never
    built: half the time, and the same file.
    """
    width, height = size
    rows, cols = mask.shape
    if width % cols or height % rows:
        packed = np.packbits(upscale(mask, size), axis=1)
    else:
        packed = np.repeat(np.packbits(np.repeat(mask, width // cols, axis=1), axis=1), height // rows, axis=0)
    buffer = io.BytesIO()
    Image.frombytes("1", size, packed.tobytes()).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def full_size_rle(mask: np.ndarray, size: tuple[int, int]) -> dict:
    """Compressed COCO RLE of ``upscale(mask, size)``, without building the full-size mask when it can.

    With whole scale factors each working pixel stands for ``sy`` pixels of a
    full column and each working column for ``sx`` full columns, so the
    full-size runs are the runs of the column-repeated mask times ``sy``,
    and the columns left and right of the mask are one run of background
    each: a player costs what his own columns cost, not the frame's.
    """
    width, height = size
    rows, cols = mask.shape
    if width % cols or height % rows:
        rle = mask_utils.encode(np.asfortranarray(upscale(mask, size).astype(np.uint8)))
    else:
        scale_x = width // cols
        used = np.flatnonzero(np.asarray(mask).any(axis=0))
        first, stop = (used[0], used[-1] + 1) if used.size else (0, 0)
        pixels = np.repeat(np.asarray(mask[:, first:stop], dtype=np.int8), scale_x, axis=1).ravel(order="F")
        bounds = np.concatenate(([0], np.flatnonzero(np.diff(pixels)) + 1, [pixels.size]))
        runs = list(np.diff(bounds) * (height // rows)) if pixels.size else []
        before, after = first * scale_x * height, (cols - stop) * scale_x * height
        # COCO runs alternate background, foreground, ... starting with background
        runs = [before, *runs] if pixels.size and pixels[0] else [before + (runs[0] if runs else 0), *runs[1:]]
        if pixels.size and pixels[-1] and after:
            runs.append(after)
        elif not (pixels.size and pixels[-1]):
            runs[-1] += after
        rle = mask_utils.frPyObjects({"counts": [int(r) for r in runs], "size": [height, width]}, height, width)
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}


def component_rows(result, size: tuple[int, int], *, frame: int, timestamp: float | None = None) -> list[dict]:
    """One row per player component of a frame: centroid, area and box in full-resolution pixels.

    Coordinates are continuous with 0 at the image's left and top edges, as
    in COCO boxes; a working pixel ``(row, col)`` covers
    ``[col * sx, (col + 1) * sx)`` with ``sx = width / W``.
    """
    components = result.player.components
    scale_x, scale_y = size[0] / components.shape[1], size[1] / components.shape[0]
    boxes = ndi.find_objects(components)
    areas = np.bincount(components.ravel(), minlength=len(boxes) + 1)[1:]
    rows = []
    for index, ((row, col), box, area) in enumerate(zip(result.player.centroids, boxes, areas), start=1):
        rows.append({"frame": frame, "timestamp": "" if timestamp is None else f"{timestamp:.3f}",
                     "image_id": result.frame.image_id, "file_name": result.frame.file_name, "component": index,
                     "centroid_x": round((col + 0.5) * scale_x, 2), "centroid_y": round((row + 0.5) * scale_y, 2),
                     "area": round(float(area) * scale_x * scale_y, 1),
                     "bbox_x": round(box[1].start * scale_x, 2), "bbox_y": round(box[0].start * scale_y, 2),
                     "bbox_w": round((box[1].stop - box[1].start) * scale_x, 2),
                     "bbox_h": round((box[0].stop - box[0].start) * scale_y, 2)})
    return rows


def coco_results(result, size: tuple[int, int]) -> list[dict]:
    """COCO results entries (``loadRes`` format) of a frame: one RLE per player component, score 1."""
    return [{"image_id": result.frame.image_id, "category_id": PERSON, "score": 1.0,
             "segmentation": full_size_rle(result.player.components == index, size)}
            for index in range(1, result.player.n_components + 1)]


@dataclass(frozen=True)
class FrameOutputs:
    """What a frame adds to ``predictions/``, made ready to write: work that can run beside other frames.

    coco : str, the frame's COCO results entries as JSON objects joined by commas ("" for none).
    rows : list of dict, its rows of ``components.csv`` without the ``frame`` column (the writer numbers frames).
    mask_png : bytes or None, its full-size mask as PNG.
    overlay : (h, w, 3) uint8 ndarray or None, its frame of the overlay video.
    """

    coco: str
    rows: list
    mask_png: bytes | None
    overlay: np.ndarray | None


class TarStream:
    """An uncompressed tar archive written member by member, holding nothing per member in memory.

    ``tarfile`` keeps every member's header to list them later, and
    ``zipfile`` its central directory: about half a kilobyte a frame, which
    a whole match would feel. Members here are written and forgotten; any
    tar reader (``tarfile``, ``tar xf``) lists and extracts them.
    """

    def __init__(self, path: str | Path):
        self._handle = open(path, "wb")
        self._written = 0
        self._mtime = int(time.time())

    def add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), self._mtime, 0o644
        self._write(info.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes(-len(data) % tarfile.BLOCKSIZE))

    def close(self) -> None:
        """End the archive: two zero blocks, then zeros up to a whole tar record."""
        end = 2 * tarfile.BLOCKSIZE
        self._write(bytes(end + -(self._written + end) % tarfile.RECORDSIZE))
        self._handle.close()

    def _write(self, data: bytes) -> None:
        self._handle.write(data)
        self._written += len(data)


class PredictionWriter:
    """Writes ``predictions/`` under ``out_dir`` frame by frame; the folder appears complete or not at all.

    Files: ``coco_results.json`` (COCO results format), ``components.csv``
    and the masks at full size: a PNG per frame under ``masks/``, or for a
    video (``fps`` given) one ``masks.tar`` of them and an ``overlay.mp4``
    with players tinted and centroids marked. Everything goes to a hidden
    folder first and is renamed by ``close()``; ``abort()`` removes it, so a
    killed run never leaves a folder that looks finished. Memory stays flat:
    each frame is written as it comes.

    Parameters
    ----------
    out_dir : path
    full_size : callable
        ``full_size(image_id) -> (width, height)`` of the source frame.
    write_masks : bool, default True
    fps : float or None, default None
        Frame rate of the overlay video; None for image folders (no video).
    overlay_width : int, default 480
        Minimum width of the overlay video's frames.
    """

    def __init__(self, out_dir: str | Path, full_size, *, write_masks: bool = True, fps: float | None = None,
                 overlay_width: int = 480):
        self.final = Path(out_dir) / "predictions"
        self.partial = Path(out_dir) / f".predictions.partial-{os.getpid()}"
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)
        self.full_size, self.write_masks, self.fps, self.overlay_width = full_size, write_masks, fps, overlay_width
        self.frames = 0
        self._coco = open(self.partial / "coco_results.json", "w")
        self._coco.write("[")
        self._entries = 0
        self._csv_file = open(self.partial / "components.csv", "w", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=COMPONENT_FIELDS)
        self._csv.writeheader()
        self._tar = self._video = None
        if write_masks and fps is not None:
            self._tar = TarStream(self.partial / "masks.tar")
        elif write_masks:
            (self.partial / "masks").mkdir()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def prepare(self, result) -> FrameOutputs:
        """Everything of one frame's outputs that does not depend on the frames before it.

        It touches no file, so frames in worker processes can run it
        (``evaluate(..., prepare=writer.prepare)``) and leave ``add`` only
        the writing, which goes in order.
        """
        from src import viz

        size = self.full_size(result.frame.image_id)
        coco = ",".join(json.dumps(entry) for entry in coco_results(result, size))
        rows = component_rows(result, size, frame=0, timestamp=result.frame.timestamp)
        mask_png = full_size_png(result.player.mask, size) if self.write_masks else None
        overlay = None
        if self.fps is not None:
            picture = viz.enlarge(viz.components_image(result.frame.image, result.player.components,
                                                       result.player.centroids), self.overlay_width)
            overlay = np.ascontiguousarray(picture[: picture.shape[0] // 2 * 2, : picture.shape[1] // 2 * 2])
        return FrameOutputs(coco=coco, rows=[{k: v for k, v in row.items() if k != "frame"} for row in rows],
                            mask_png=mask_png, overlay=overlay)

    def add(self, result) -> None:
        """Write one frame's components, COCO entries, mask and overlay frame (prepared already, or now)."""
        outputs = result.prepared if isinstance(result.prepared, FrameOutputs) else self.prepare(result)
        if outputs.coco:
            self._coco.write(("," if self._entries else "") + outputs.coco)
            self._entries += 1
        self._csv.writerows({"frame": self.frames, **row} for row in outputs.rows)
        if outputs.mask_png is not None:
            name = f"{result.frame.artifact_stem}.png"
            if self._tar is not None:
                self._tar.add(name, outputs.mask_png)
            else:
                (self.partial / "masks" / name).write_bytes(outputs.mask_png)
        if outputs.overlay is not None:
            self._add_overlay(outputs.overlay)
        self.frames += 1

    def _add_overlay(self, picture: np.ndarray) -> None:
        import av

        if self._video is None:
            self._video = av.open(str(self.partial / "overlay.mp4"), "w")
            # a preview, not an archive: the fastest preset, in this thread only, costs a quarter of "veryfast"'s
            # processor time (which was already a quarter of the default's) for files about 1.8x larger; its
            # frame threads would only compete with the workers for the cores
            self._stream = self._video.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001),
                                                  options={"preset": "ultrafast", "threads": "1"})
            self._stream.height, self._stream.width = picture.shape[:2]
            self._stream.pix_fmt = "yuv420p"
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
            self._video.mux(packet)

    def _close_files(self) -> None:
        self._coco.close()
        self._csv_file.close()
        if self._tar is not None:
            self._tar.close()
        if self._video is not None:
            for packet in self._stream.encode():
                self._video.mux(packet)
            self._video.close()

    def close(self) -> Path:
        """Finish every file and move the folder into place; returns ``predictions/``."""
        self._coco.write("]")
        self._close_files()
        shutil.rmtree(self.final, ignore_errors=True)
        os.replace(self.partial, self.final)
        return self.final

    def abort(self) -> None:
        """Drop everything written so far."""
        with contextlib.suppress(Exception):
            self._close_files()
        shutil.rmtree(self.partial, ignore_errors=True)


def coco_scores(coco, image_ids: list[int], results_file: str | Path) -> dict[str, float]:
    """COCO segmentation AP, AP50 and AR@100 of ``results_file`` against ``coco`` on ``image_ids``.

    The three are COCOeval's ``stats[0]``, ``stats[1]`` and ``stats[8]``: all
    object areas, 100 detections per image. COCOeval is asked for that area
    range and detection count alone; its other eleven figures would score each
    image four times over (per area range) and are not reported.
    """
    wanted = set(image_ids)
    entries = [e for e in json.loads(Path(results_file).read_text()) if e["image_id"] in wanted]
    if not entries:
        return {"coco_segm_ap": 0.0, "coco_segm_ap50": 0.0, "coco_segm_ar100": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        # COCOeval rewrites the ground truth's segmentations in place (polygons become RLE with bytes); it gets
        # copies, since the annotation file's parsed object is shared by the runs of a process
        truth = COCO()
        truth.dataset = {**coco.dataset, "images": [coco.imgs[i] for i in image_ids],
                         "annotations": [dict(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=list(image_ids)))]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(entries), "segm")
        params = evaluation.params
        params.imgIds = list(image_ids)
        all_areas = params.areaRngLbl.index("all")
        params.areaRng, params.areaRngLbl, params.maxDets = [params.areaRng[all_areas]], ["all"], [100]
        evaluation.evaluate()
        evaluation.accumulate()
    # precision: (IoU thresholds, recall points, categories, areas, max detections); recall without the points
    precision = evaluation.eval["precision"][..., 0, 0]
    recall = evaluation.eval["recall"][..., 0, 0]
    at_half = np.flatnonzero(np.isclose(params.iouThrs, 0.5))
    return {"coco_segm_ap": _scored_mean(precision), "coco_segm_ap50": _scored_mean(precision[at_half]),
            "coco_segm_ar100": _scored_mean(recall)}


def _scored_mean(values: np.ndarray) -> float:
    """Mean of COCOeval's entries that could be scored (it writes -1 elsewhere); NaN if none could
    (no ground-truth players at all), as ``COCOeval.summarize`` says -1."""
    scored = values[values > -1]
    return float(scored.mean()) if scored.size else float("nan")


__all__ = ["COMPONENT_FIELDS", "FrameOutputs", "PredictionWriter", "coco_results", "coco_scores", "component_rows",
           "full_size_png", "full_size_rle",
           "upscale"]
