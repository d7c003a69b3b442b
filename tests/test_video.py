"""Video files: the timeline of the slideshow clip (``camera_clips``) against its own, the CLI's exports."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from camera_clips import enrol_clip_people, slideshow

CROWD = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "facenet_pytorch__video.mp4"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    from facegate.config import load_settings
    from facegate.service.runtime import Runtime

    data = tmp_path_factory.mktemp("video")
    built = Runtime.build(load_settings().with_values(data_dir=str(data)))
    built.warmup()
    enrol_clip_people(built)
    yield built
    built.close()


def analyse(runtime, path: Path, **options):
    from facegate.service.video import VideoAnalysis, VideoOptions

    analysis = VideoAnalysis(
        runtime.processor, VideoOptions(**options), max_pixels=runtime.settings.limits.max_image_pixels
    )
    return analysis.run(str(path))


def seconds_right_and_wrong(result, clip) -> tuple[int, list]:
    """Per whole second of the clip: who the timeline names there (covering most of the second)."""
    seconds = int(clip.frames / clip.fps)
    right, wrong = 0, []
    for s in range(seconds):
        named = {
            a.label: sum(max(0.0, min(seg.end_s, s + 1) - max(seg.start_s, s)) for seg in a.segments)
            for a in result.people
        }
        truth = clip.who(s + 0.5)
        shown = [name for name, overlap in named.items() if overlap > 0]
        wrong += [(s, name, truth) for name in shown if name != truth and named[name] > 0.3]
        right += named.get(truth, 0) >= 0.5
    return right, wrong


def test_the_slideshow_timeline_names_who_is_on_screen(runtime):
    clip = slideshow()
    result = analyse(runtime, clip.path)
    video = result.video
    assert (video.width, video.height, video.frames) == (640, 480, clip.frames) and video.fps == pytest.approx(25)
    assert video.analysed == pytest.approx(clip.frames / 3, abs=1)  # 25 fps -> every 3rd frame (~8 fps)
    right, wrong = seconds_right_and_wrong(result, clip)
    seconds = int(clip.frames / clip.fps)
    print(f"slideshow: {right}/{seconds} seconds right, wrong={wrong}, {video.duration_s / result.processing_s:.1f}x")
    assert not wrong and right >= 0.95 * seconds
    assert {a.label for a in result.people} == {"Colin Powell", "Tony Blair", "Hugo Chavez"}
    for person in result.people:  # the best frame shows that person
        assert clip.who(person.best_frame.t_s) == person.label, person
        assert 4.0 <= person.seconds <= 5.5 and 0.25 <= person.share <= 0.4, person
    # a stranger in the background of one photo is an unknown group, not a fourth name
    assert all(a.seconds < 2 for a in result.unknown), result.unknown


def test_the_cli_writes_the_same_timeline_as_json_csv_and_an_annotated_mp4(runtime, tmp_path):
    clip = slideshow()
    env = {**os.environ, "FACEGATE_DATA_DIR": str(runtime.settings.data_dir)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "facegate",
            "video",
            str(clip.path),
            "--json",
            "t.json",
            "--csv",
            "t.csv",
            "--draw",
            "drawn.mp4",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "Colin Powell" in out.stdout and "real time" in out.stdout
    data = json.loads((tmp_path / "t.json").read_text())
    service = analyse(runtime, clip.path).to_dict()
    for part in (data, service):
        part.pop("processing_s")
    assert data == service
    assert set(data["video"]) >= {"duration_s", "fps", "width", "height"}
    person = data["people"][0]
    assert set(person) >= {"person_id", "name", "segments", "seconds", "best_frame"}
    assert set(person["segments"][0]) == {"start_s", "end_s", "confidence"} and set(person["best_frame"]) == {
        "t_s",
        "box",
    }
    rows = list(csv.DictReader(io.StringIO((tmp_path / "t.csv").read_text())))
    assert len(rows) == sum(len(p["segments"]) for p in data["people"] + data["unknown"])
    assert {r["name"] for r in rows} == {p["name"] for p in data["people"]} | {u["label"] for u in data["unknown"]}
    with av.open(str(tmp_path / "drawn.mp4")) as drawn:
        stream = drawn.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 480)
        assert sum(1 for _ in drawn.decode(video=0)) == clip.frames


def test_a_file_that_is_not_a_video_is_refused_with_a_code(runtime, tmp_path):
    from facegate.sources.base import SourceError

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))
    with pytest.raises(SourceError) as err:
        analyse(runtime, junk)
    assert err.value.code in ("source_decode_failed", "source_unsupported")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(slideshow().path.read_bytes()[:60_000])  # a truncated MP4: what decodes, or a code
    try:
        result = analyse(runtime, cut)
        assert result.video.frames < slideshow().frames
    except SourceError as exc:
        assert exc.code in ("source_decode_failed", "source_unsupported")


@pytest.mark.skipif(not CROWD.exists(), reason=f"{CROWD} is not here (../shared/data)")
def test_a_1080p_crowd_every_track_is_named_or_grouped(runtime):
    result = analyse(runtime, CROWD)
    assert (result.video.width, result.video.height) == (1920, 1080)
    groups = len(result.unknown)
    print(
        f"crowd: {groups} unknown groups, {len(result.people)} people named, "
        f"{result.video.duration_s / result.processing_s:.2f}x real time"
    )
    assert groups >= 1 and all(a.segments and a.best_frame for a in result.unknown)


# ----------------------------------------------------------------------------- reading ahead


def test_skipping_unused_frames_hands_out_the_same_frames_and_decodes_fewer():
    import numpy as np

    from facegate.sources.ffmpeg import AvSource

    class Counting(AvSource):
        decoded = 0

        def _next_frame(self):
            frame = super()._next_frame()
            self.decoded += frame is not None
            return frame

    clip = slideshow()
    out = {}
    for skip in (False, True):
        with Counting(str(clip.path), live=False, stride=3, skip_unused=skip) as source:
            frames = []
            while (frame := source.read()) is not None:
                frames.append((frame.index, frame.rgb))
            out[skip] = (frames, source.frames_read, source.decoded)
    (plain, plain_read, plain_decoded), (skipped, skipped_read, skipped_decoded) = out[False], out[True]
    assert [i for i, _ in skipped] == [i for i, _ in plain] == list(range(0, clip.frames, 3))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(plain, skipped, strict=True))
    assert plain_read == skipped_read == plain_decoded == clip.frames
    assert skipped_decoded < plain_decoded  # x264's B-frames between the analysed frames are not decoded


def test_skipping_needs_a_stride_and_timestamps():
    from facegate.sources.ffmpeg import AvSource

    clip = slideshow()
    with AvSource(str(clip.path), live=False, skip_unused=True) as source:  # stride 1: every frame is used
        assert source._ranks is None
    with AvSource(str(clip.path), live=False, stride=2, skip_unused=True) as source:
        assert source._ranks is not None and len(source._ranks) == clip.frames


def test_the_read_ahead_depth_keeps_memory_bounded():
    from facegate.service.video import _depth

    assert _depth(640, 480) == 16 and _depth(1920, 1080) == 8 and _depth(7680, 4320) == 4 and _depth(0, 0) == 16


def _video_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("video-")]


def test_every_analysed_frame_goes_through_execute_and_the_answers_do_not_change(runtime):
    from facegate.service.video import VideoAnalysis

    clip = slideshow()
    analysis = VideoAnalysis(runtime.processor, max_pixels=runtime.settings.limits.max_image_pixels)
    calls: list[str] = []

    def execute(fn, *args):
        calls.append(getattr(fn, "__name__", ""))
        return fn(*args)

    queued = analysis.run(str(clip.path), execute=execute).to_dict()
    here = analysis.run(str(clip.path)).to_dict()
    for part in (queued, here):
        part.pop("processing_s")
    assert queued == here
    analysed = queued["video"]["analysed_frames"]
    assert calls.count("process") == analysed and calls.count("_detect") == analysed  # detection is queued too
    assert not _video_threads()


def test_a_cancelled_or_failing_run_stops_its_threads(runtime):
    from facegate.service.video import VideoAnalysis

    clip = slideshow()
    analysis = VideoAnalysis(runtime.processor, max_pixels=runtime.settings.limits.max_image_pixels)
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 5

    result = analysis.run(str(clip.path), cancelled=cancelled)
    assert result.video.analysed == 5 and result.video.frames < clip.frames
    assert not _video_threads()

    def failing(fn, *args):
        if getattr(fn, "__name__", "") == "process":
            raise RuntimeError("the scheduler is gone")
        return fn(*args)

    with pytest.raises(RuntimeError, match="scheduler is gone"):
        analysis.run(str(clip.path), execute=failing)
    assert not _video_threads()


def test_strangers_shown_one_after_the_other_are_not_one_unknown_group(runtime):
    """Nobody enrolled in this collection: the slideshow's three people are unknown. One box stays in place
    across the cuts, but a change of look starts a new sighting, so they are not one group either."""
    runtime.people.create_collection("nobody")
    clip = slideshow()
    result = analyse(runtime, clip.path, collection="nobody")
    assert result.people == ()
    main = [g for g in result.unknown if g.seconds > 2]  # the three people (not a face in a photo's background)
    print(f"unknown groups: {[(g.label, round(g.seconds, 1)) for g in result.unknown]}")
    assert 3 <= len(main) <= 6  # each person at least one group, and none split into more than two
    assert all(g.seconds <= 0.4 * clip.frames / clip.fps for g in main)  # no group spans two people's time
