"""Make an H.264 test clip from a folder of frames: ``python -m src.clip FRAMES_DIR OUT.mp4 [--seconds S]``.

The frames (sorted by name, full size) are encoded once; a longer clip
repeats that encoded loop packet by packet with shifted timestamps, so a
20-minute 1080p clip for memory and throughput checks takes seconds, not
an encoder's quarter of an hour. Each loop starts on a keyframe and x264's
GOPs are closed, so every repeat decodes on its own.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from src.data.folder import IMAGE_SUFFIXES
from src.data.video import write_video
from src.errors import LabError, check_range
from src.progress import progress


def folder_frames(folder: str | Path, n_frames: int | None = None) -> list[Path]:
    """The image files of ``folder`` (recursively), sorted, at most ``n_frames``."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise LabError(f"FRAMES_DIR={str(folder)!r} holds no jpg, png or webp images; give a folder of frames")
    return files[:n_frames]


def _even_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(pixels[: pixels.shape[0] // 2 * 2, : pixels.shape[1] // 2 * 2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.clip", description=__doc__.splitlines()[0])
    parser.add_argument("frames_dir", help="folder of frames (jpg, png, webp; searched recursively)")
    parser.add_argument("out", help="output video, e.g. clip.mp4")
    parser.add_argument("--seconds", type=float, default=None, help="clip length; the frames loop to fill it")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--frames", type=int, default=None, help="use the first N frames of the folder")
    parser.add_argument("--crf", type=int, default=23, help="x264 quality (lower is larger)")
    args = parser.parse_args(argv)
    try:
        if args.frames is not None:
            check_range("--frames", args.frames, 1, integer=True)
        for option, value, low, high in (("--fps", args.fps, 1, None), ("--crf", args.crf, 0, 51)):
            check_range(option, value, low, high, integer=True)
        if args.seconds is not None:
            check_range("--seconds", args.seconds, 0, low_open=True)
        out_folder = Path(args.out).resolve().parent
        if not out_folder.is_dir() or not os.access(out_folder, os.W_OK):
            raise LabError(f"OUT={args.out!r}: its folder {str(out_folder)!r} is not a folder this user can write "
                           "to; make it first")
        files = folder_frames(args.frames_dir, args.frames)
        partial = Path(args.out).with_name(f".{Path(args.out).name}.partial-{os.getpid()}{Path(args.out).suffix}")
        frames = (_even_rgb(path) for path in progress(files, desc="encoding", unit="frame"))
        try:
            write_video(partial, frames, args.fps, seconds=args.seconds, crf=args.crf)
            os.replace(partial, args.out)
        except LabError:
            raise
        except (OSError, ValueError) as exc:  # PyAV's: an unknown container suffix, a full disk
            raise LabError(f"OUT={args.out!r} cannot be written as a video ({exc}); use a .mp4, .mkv or .mov "
                           "name in a folder with room") from None
        finally:
            partial.unlink(missing_ok=True)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(files)} frames looped to {args.seconds or len(files) / args.fps:.0f} s "
          f"at {args.fps} frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
