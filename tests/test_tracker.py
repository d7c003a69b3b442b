"""The face tracker: stable ids across frames, two score thresholds, loss, order independence."""

from __future__ import annotations

import itertools

import pytest

from facegate.core.errors import ConfigError
from facegate.stream import IouTracker, TrackerConfig, TrackStep
from facegate.vision.types import Box, Detection

FPS = 5.0


def det(x: float, y: float, size: float = 80.0, score: float = 0.9) -> Detection:
    """A square face box with top-left (x, y)."""
    return Detection(Box(x, y, x + size, y + size), score)


def run(tracker: IouTracker, frames: list[list[Detection]], start: int = 0) -> list[TrackStep]:
    return [tracker.update(dets, (start + n) / FPS) for n, dets in enumerate(frames)]


def test_ids_start_at_one_and_increase_per_tracker():
    tracker = IouTracker()
    step = tracker.update([det(0, 0), det(300, 0)], 0.0)
    assert step.track_ids == (1, 2)
    assert step.started == (1, 2)
    assert step.lost == ()
    assert IouTracker().update([det(600, 0)], 0.0).track_ids == (1,)


def test_a_still_face_keeps_its_id_and_is_confirmed_at_min_hits():
    tracker = IouTracker(TrackerConfig(min_hits=2))
    steps = run(tracker, [[det(100, 100)], [det(102, 101)], [det(104, 99)]])
    assert [s.track_ids for s in steps] == [(1,), (1,), (1,)]
    assert [s.started for s in steps] == [(1,), (), ()]
    assert [s.confirmed for s in steps] == [(), (1,), ()]
    track = tracker.get(1)
    assert track is not None
    assert (track.hits, track.misses, track.confirmed) == (3, 0, True)
    assert (track.first_ts, track.last_ts) == (0.0, 2 / FPS)
    assert track.box == Box(104, 99, 184, 179)


def test_min_hits_one_confirms_at_start():
    step = IouTracker(TrackerConfig(min_hits=1)).update([det(0, 0)], 0.0)
    assert step.started == step.confirmed == (1,)


@pytest.mark.parametrize("speed", [30, 50, 70])
def test_two_faces_crossing_paths_keep_their_ids(speed):
    """A walks right and B left on nearly the same line; their boxes overlap mid-way.

    Matching the last boxes alone swaps the ids at 30 and 70 px a frame (the other face's
    last box overlaps more); the velocity prediction keeps them.
    """
    tracker = IouTracker()
    n_frames = 400 // speed + 2
    frames = [[det(100 + speed * n, 100), det(500 - speed * n, 120)] for n in range(n_frames)]
    steps = run(tracker, frames)
    assert all(s.track_ids == (1, 2) for s in steps)
    assert all(s.started == () for s in steps[1:])
    a, b = tracker.get(1), tracker.get(2)
    assert a is not None and b is not None
    assert a.box.x1 > b.box.x1  # they swapped sides, not ids


def test_crossing_faces_given_in_shuffled_order_keep_their_ids():
    tracker = IouTracker()
    for n in range(11):
        dets = [det(100 + 30 * n, 100), det(400 - 30 * n, 120)]
        if n % 2:
            step = tracker.update(dets[::-1], n / FPS)
            assert step.track_ids == (2, 1)
        else:
            assert tracker.update(dets, n / FPS).track_ids == (1, 2)


def test_a_face_missing_shorter_than_max_lost_keeps_its_id():
    tracker = IouTracker(TrackerConfig(max_lost_s=1.0))
    assert tracker.update([det(100, 100)], 0.0).track_ids == (1,)
    for n in range(1, 5):  # 0.8 s without the face
        step = tracker.update([], n / FPS)
        assert step.lost == ()
    assert tracker.get(1) is not None and tracker.get(1).misses == 4
    step = tracker.update([det(103, 100)], 5 / FPS)  # 1.0 s after the last hit: not longer
    assert step.track_ids == (1,) and step.started == () and step.lost == ()
    assert tracker.get(1).misses == 0


def test_a_face_missing_longer_than_max_lost_gets_a_new_id():
    tracker = IouTracker(TrackerConfig(max_lost_s=1.0))
    tracker.update([det(100, 100)], 0.0)
    step = tracker.update([det(100, 100)], 1.2)
    assert step.lost == (1,)
    assert step.track_ids == (2,) and step.started == (2,)
    assert tracker.get(1) is None
    assert [t.track_id for t in tracker.tracks()] == [2]


def test_a_lost_track_is_reported_on_an_empty_frame():
    tracker = IouTracker(TrackerConfig(max_lost_s=0.5))
    tracker.update([det(0, 0), det(300, 300)], 0.0)
    tracker.update([det(300, 300)], 0.4)
    step = tracker.update([], 0.8)
    assert step.lost == (1,) and step.track_ids == ()
    assert tracker.update([], 1.0).lost == (2,)
    assert tracker.tracks() == ()


