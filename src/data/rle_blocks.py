"""Ground truth reduced to working size straight from COCO run lengths, without decoding it at full size.

A frame's annotations cover a few per cent of it, so counting how much of
each working pixel their runs cover costs a fraction of rasterizing the
full-size mask (a 1920 x 1080 decode and box filter, more than half the
JPEG's own decode time at scale 8).
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from src.data.coco_check import rle_runs


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


def _compressed(rle: dict) -> dict:
    """``rle`` with its ``counts`` a compressed string (as pycocotools' ``merge`` needs), compressing a list of run
    lengths."""
    return rle if isinstance(rle["counts"], (str, bytes)) else mask_utils.frPyObjects(rle, *rle["size"])


def _counts(rle: dict) -> str:
    counts = _compressed(rle)["counts"]
    return counts.decode() if isinstance(counts, bytes) else counts


def block_counts(rles: list[dict], factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full-size pixels of each mask inside each ``factor x factor`` block, as entries to be summed.

    All masks are handled in one pass over their concatenated runs: a frame
    has a dozen small annotations, and a pass per annotation cost more in
    numpy calls than in arithmetic.

    Parameters
    ----------
    rles : non-empty list of COCO RLE dicts
        Column-major as pycocotools stores them, all of one size ``[height, width]``.
    factor : int >= 1
        Block side; must divide both sides (see ``block_factor``).

    Returns
    -------
    owner, row, col, pixels : (n,) int64 ndarrays
        Entry ``i`` says that mask ``owner[i]`` (its index in ``rles``) has
        ``pixels[i]`` pixels in working pixel ``(row[i], col[i])``; a mask's
        pixel can have several entries, whose sum is its count.
    """
    full_h = rles[0]["size"][0]
    runs, lengths = rle_runs([_counts(rle) for rle in rles])
    first = np.cumsum(lengths) - lengths
    # each mask's runs end where the running sum, restarted at the mask's first run, says
    ends = np.cumsum(runs)
    ends -= np.repeat(ends[first] - runs[first], lengths)
    starts = ends - runs
    # runs alternate background and foreground, background first
    foreground = ((np.arange(runs.size) - np.repeat(first, lengths)) % 2 == 1) & (ends > starts)
    start, end = starts[foreground], ends[foreground]
    owner = np.repeat(np.arange(len(rles)), lengths)[foreground]
    # a run that passes the bottom of a column goes on at the top of the next: one piece per column
    top_column, last_column = start // full_h, (end - 1) // full_h
    pieces = last_column - top_column + 1
    run = np.repeat(np.arange(start.size), pieces)
    column = top_column[run] + np.arange(run.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    top = np.where(column == top_column[run], start[run] - column * full_h, 0)
    bottom = np.where(column == last_column[run], end[run] - column * full_h, full_h)
    owner, col, top_block, bottom_block = owner[run], column // factor, top // factor, (bottom - 1) // factor
    # a piece covers part of its first and last blocks and the whole height of every block between
    same = top_block == bottom_block
    head = np.where(same, bottom - top, (top_block + 1) * factor - top)
    split = ~same
    between = np.maximum(bottom_block - top_block - 1, 0)
    piece = np.repeat(np.arange(between.size), between)
    inner_row = top_block[piece] + 1 + np.arange(piece.size) - np.repeat(np.cumsum(between) - between, between)
    return (np.concatenate([owner, owner[split], owner[piece]]),
            np.concatenate([top_block, bottom_block[split], inner_row]),
            np.concatenate([col, col[split], col[piece]]),
            np.concatenate([head, bottom[split] - bottom_block[split] * factor, np.full(piece.size, factor)]))


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
    cells = shape[0] * shape[1]
    # mask 0 is the union, so that pixels two annotations share count once
    rles = [_compressed(rle) for rle in rles]
    owner, row, col, pixels = block_counts([mask_utils.merge(rles), *rles], factor)
    cell = row * shape[1] + col
    union = owner == 0
    mask = 2 * np.bincount(cell[union], weights=pixels[union], minlength=cells) >= factor * factor
    inside = ~union & mask[cell]
    keys, entry = np.unique(owner[inside] * cells + cell[inside], return_inverse=True)
    cover = np.bincount(entry, weights=pixels[inside])
    index, cell = np.divmod(keys, cells)
    # by pixel, then most cover, then the earlier annotation: each pixel's first entry is its label
    order = np.lexsort((index, -cover, cell))
    first = order[np.unique(cell[order], return_index=True)[1]]
    labels = np.zeros(cells, np.int32)
    labels[cell[first]] = index[first]
    return mask.reshape(shape), labels.reshape(shape)
