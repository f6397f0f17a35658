"""Video files as footage: streamed frames, options, outputs and damaged files."""

import csv
import re
import tarfile

import av
import mlflow
import numpy as np
import pytest
from PIL import Image

from src.benchmark import measure_run
from src.compose import build_stages
from src.data import VideoFile
from src.errors import LabError
from src.pipeline import evaluate
from src.run import run_and_log

FPS = 25


@pytest.fixture(scope="module")
def frames(synthetic_root):
    """20 frames at 960x540: the synthetic frames, each held for 4 frames."""
    images = [np.asarray(Image.open(p).convert("RGB").resize((960, 540))) for p in
              sorted((synthetic_root / "images").glob("*.jpg"))]
    return [images[i // 4 % len(images)] for i in range(20)]


@pytest.fixture(scope="module")
def clip(frames, tmp_path_factory, video_encoder):
    return video_encoder(tmp_path_factory.mktemp("video") / "clip.mp4", frames)


def test_start_end_stride_and_max_frames(clip):
    taken = list(VideoFile(str(clip), start=0.2, end=0.6, stride=2).stream())
    assert [f.image_id for f in taken] == [5, 7, 9, 11, 13]
    assert [f.timestamp for f in taken] == pytest.approx([0.2, 0.28, 0.36, 0.44, 0.52])
    assert all(f.image.shape == (67, 120, 3) and f.mask is None for f in taken)
    assert len(list(VideoFile(str(clip), max_frames=3).stream())) == 3
    assert len(list(VideoFile(str(clip), scale=4).stream())) == 20
    # what the progress bar's ETA counts on
    assert [VideoFile(str(clip), **kw).expected_frames for kw in ({}, {"start": 0.2, "end": 0.6, "stride": 2},
                                                                 {"max_frames": 3})] == [20, 5, 3]


@pytest.mark.parametrize("kwargs, message", [
    ({"path": "/no/such.mp4"}, r"path='/no/such.mp4' does not exist"),
    ({"start": 2.0, "end": 1.0}, r"start=2.0 is not before end=1.0"),
    ({"stride": 0}, r"stride=0 is out of range"),
    ({"start": -1.0}, r"start=-1.0 is out of range"),
    ({"start": 100.0}, r"start=100.0 is past the last frame of the 0.80 s video .*clip.mp4'; give a start before 0.78"),
    ({"start": 0.79}, r"start=0.79 is past the last frame"),
    ({"max_frames": 0}, r"max_frames=0 is out of range"),
])
def test_bad_options_fail_in_one_line_before_decoding(clip, kwargs, message):
    with pytest.raises(LabError, match=message):
        VideoFile(**{"path": str(clip), **kwargs})


def shifted(source, target, seconds: float) -> str:
    """``source`` remuxed to ``target`` with every timestamp ``seconds`` later, as a recording that starts its
    clock mid-broadcast."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        offset = int(seconds / stream.time_base)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.pts, packet.dts, packet.stream = packet.pts + offset, packet.dts + offset, copy
            out.mux(packet)
    return str(target)


@pytest.mark.parametrize("suffix", ["mkv", "ts"])
def test_times_count_from_the_first_frame_of_a_clock_that_starts_late(clip, tmp_path, suffix):
    late = shifted(clip, tmp_path / f"late.{suffix}", 100.0)
    taken = list(VideoFile(late, start=0.2, end=0.6, stride=2).stream())
    assert [f.image_id for f in taken] == [5, 7, 9, 11, 13]
    assert [f.timestamp for f in taken] == pytest.approx([0.2, 0.28, 0.36, 0.44, 0.52])
    plain = list(VideoFile(str(clip), start=0.2, end=0.6, stride=2).stream())
    assert all(np.array_equal(a.image, b.image) for a, b in zip(taken, plain))
    whole = VideoFile(late)
    assert [f.image_id for f in whole.stream()] == list(range(20)) and whole.error is None


def test_a_seek_that_lands_after_start_is_made_again_earlier(tmp_path):
    """MPEG-TS seeks only near the target: with a keyframe every 12 frames, a seek to 1 s found 1.52 s."""
    images = [np.full((48, 64, 3), 5 * i, np.uint8) for i in range(51)]
    path = tmp_path / "gop12.ts"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"g": "12"})
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    for start, first in [(1.0, 25), (1.9, 47)]:
        taken = list(VideoFile(str(path), start=start, max_frames=3).stream())
        assert [f.image_id for f in taken] == [first, first + 1, first + 2]
        # each frame's own grey, within what compression shifts it (less than half the step between frames)
        assert np.abs([f.image.mean() - 5 * f.image_id for f in taken]).max() < 2.5


def test_a_start_that_leaves_no_frame_fails_the_stream(clip, tmp_path):
    # a Matroska file states its end time, not its length, so only decoding finds that nothing is left
    late = VideoFile(shifted(clip, tmp_path / "late.mkv", 100.0), start=0.79)
    assert list(late.stream()) == []
    assert late.error == (f"data.start=0.79 leaves no frames of {late.path!s}'; its last frame is at 0.76 s; give an "
                          "earlier start or a later end").replace(f"of {late.path!s}'", f"of '{late.path!s}'")


def test_files_that_are_no_video(tmp_path, clip):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(LabError, match=r"is not a video FFmpeg can read .*; give a video file"):
        VideoFile(str(text))
    header_only = tmp_path / "empty.mkv"
    header_only.write_bytes(clip.read_bytes()[:48])
    with pytest.raises(LabError, match=r"empty.mkv"):
        VideoFile(str(header_only))


def test_a_stream_keeps_nothing_and_hands_each_frame_to_the_sink(make_cfg, clip):
    stages = build_stages(make_cfg("data=video", f"data.path={clip}"))
    seen = []
    results, summary = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess,
                                sink=lambda r: seen.append((r.frame.image_id, r.labels.shape, r.player.n_components)))
    assert [image_id for image_id, _, _ in seen] == list(range(20))
    assert results == [] and summary["n_frames"] == 20
    assert summary["n_components_mean"] == pytest.approx(np.mean([n for _, _, n in seen]))
    assert np.isnan(summary["dice_mean"])


def test_a_video_run_writes_components_masks_and_an_overlay_video(make_cfg, clip, tmp_path):
    cfg = make_cfg("data=video", f"data.path={clip}", "data.stride=2")
    summary, run_id = run_and_log(cfg)
    mlflow.set_tracking_uri(cfg.logger.tracking_uri)
    assert mlflow.get_run(run_id).info.status == "FINISHED"
    local = tmp_path / "artifacts"
    mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="predictions", dst_path=str(local))
    folder = local / "predictions"
    with open(folder / "components.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {r["timestamp"] for r in rows} <= {f"{i / FPS:.3f}" for i in range(0, 20, 2)}
    assert all(0 <= float(r["centroid_x"]) <= 960 and 0 <= float(r["centroid_y"]) <= 540 for r in rows)
    with tarfile.open(folder / "masks.tar") as masks:
        names = masks.getnames()
        assert len(names) == 10 and names == sorted(names)
        assert Image.open(masks.extractfile(names[0])).size == (960, 540)
    with av.open(str(folder / "overlay.mp4")) as overlay:
        stream = overlay.streams.video[0]
        assert stream.average_rate == FPS / 2 and sum(1 for _ in overlay.decode(stream)) == 10
    assert "dice_mean" not in mlflow.get_run(run_id).data.metrics


def test_a_truncated_video_keeps_what_decoded_and_fails_the_run(make_cfg, frames, tmp_path, video_encoder):
    whole = video_encoder(tmp_path / "whole.mkv", frames, container_format="matroska").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    cfg = make_cfg("data=video", f"data.path={cut}", "logger.log_images=false")
    with pytest.raises(LabError, match=r"cut.mkv' is truncated: its frames end at .* before its stated length"):
        run_and_log(cfg)
    mlflow.set_tracking_uri(cfg.logger.tracking_uri)
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FAILED"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "predictions")}
    assert "predictions/components.csv" in artifacts


@pytest.mark.slow
def test_a_clip_of_real_frames_finds_the_players_the_frames_show(make_cfg, football_root, tmp_path, video_encoder):
    """12 real frames as a 1080p H.264 clip: the streamed run finds about as many players per frame as the
    same frames read as images (video compression changes pixels, so not exactly)."""
    paths = sorted((football_root / "images").glob("*.jpg"))[:12]
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    clip = video_encoder(tmp_path / "real.mp4", images)
    folder = tmp_path / "frames"
    folder.mkdir()
    for path in paths:
        (folder / path.name).symlink_to(path)
    from_video, _ = run_and_log(make_cfg("data=video", f"data.path={clip}", "logger.log_images=false"))
    from_images, _ = run_and_log(make_cfg("data=folder", "logger.log_images=false", data_root=folder))
    assert from_video["n_components_mean"] >= 5
    assert from_video["n_components_mean"] == pytest.approx(from_images["n_components_mean"], rel=0.2)


@pytest.mark.parametrize("data", ["synthetic", "video"])
def test_two_workers_give_the_numbers_of_one(make_cfg, clip, data):
    where = ["data=video", f"data.path={clip}", "data.stride=3"] if data == "video" else ["data.n_images=null"]
    runs = []
    for workers in (1, 2):
        stages = build_stages(make_cfg(*where, f"workers={workers}"))
        scored = []
        _, summary = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess, workers=workers,
                              sink=lambda r, scored=scored: scored.append((r.frame.image_id, r.metrics)))
        runs.append((scored, {k: v for k, v in summary.items() if not k.startswith("seconds")}))
    assert runs[0][0]
    np.testing.assert_equal(runs[0], runs[1])    # NaN (metrics without ground truth) equals NaN here


def test_a_runs_processor_time_counts_its_workers(make_cfg, clip):
    per_frame = {}
    for workers in (1, 2):
        rows = {name: median for name, median, _ in
                measure_run(make_cfg("data=video", f"data.path={clip}", f"workers={workers}"), repeats=1)}
        assert 0 < rows["decode, processor"] < rows["end to end, processor"]
        per_frame[workers] = rows["end to end, processor"]
    # scoring, which the workers do, is most of a frame's work: left uncounted, two workers' processor time would
    # be a fraction of one's
    assert per_frame[2] > 0.6 * per_frame[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_prepared_sink_gets_results_without_their_pixels(make_cfg, workers):
    stages = build_stages(make_cfg("data.n_images=4", f"workers={workers}"))
    assert not stages.data.cache_frames
    sunk = []
    kept, _ = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess, workers=workers,
                       prepare=lambda r: int(r.player.mask.sum()), sink=sunk.append, keep=False)
    assert kept == [] and len(sunk) == 4
    for result in sunk:
        assert result.labels is None and result.player.mask is None and result.frame.image is None
        assert result.prepared == result.metrics["tp"] + result.metrics["fp"]    # made from the mask, in the worker
        assert result.frame.file_name and len(result.player.centroids) == result.metrics["n_components"]
    full, _ = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess, workers=workers,
                       prepare=lambda r: None, keep=True)
    assert all(r.labels is not None and r.frame.image is not None for r in full)
    assert [r.metrics for r in full] == [r.metrics for r in sunk]


def test_workers_must_be_at_least_one(make_cfg):
    with pytest.raises(LabError, match=r"workers=0 is out of range"):
        build_stages(make_cfg("workers=0"))


def test_a_looped_clip_decodes_every_repeat_in_order(frames, tmp_path, video_encoder):
    looped = video_encoder(tmp_path / "looped.mp4", frames[:10], seconds=1.6)
    taken = list(VideoFile(str(looped), scale=8).stream())
    assert [f.image_id for f in taken] == list(range(40))
    assert VideoFile(str(looped)).error is None
    once = [f.image for f in VideoFile(str(looped), max_frames=10).stream()]
    again = [f.image for f in VideoFile(str(looped), start=1.2, max_frames=10).stream()]
    assert all(np.array_equal(a, b) for a, b in zip(once, again))


def test_the_clip_command_writes_a_whole_file_or_none(synthetic_root, tmp_path, capsys):
    from src.clip import main

    out = tmp_path / "clip.mp4"
    assert main([str(synthetic_root / "images"), str(out), "--seconds", "1", "--fps", "10"]) == 0
    assert len(list(VideoFile(str(out)).stream())) == 12  # two whole loops of the six frames
    assert main([str(tmp_path / "empty"), str(tmp_path / "none.mp4")]) == 2
    assert "FRAMES_DIR=" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.parametrize("arguments, message", [
    (["--crf", "99"], r"^error: --crf=99 is out of range; allowed \[0, 51\]$"),
    (["--seconds", "inf"], r"^error: --seconds=inf is not finite"),
    (["--fps", "0"], r"^error: --fps=0 is out of range"),
    (["OUT=no/such/folder/clip.mp4"], r"^error: OUT='.*no/such/folder/clip.mp4': its folder .* is not a folder "),
    (["OUT=clip.xyz"], r"^error: OUT='.*clip.xyz' cannot be written as a video \(.*\); use a .mp4, .mkv or .mov"),
])
def test_the_clip_command_refuses_bad_options_and_outputs_in_one_line(synthetic_root, tmp_path, capsys, arguments,
                                                                      message):
    from src.clip import main

    out = str(tmp_path / "clip.mp4")
    options = [a for a in arguments if not a.startswith("OUT=")]
    out = next((str(tmp_path / a[4:]) for a in arguments if a.startswith("OUT=")), out)
    assert main([str(synthetic_root / "images"), out, "--frames", "2", *options]) == 2
    error = capsys.readouterr().err.strip()
    assert re.match(message, error) and "\n" not in error, error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("overrides, cores, jobs, expected", [
    ([], 4, 1, 4),
    ([], 8, 2, 4),                               # a sweep's two trials share the cores
    ([], 1, 1, 1),
    (["data.n_images=3"], 8, 1, 3),              # no more workers than frames
    (["threads=null"], 8, 1, 1),                 # BLAS on every core already
    (["threads=4"], 8, 1, 2),
    (["clusterer=dynaseg"], 8, 1, 4),            # its torch threads (2) count
    (["workers=3"], 8, 2, 3),                    # a number is taken as given
])
def test_auto_workers_share_the_cores(make_cfg, monkeypatch, overrides, cores, jobs, expected):
    import src.compose
    monkeypatch.setattr(src.compose, "available_cores", lambda: cores)
    monkeypatch.setattr(src.compose, "parallel_jobs", lambda: jobs)
    auto = [] if any(o.startswith("workers=") for o in overrides) else ["workers=auto"]
    assert build_stages(make_cfg(*auto, "data.n_images=null", *overrides)).workers == expected
