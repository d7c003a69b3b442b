"""Tracking and fusion on real frames: the slideshow clip (``camera_clips``) against its timeline, at 5 fps.

The three people are enrolled from other photos than the clip's. Every 5th frame (5 fps) goes
through one :class:`TrackingSession`, as a camera's frames do; per second of the clip, the
largest track's name must be the timeline's person in ≥ 95% of the seconds, and no frame may
name a wrong person (cuts between photos keep one track: the appearance check and the fusion's
restart make the name follow the face).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from camera_clips import enrol_clip_people, slideshow
from facegate.service.pipeline import FrameOptions
from facegate.service.tracking import TrackingSession
from facegate.sources.ffmpeg import AvSource


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    from facegate.config import load_settings
    from facegate.service.runtime import Runtime

    built = Runtime.build(load_settings().with_values(data_dir=str(tmp_path_factory.mktemp("tracking"))))
    built.warmup()
    enrol_clip_people(built)
    yield built
    built.close()


def test_the_named_person_follows_the_clip_timeline(runtime):
    clip = slideshow()
    session = TrackingSession(runtime.processor, FrameOptions(), min_face_px=40)
    per_second: dict[int, list[str | None]] = defaultdict(list)
    wrong, embedded, frames = [], 0, 0
    with AvSource(str(clip.path), live=False, stride=5) as source:
        source.open()
        while (frame := source.read()) is not None:
            ts = frame.index / 25.0
            result = session.process(frame.rgb, ts)
            frames += 1
            embedded += result.embedded
            named = [f.fused.name for f in result.faces if f.fused.is_match]
            truth = clip.who(ts)
            wrong += [(ts, n, truth) for n in named if n != truth]
            main = max(result.faces, key=lambda f: f.box.area, default=None)
            per_second[int(ts)].append(main.fused.name if main and main.fused.is_match else None)
    assert not wrong, f"frames naming a wrong person: {wrong}"
    right = [s for s, names in per_second.items() if names.count(clip.who(s + 0.5)) > len(names) / 2]
    assert len(right) >= 0.95 * len(per_second), dict(per_second)
    assert embedded < frames  # settled tracks are not embedded on every frame
