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
import numpy as np
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


# ----------------------------------------------------------------------------- damaged files


def faststart(path: Path, out: Path) -> Path:
    """``path`` remuxed (not re-encoded) with its index (moov) first, as cameras and web exports write
    MP4s: cut anywhere, the part before the cut still decodes."""
    with av.open(str(path)) as src, av.open(str(out), "w", options={"movflags": "faststart"}) as dst:
        video = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                dst.mux(packet)
    return out


def truncated_clip(folder: Path, fraction: float = 0.6) -> Path:
    """The slideshow clip (index first) cut off after ``fraction`` of its bytes."""
    whole = faststart(slideshow().path, folder / "whole.mp4").read_bytes()
    cut = folder / f"cut{round(fraction * 100)}.mp4"
    cut.write_bytes(whole[: int(len(whole) * fraction)])
    return cut


def damaged_clip(folder: Path) -> Path:
    """The slideshow clip (index first) with garbage from 40% to 75% of its bytes: the decoder gives up halfway."""
    data = bytearray(faststart(slideshow().path, folder / "whole.mp4").read_bytes())
    start, end = int(len(data) * 0.4), int(len(data) * 0.75)
    data[start:end] = np.random.default_rng(15).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    bad = folder / "damaged.mp4"
    bad.write_bytes(bytes(data))
    return bad


