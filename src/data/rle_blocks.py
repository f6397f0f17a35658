"""Ground truth reduced to working size straight from COCO run lengths, without decoding it at full size.

A frame's annotations cover a few per cent of it, so counting how much of
each working pixel their runs cover costs a fraction of rasterizing the
full-size mask (a 1920 x 1080 decode and box filter, more than half the
JPEG's own decode time at scale 8).
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from src.data.coco_check import rle_counts


def block_factor(full_size: tuple[int, int], size: tuple[int, int]) -> int | None:
    """The side of the square block of full-size pixels behind each working pixel, or None when there is none.

    Parameters
    ----------
    full_size, size : (height, width)
        Full and working size; a block exists when both sides reduce by one whole factor.
    """
    (full_h, full_w), (h, w) = full_size, size
    if h == 0 or w == 0 or full_h % h or full_w % w or full_h // h != full_w // w:
        return None
    return full_h // h


def block_coverage(rle: dict, factor: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Number of the mask's full-size pixels inside each ``factor x factor`` block, over the blocks it touches.

    Parameters
    ----------
    rle : dict
        A COCO RLE (``size`` as ``[height, width]``, ``counts`` compressed or
        a list of run lengths), column-major as pycocotools stores it.
    factor : int >= 1
        Block side; must divide both sides of ``rle["size"]`` (see ``block_factor``).

    Returns
    -------
    coverage : (rows, cols) int64 ndarray
        Values in ``0..factor**2``, for the box of working pixels that holds
        the whole mask ((0, 0) for an empty mask).
    offset : (row, col)
        Working-size position of ``coverage[0, 0]``.
    """
    full_h = rle["size"][0]
    counts = rle["counts"]
    runs = rle_counts(counts.decode() if isinstance(counts, bytes) else counts) if isinstance(counts, (str, bytes)) \
        else np.asarray(counts, dtype=np.int64)
    ends = np.cumsum(runs)
    # runs alternate background and foreground, background first
    start, end = (ends - runs)[1::2], ends[1::2]
    keep = end > start
    start, end = start[keep], end[keep]
    if start.size == 0:
        return np.zeros((0, 0), np.int64), (0, 0)
    # a run that passes the bottom of a column goes on at the top of the next: one piece per column
    first, last = start // full_h, (end - 1) // full_h
    pieces = last - first + 1
    run = np.repeat(np.arange(start.size), pieces)
    column = first[run] + np.arange(run.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    top = np.where(column == first[run], start[run] - column * full_h, 0)
    bottom = np.where(column == last[run], end[run] - column * full_h, full_h)
    x, top_block, bottom_block = column // factor, top // factor, (bottom - 1) // factor
    # the partial blocks at each end of a piece, then the whole blocks between them as a running sum down the column
    same = top_block == bottom_block
    head = np.where(same, bottom - top, (top_block + 1) * factor - top)
    tail = np.where(same, 0, bottom - bottom_block * factor)
    row0, col0 = int(top_block.min()), int(x[0])
    x, top_block, bottom_block = x - col0, top_block - row0, bottom_block - row0
    h, w = int(bottom_block.max()) + 1, int(x[-1]) + 1
    cells = (h + 1) * w
    partial = np.bincount(top_block * w + x, weights=head, minlength=cells)
    partial += np.bincount(bottom_block * w + x, weights=tail, minlength=cells)
    inner = bottom_block > top_block + 1
    steps = np.bincount((top_block[inner] + 1) * w + x[inner], minlength=cells) \
        - np.bincount(bottom_block[inner] * w + x[inner], minlength=cells)
    whole = np.cumsum(steps.reshape(h + 1, w), axis=0) * factor
    return (partial.reshape(h + 1, w) + whole)[:h].astype(np.int64), (row0, col0)


def reduce_rles(rles: list[dict], factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Union mask and instance labels of annotations at working size, from their runs.

    The same reduction as ``reduce_mask`` of the decoded union (a working
    pixel is player where at least half its block is), and each such pixel
    labelled with the annotation that covers most of its block, counted
    exactly.

    Parameters
    ----------
    rles : non-empty list of COCO RLE dicts
        One per annotation, all of one full size.
    factor : int
        Block side (see ``block_factor``).

    Returns
    -------
    mask : (H, W) bool ndarray
    labels : (H, W) int32 ndarray
        0 outside ``mask``, ``i`` for the i-th annotation (1-based); ties go to the earlier.
    """
    full_h, full_w = rles[0]["size"]
    shape = (full_h // factor, full_w // factor)
    union = np.zeros(shape, np.int64)
    coverage, (row, col) = block_coverage(mask_utils.merge(rles), factor)
    union[row:row + coverage.shape[0], col:col + coverage.shape[1]] = coverage
    mask = 2 * union >= factor * factor
    best = np.zeros(shape, np.int64)
    labels = np.zeros(shape, np.int32)
    for index, rle in enumerate(rles, start=1):
        coverage, (row, col) = block_coverage(rle, factor)
        window = (slice(row, row + coverage.shape[0]), slice(col, col + coverage.shape[1]))
        larger = (coverage > best[window]) & mask[window]
        best[window][larger] = coverage[larger]
        labels[window][larger] = index
    return mask, labels
