"""A video file as a stream of frames at working size, decoded by PyAV (its wheels ship FFmpeg)."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from src.data.football import check_scale, frame_scale, working_size
from src.errors import LabError, check_bool, check_range
from src.frame import Frame

log = logging.getLogger(__name__)


class VideoFile:
    """The frames of a video between ``start`` and ``end`` seconds, every ``stride``-th, streamed.

    Frames are decoded one at a time and scaled by FFmpeg straight to working
    size, so memory does not grow with the length of the video. A frame's
    ``image_id`` is its index in the video (0 = first frame) and its
    ``timestamp`` its presentation time in seconds.

    Parameters
    ----------
    path : str
        The video file (mp4, mkv, avi, ...; anything FFmpeg decodes).
    scale : int or "auto", default 8
        Downscale factor; ``"auto"`` as for ``FootballDataset`` (the stream's one size decides it).
    start : float, default 0.0
        Seconds; frames before it are skipped (after a seek to the keyframe before it).
    end : float or None, default None
        Seconds; frames at or after it are not taken. None: to the end.
    stride : int, default 1
        Take every ``stride``-th frame from ``start`` on.
    max_frames : int or None, default None
        Stop after this many frames.
    write_masks : bool, default True
        Whether a run writes the masks (one compressed file for a video).
    """

    source = "video"

    def __init__(self, path: str, scale: int | str = 8, start: float = 0.0, end: float | None = None, stride: int = 1,
                 max_frames: int | None = None, *, write_masks: bool = True):
        import av

        check_scale(scale)
        check_range("start", start, 0)
        check_range("stride", stride, 1, integer=True)
        check_bool("write_masks", write_masks)
        if max_frames is not None:
            check_range("max_frames", max_frames, 1, integer=True)
        if end is not None:
            check_range("end", end, 0)
            if end <= start:
                raise LabError(f"start={start} is not before end={end}; give a start before the end "
                               "(seconds)", key="start")
        self.path = self.root = Path(str(path)).expanduser()
        if not self.path.is_file():
            what = "is a folder" if self.path.is_dir() else "does not exist"
            raise LabError(f"path={str(path)!r} {what}; give data=video the path of a video file", key="path")
        self.scale, self.start, self.end, self.stride, self.max_frames = scale, start, end, stride, max_frames
        self.write_masks, self.cache_frames = write_masks, False
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise LabError(f"path={str(path)!r} has no video stream; give a video file", key="path")
                stream = container.streams.video[0]
                self.width, self.height = stream.codec_context.width, stream.codec_context.height
                self.fps = float(stream.average_rate or stream.guessed_rate or 25)
                first = next(container.decode(stream), None)
                ends = stated_ends(container, stream)
        except av.FFmpegError as exc:
            raise LabError(f"path={str(path)!r} is not a video FFmpeg can read ({exc}); give a video file",
                           key="path") from None
        if first is None or not self.width or not self.height:
            raise LabError(f"path={str(path)!r} holds no video frames; give a video with at least one frame",
                           key="path")
        # broadcast recordings (MPEG-TS) start their clock anywhere: times count from the first frame
        self.origin = float(first.time or 0.0)
        lengths = sorted(end - self.origin for end in ends if end > self.origin)
        #: the shortest and longest readings of the stated length (seconds), or None when none is stated
        self.lengths = (lengths[0], lengths[-1]) if lengths else None
        if self.lengths is not None and start > self.lengths[1] - 0.5 / self.fps:
            last = self.lengths[1] - 0.5 / self.fps
            raise LabError(f"start={start} is past the last frame of the {self.lengths[1]:.2f} s video {str(path)!r}; "
                           f"give a start before {last:.2f} (seconds)", key="start")
        # one size for the whole stream, so "auto" comes to one factor
        self.scale = scale = frame_scale(scale, self.width, self.height)
        if min(working_size(self.width, self.height, scale)) < 1:
            raise LabError(f"scale={scale} leaves no pixels of a {self.width}x{self.height} video; "
                           "use a smaller scale", key="scale")
        #: set when decoding stopped on a damaged frame: the frames before it were streamed
        self.error: str | None = None

    @property
    def image_ids(self) -> list[int]:
        """Not known before decoding: a video is streamed, not sampled."""
        return []

    def __len__(self) -> int:
        return 0

    @property
    def expected_frames(self) -> int | None:
        """About how many frames ``stream`` yields, from the stated length and frame rate (None if unknown)."""
        if self.lengths is None and self.end is None:
            return None
        end = min(self.end, self.lengths[1]) if self.end is not None and self.lengths else self.end or self.lengths[1]
        count = max(0, math.ceil((end - self.start) * self.fps / self.stride))
        return count if self.max_frames is None else min(count, self.max_frames)

    def image_size(self, image_id: int | None = None) -> tuple[int, int]:
        """Working size ``(width, height)``, the same for every frame."""
        return working_size(self.width, self.height, self.scale)

    @property
    def output_fps(self) -> float:
        """Frame rate of what the run writes back (an overlay video): the source's, divided by ``stride``."""
        return self.fps / self.stride

    @property
    def scale_label(self) -> str:
        """The stream's downscale factor, as runs log it."""
        return str(self.scale)

    def full_size(self, image_id: int | None = None) -> tuple[int, int]:
        return self.width, self.height

    def labelled(self, image_id: int) -> bool:
        return False

    def image_path(self, image_id: int) -> Path:
        return self.path

    def stream(self) -> Iterator[Frame]:
        """Decode the chosen frames in order. A damaged stream, or one that yields no frame, ends the
        iteration and sets ``error``."""
        import av

        width, height = self.image_size()
        taken = seen = 0
        time = None
        for back in self._seek_steps():
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                # no frame threads: with them, frames allocated in FFmpeg's threads and freed here made the
                # heap grow by ~0.1 MB per frame beside the overlay encoder; slice threads keep it flat,
                # and `workers` is how a run uses the second core
                stream.thread_type = "SLICE"
                frames = self._frames_from(container, stream, back)
                if frames is None:
                    continue
                while self.max_frames is None or taken < self.max_frames:
                    try:
                        decoded = next(frames)
                    except StopIteration:
                        self._check_length(time, taken)
                        return
                    except av.FFmpegError as exc:
                        self.error = (f"data.path={str(self.path)!r} is damaged: decoding stopped after frame "
                                      f"{seen} ({exc}); the frames before it were processed")
                        return
                    time = self._time(decoded, seen)
                    if time < self.start - 0.5 / self.fps:
                        continue
                    if self.end is not None and time >= self.end:
                        self._check_length(time, taken)
                        return
                    index = int(round(time * self.fps))
                    seen += 1
                    if (seen - 1) % self.stride:
                        continue
                    image = np.ascontiguousarray(decoded.to_ndarray(width=width, height=height, format="rgb24"))
                    taken += 1
                    yield Frame(image=image, mask=None, image_id=index, file_name=f"frame_{index:07d}",
                                scale=self.scale, n_instances=0, timestamp=time)
                return

    def _time(self, decoded, seen: int) -> float:
        """Seconds from the first frame of the video to ``decoded``."""
        # to the microsecond: a millisecond time base would put a frame at 0.6 s at 0.5999999
        return round(float(decoded.time) - self.origin, 6) if decoded.time is not None else seen / self.fps

    def _seek_steps(self) -> list[float | None]:
        """Seconds before ``start`` to seek to, tried in turn; None decodes from the first frame."""
        return [0.0, 1.0, 4.0, 16.0, None] if self.start > 0 else [None]

    def _frames_from(self, container, stream, back: float | None):
        """Decoded frames from a seek to ``back`` seconds before ``start`` (None: from the first frame), or
        None when the seek landed after ``start``: some demuxers (MPEG-TS) seek only near the target."""
        import av

        if back is None:
            return container.decode(stream)
        target = self.origin + max(self.start - back, 0.0)
        try:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
            frames = container.decode(stream)
            first = next(frames, None)
        except av.FFmpegError:
            return None
        if first is None or self._time(first, 0) >= self.start + 0.5 / self.fps:
            return None
        return itertools.chain([first], frames)

    def _check_length(self, last: float | None, taken: int) -> None:
        """Set ``error`` when no frame was taken, or when the frames ran out well before the length the
        container states (a cut file)."""
        if taken == 0:
            where = "" if last is None else f"; its last frame is at {last:.2f} s"
            self.error = (f"data.start={self.start} leaves no frames of {str(self.path)!r}{where}; give an earlier "
                          "start or a later end")
            return
        if self.lengths is None or last is None:
            return
        # the shortest reading: a cut file is one surely shorter than stated
        stated = self.lengths[0]
        expected = stated if self.end is None else min(self.end, stated)
        if last < expected - 2 / self.fps:
            self.error = (f"data.path={str(self.path)!r} is truncated: its frames end at {last:.2f} s, before its "
                          f"stated length of {stated:.2f} s; the frames before it were processed")


def stated_ends(container, stream) -> list[float]:
    """Times (seconds, on the stream's clock) at which ``container`` says the video ends.

    A stream's own start and duration give one reading. A container's
    duration is a length for most formats but the end time for Matroska, so
    without the stream's it gives two readings; callers refuse input only
    when every reading would.
    """
    if stream.duration and stream.start_time is not None:
        return [float((stream.start_time + stream.duration) * stream.time_base)]
    if not container.duration:
        return []
    duration = container.duration / 1_000_000
    return [duration, (container.start_time or 0) / 1_000_000 + duration]


def write_video(path: str | Path, images: Iterable[np.ndarray], fps: int = 25, *, seconds: float | None = None,
                container_format: str | None = None, crf: int = 23) -> Path:
    """Encode RGB frames as H.264, in whole loops until the clip lasts at least ``seconds``.

    Parameters
    ----------
    path : path
        Output file; its suffix picks the container unless ``container_format`` is given.
    images : iterable of (H, W, 3) uint8 ndarray
        Frames of one size with even H and W, read once.
    fps : int, default 25
    seconds : float or None, default None
        Length of the clip; None: the frames once.
    container_format : str or None, default None
        FFmpeg muxer name, e.g. ``"matroska"``.
    crf : int, default 23
        x264 constant rate factor (lower is better quality and larger files).

    Returns
    -------
    Path of the written file.
    """
    import av

    check_range("fps", fps, 1, integer=True)
    # x264's scale: values outside it are clamped, or -1 is its default, without a word
    check_range("crf", crf, 0, 51, integer=True)
    if seconds is not None:
        check_range("seconds", seconds, 0, low_open=True)
    loop = []
    with av.open(str(path), "w", format=container_format) as container:
        stream = None
        for image in images:
            if stream is None:
                stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf)})
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
            loop += _mux(container, stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        if stream is None:
            raise LabError(f"no frames to write to {path}")
        loop += _mux(container, stream.encode())
        _repeat(container, stream, loop, fps, seconds)
    return Path(path)


def _mux(container, packets) -> list[tuple]:
    """Mux ``packets`` and return what a repeat needs of each: bytes, pts, dts, keyframe flag and time base."""
    kept = []
    for packet in packets:
        kept.append((bytes(packet), packet.pts, packet.dts, packet.is_keyframe, packet.time_base))
        container.mux(packet)
    return kept


def _repeat(container, stream, loop: list, fps: int, seconds: float | None) -> None:
    """Mux copies of the encoded ``loop`` after it until the clip lasts ``seconds``."""
    import av

    if seconds is None or not loop:
        return
    repeats = max(0, int(np.ceil(seconds * fps / len(loop))) - 1)
    for repeat in range(1, repeats + 1):
        for data, pts, dts, keyframe, time_base in loop:
            period = round(Fraction(len(loop), fps) / time_base)
            packet = av.Packet(data)
            packet.pts, packet.dts = pts + repeat * period, dts + repeat * period
            packet.is_keyframe = keyframe
            packet.stream = stream
            packet.time_base = time_base
            container.mux(packet)


__all__ = ["VideoFile", "write_video"]