def test_a_truncated_mp4_gives_the_timeline_of_what_decodes_and_says_where_it_stops(runtime, tmp_path):
    clip = slideshow()
    result = analyse(runtime, truncated_clip(tmp_path))
    video, length = result.video, clip.frames / clip.fps
    assert video.truncated is not None and video.truncated.code == "video_truncated"
    at = video.truncated.at_s
    assert 0.4 * length < at < 0.8 * length and video.frames == pytest.approx(at * clip.fps, abs=1)
    assert video.duration_s == pytest.approx(length) and "truncated" in video.truncated.detail
    # the people on screen before the cut, nobody after it
    assert {a.label for a in result.people} == {"Colin Powell", "Tony Blair"}
    assert all(s.end_s <= at + 1e-6 for a in result.people + result.unknown for s in a.segments)
    as_json = result.to_dict()["video"]
    assert as_json["truncated"] is True and as_json["truncated_at_s"] == round(at, 2)
    assert as_json["truncated_code"] == "video_truncated"
    # a whole file says it is whole
    whole = analyse(runtime, faststart(clip.path, tmp_path / "again.mp4")).to_dict()["video"]
    assert (whole["truncated"], whole["truncated_at_s"], whole["truncated_code"]) == (False, None, None)

    # the CLI says so too
    env = {**os.environ, "FACEGATE_DATA_DIR": str(runtime.settings.data_dir)}
    cut = tmp_path / "cut60.mp4"
    out = subprocess.run(
        [sys.executable, "-m", "facegate", "video", str(cut), "--json", "t.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert f"TRUNCATED at {at:.2f} s" in out.stdout and "video_truncated" in out.stdout, out.stdout
    assert json.loads((tmp_path / "t.json").read_text())["video"]["truncated_at_s"] == round(at, 2)


def test_an_mp4_cut_before_its_index_is_refused_with_a_code(runtime, tmp_path):
    from facegate.sources.base import SourceError

    cut = tmp_path / "cut.mp4"  # x264 through PyAV writes the index (moov) last: nothing to read without it
    cut.write_bytes(slideshow().path.read_bytes()[:60_000])
    with pytest.raises(SourceError) as err:
        analyse(runtime, cut)
    assert err.value.code in ("source_decode_failed", "source_unsupported")


def test_a_decoder_error_halfway_keeps_what_came_before_and_says_where(runtime, tmp_path):
    result = analyse(runtime, damaged_clip(tmp_path))
    truncated = result.video.truncated
    assert truncated is not None and truncated.code == "source_decode_failed", result.video
    assert 2.0 < truncated.at_s < 0.8 * result.video.duration_s
    assert str(tmp_path) not in truncated.detail  # no server path in what a client reads
    assert "Colin Powell" in {a.label for a in result.people}
    assert all(s.end_s <= truncated.at_s + 1e-6 for a in result.people + result.unknown for s in a.segments)


@pytest.mark.skipif(not CROWD.exists(), reason=f"{CROWD} is not here (../shared/data)")
def test_a_1080p_crowd_every_track_is_named_or_grouped(runtime):
    result = analyse(runtime, CROWD)
    assert (result.video.width, result.video.height) == (1920, 1080)
    groups, tracks = len(result.unknown), result.video.tracks
    print(
        f"crowd: {tracks} tracks, {groups} unknown groups, {len(result.people)} people named, "
        f"{result.video.duration_s / result.processing_s:.2f}x real time"
    )
    assert groups >= 1 and all(a.segments and a.best_frame for a in result.unknown)
    # every track is somewhere (a track may show in two groups), and people are not scattered over groups
    assert sum(a.tracks for a in result.people + result.unknown) >= tracks >= 1
    assert groups <= tracks + 2, result.unknown


def test_two_faces_in_one_frame_are_never_one_unknown_group(runtime):
    """However alike two strangers' embeddings look (small, blurred faces in a crowd), faces seen in the same
    frame are two people."""
    from facegate.service.video import SIGHTINGS, _Observation, _unknown_groups
    from facegate.vision.types import Box

    one = np.ones(128, np.float32) / np.sqrt(128)
    seen = [
        _Observation(t, track * SIGHTINGS, "unknown", None, None, 0.0, Box(0, 0, 50, 50), 1.0, one)
        for t in (0.0, 0.12, 0.24)
        for track in (1, 2)
    ] + [_Observation(0.6, 3 * SIGHTINGS, "unknown", None, None, 0.0, Box(0, 0, 50, 50), 1.0, one)]
    groups = _unknown_groups(seen, 0.12, 1.0, 1.0, 1.0, runtime.processor)
    assert sorted(g.tracks for g in groups) == [1, 2]  # tracks 1 and 2 apart; track 3, later, joins one of them


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


def test_a_face_keeps_its_look_through_box_jitter_and_another_face_does_not(engine):
    """The look check (a changed look is embedded at once, and starts a new sighting): the detector's box
    moves by several pixels from frame to frame, which must not count as a change (each one an embedding),
    while the face of another person in the box must. On the committed LFW photos: every box shifted by 8%
    of its size either way and 5% larger or smaller looks the same; no two people's faces do."""
    import itertools

    from PIL import Image

    from conftest import LFW
    from facegate.service.tracking import SAME_LOOK
    from facegate.vision.appearance import appearance, same_look
    from facegate.vision.types import Box

    faces = []
    for path in sorted(LFW.glob("*/*.jpg")):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        box = max(engine.detector.detect(rgb), key=lambda d: d.box.area).box
        faces.append((path.parent.name, rgb, box, appearance(rgb, box)))
    assert len({person for person, *_ in faces}) >= 5

    jittered = []
    for _, rgb, b, look in faces:
        w, h = b.x2 - b.x1, b.y2 - b.y1
        for dx, dy, scale in itertools.product((-0.08, 0.0, 0.08), (-0.08, 0.0, 0.08), (0.95, 1.05)):
            cx, cy = (b.x1 + b.x2) / 2 + dx * w, (b.y1 + b.y2) / 2 + dy * h
            moved = Box(cx - w * scale / 2, cy - h * scale / 2, cx + w * scale / 2, cy + h * scale / 2)
            jittered.append(same_look(look, appearance(rgb, moved)))
    others = [same_look(a[3], b[3]) for a, b in itertools.combinations(faces, 2) if a[0] != b[0]]
    print(f"looks: jittered box min {min(jittered):.2f}, two people max {max(others):.2f} (bar {SAME_LOOK})")
    assert min(jittered) >= SAME_LOOK > max(others)


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
