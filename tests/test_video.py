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