def test_low_score_detections_extend_tracks_but_never_start_them():
    tracker = IouTracker(TrackerConfig(high_score=0.6, low_score=0.3))
    step = tracker.update([det(100, 100, score=0.45)], 0.0)
    assert step.track_ids == (None,) and step.started == ()
    assert tracker.tracks() == ()

    tracker.update([det(100, 100, score=0.9)], 0.2)
    step = tracker.update([det(104, 100, score=0.45), det(500, 500, score=0.45)], 0.4)
    assert step.track_ids == (1, None)  # extends track 1; the stray low one starts nothing
    assert step.started == ()
    assert tracker.get(1).hits == 2
    assert tracker.update([det(108, 100, score=0.1)], 0.6).track_ids == (None,)  # below low_score: ignored
    assert tracker.get(1).misses == 1


def test_high_score_detections_are_matched_before_low_ones():
    """A low-score duplicate that overlaps the track better must not take it from the high one."""
    tracker = IouTracker()
    tracker.update([det(100, 100)], 0.0)
    step = tracker.update([det(100, 100, score=0.4), det(110, 100, score=0.95)], 0.2)
    assert step.track_ids == (None, 1)


def test_a_jump_with_no_overlap_but_a_near_centre_is_kept():
    """At 5 fps a face can move most of its width between frames: IoU 0, centre near."""
    tracker = IouTracker(TrackerConfig(max_center_distance=1.5))
    tracker.update([det(100, 100)], 0.0)
    moved = det(190, 120)  # 90 px right, 20 down: no overlap with an 80 px box, 1.16 sizes away
    assert moved.box.iou(Box(100, 100, 180, 180)) == 0.0
    step = tracker.update([moved], 0.2)
    assert step.track_ids == (1,) and step.started == ()


def test_a_far_jump_starts_a_new_track():
    tracker = IouTracker(TrackerConfig(max_center_distance=1.5))
    tracker.update([det(100, 100)], 0.0)
    step = tracker.update([det(100 + 80 * 2, 100)], 0.2)  # 2 face sizes away
    assert step.track_ids == (2,) and step.started == (2,)
    assert tracker.get(1).misses == 1


def test_a_near_centre_of_a_very_different_size_is_another_face():
    tracker = IouTracker(TrackerConfig(max_size_ratio=1.5))
    tracker.update([det(100, 100, size=80)], 0.0)
    step = tracker.update([det(170, 110, size=30)], 0.2)  # nearby but far smaller: no overlap
    assert step.track_ids == (2,)


def test_a_face_moving_steadily_is_followed_by_its_velocity():
    """90 px per frame: more than a box width, but the velocity predicts where it will be."""
    tracker = IouTracker()
    steps = run(tracker, [[det(40, 200)], [det(110, 200)], *[[det(110 + 90 * n, 200)] for n in range(1, 6)]])
    assert all(s.track_ids == (1,) for s in steps)


def test_the_input_order_does_not_change_the_result():
    frames = [
        [det(100, 100), det(300, 100, score=0.7), det(520, 90, score=0.4)],
        [det(108, 104), det(296, 100, score=0.5), det(520, 95, score=0.95), det(700, 700, score=0.8)],
        [det(190, 104), det(290, 102, score=0.65), det(700, 705, score=0.35)],
        [det(200, 100, score=0.9), det(200, 100, score=0.9), det(290, 100)],
    ]
    reference = None
    for perm in itertools.product(*(list(itertools.permutations(range(len(f)))) for f in frames[:2])):
        tracker = IouTracker()
        result = []
        for n, frame in enumerate(frames):
            order = perm[n] if n < len(perm) else range(len(frame))
            step = tracker.update([frame[i] for i in order], n / FPS)
            by_input = {i: tid for i, tid in zip(order, step.track_ids, strict=True)}
            result.append((tuple(by_input[i] for i in range(len(frame))), step.started, step.lost))
        result.append(tracker.tracks())
        if reference is None:
            reference = result
        assert result == reference


def test_timestamps_must_not_go_back():
    tracker = IouTracker()
    tracker.update([], 1.0)
    tracker.update([], 1.0)
    with pytest.raises(ValueError):
        tracker.update([], 0.5)


@pytest.mark.parametrize(
    "kwargs",
    [{"low_score": 0.7, "high_score": 0.6}, {"match_iou": 0.0}, {"min_hits": 0}, {"max_size_ratio": 0.5}],
)
def test_a_bad_config_is_refused(kwargs):
    with pytest.raises(ConfigError):
        TrackerConfig(**kwargs)
