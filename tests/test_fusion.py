"""Per-track fusion: evidence over frames, min hits, ties, hysteresis, switching, the embed schedule."""

from __future__ import annotations

import random

import pytest

from facegate.core.errors import ConfigError
from facegate.gallery.decision import Candidate, Decision, DecisionPolicy
from facegate.stream import FusedDecision, FusionConfig, TrackedFace, TrackFusion, TrackUpdate, update_kind
from facegate.vision.types import Box, Quality

THRESHOLD = 0.9  # evidence counts similarity above 0.87 (the default band is 0.03)
POLICY = DecisionPolicy().with_threshold(THRESHOLD)
BIG = Box(0, 0, 112, 112)  # at the area cap: full weight
SMALL = Box(0, 0, 56, 56)  # a quarter of the cap
NAMES = {"a": "Ann", "b": "Bob", "c": "Cid"}


def frame(*scores: tuple[str, float], top_k: int = 3) -> Decision:
    """The policy's decision for candidates (person id, similarity), best first."""
    ranked = sorted(scores, key=lambda s: -s[1])
    return POLICY.decide([Candidate(pid, NAMES[pid], sim) for pid, sim in ranked], top_k=top_k)


def quality(score: float) -> Quality:
    return Quality(score, (), 100.0, 100.0, 120.0, 0.0, 0.0, 0.0)


def fusion(**kwargs) -> TrackFusion:
    return TrackFusion(FusionConfig(**kwargs), threshold=THRESHOLD)


def feed(f: TrackFusion, decisions: list[Decision], track_id: int = 1, box: Box = BIG) -> list[FusedDecision]:
    return [f.observe(track_id, d, None, box, n / 5) for n, d in enumerate(decisions)]


A = frame(("a", 0.95), ("b", 0.80))
B = frame(("b", 0.95), ("a", 0.80))
STRANGER = frame(("a", 0.80), ("b", 0.78))


def test_the_first_frame_is_pending_and_min_hits_frames_name_the_person():
    fused = feed(fusion(min_hits=2), [A, A])
    assert fused[0].status == "pending" and fused[0].reason == "too_few_hits"
    assert fused[0].person_id is None and fused[0].name is None and fused[0].hits == 1
    assert (fused[1].status, fused[1].person_id, fused[1].name, fused[1].hits) == ("match", "a", "Ann", 2)
    assert fused[1].reason is None and fused[1].evidence == 1.0


def test_min_hits_counts_frames_naming_the_person():
    fused = feed(fusion(min_hits=3), [A, A, A])
    assert [f.status for f in fused] == ["pending", "pending", "match"]
    fused = feed(fusion(min_hits=3), [A, STRANGER, A, A])
    assert [f.status for f in fused] == ["pending", "pending", "unknown", "match"]
    assert fused[2].reason == "too_few_hits"  # three frames, but only two named Ann


def test_a_stranger_track_is_unknown_with_no_evidence():
    fused = feed(fusion(), [STRANGER] * 3)
    assert fused[0].status == "pending"
    assert all((f.status, f.reason, f.person_id, f.evidence) == ("unknown", "no_match", None, 0.0) for f in fused[1:])


def test_small_faces_count_less():
    """Ann on big faces and Bob on small ones, frame by frame: equal counts, Ann wins."""
    f = fusion(decay=0.8)
    first = f.observe(1, A, None, BIG, 0.0)
    second = f.observe(1, B, None, SMALL, 0.2)
    # Ann: 1.0 × (0.95 − 0.87) = 0.08, decayed once to 0.064; Bob: 0.25 × 0.08 = 0.02
    assert first.evidence == pytest.approx(1.0)
    assert second.evidence == pytest.approx(0.064 / 0.084)
    for n in range(2, 8):
        fused = f.observe(1, A if n % 2 == 0 else B, None, BIG if n % 2 == 0 else SMALL, n / 5)
    assert (fused.status, fused.person_id) == ("match", "a")

    same_size = fusion()
    fused = feed(same_size, [A, B] * 4)[-1]
    assert (fused.status, fused.reason) == ("unknown", "tie")


def test_low_quality_faces_count_less():
    f = fusion()
    for n in range(8):
        fused = f.observe(1, A if n % 2 == 0 else B, quality(0.9 if n % 2 == 0 else 0.2), BIG, n / 5)
    assert (fused.status, fused.person_id) == ("match", "a")
    assert 0.7 < fused.evidence < 1.0


def test_two_people_alternating_equally_is_a_tie():
    fused = feed(fusion(), [A, B] * 6)
    assert all((f.status, f.reason, f.person_id) == ("unknown", "tie", None) for f in fused[1:])
    assert all(0.5 <= f.evidence < 0.7 for f in fused[1:])


def test_a_close_second_candidate_makes_a_tie():
    """Every frame names Ann, but Bob is nearly as similar: the margin is not there."""
    twin = frame(("a", 0.95), ("b", 0.94))
    fused = feed(fusion(), [twin] * 5)[-1]
    assert (fused.status, fused.reason) == ("unknown", "tie")
    clear = frame(("a", 0.95), ("b", 0.88))
    fused = feed(fusion(), [clear] * 5)[-1]
    assert (fused.status, fused.person_id) == ("match", "a")
    assert fused.evidence == pytest.approx(0.08 / 0.09)


def test_without_candidates_the_named_person_still_counts():
    fused = feed(fusion(), [frame(("a", 0.95), top_k=0)] * 2)[-1]
    assert (fused.status, fused.person_id, fused.name) == ("match", "a", "Ann")


def test_one_odd_frame_never_names_another_person():
    """An odd unknown frame keeps the name; an odd frame naming someone else starts the track over
    (pending: no name for a moment, never the other person's), and the person comes back in min_hits frames."""
    f = fusion()
    fused = feed(f, [A] * 5)
    assert fused[-1].person_id == "a"
    after = f.observe(1, STRANGER, None, BIG, 2.0)
    assert (after.status, after.person_id) == ("match", "a") and update_kind(fused[-1], after) is None
    for n, odd in enumerate((B, frame(("c", 0.99)))):
        after = f.observe(1, odd, None, BIG, 3.0 + n)
        assert (after.status, after.person_id) == ("pending", None)
        back = [f.observe(1, A, None, BIG, 3.2 + n + k / 5) for k in range(3)]
        assert all(d.person_id in (None, "a") for d in back)
        assert (back[-1].status, back[-1].person_id) == ("match", "a")


def test_one_odd_frame_in_a_track_settled_at_min_hits_names_nobody_else():
    fused = feed(fusion(min_hits=2), [A, A, B, A, A, A])
    assert [f.person_id for f in fused if f.is_match] and all(f.person_id != "b" for f in fused)
    assert [(f.status, f.person_id) for f in fused[:3]] == [("pending", None), ("match", "a"), ("pending", None)]
    assert (fused[-1].status, fused[-1].person_id) == ("match", "a")


def test_a_track_that_shows_someone_else_starts_over_and_names_them():
    f = fusion()
    before = feed(f, [A] * 20)[-1]
    after = [f.observe(1, B, None, BIG, 5 + n / 5) for n in range(6)]
    assert (after[0].status, after[0].person_id) == ("pending", None)  # never the old name once B is seen
    assert (after[-1].status, after[-1].person_id, after[-1].name) == ("match", "b", "Bob")
    switched = next(n for n, d in enumerate(after) if d.person_id == "b")
    assert switched == 1  # min_hits frames of Bob
    kinds = [update_kind(p, n) for p, n in zip([before, *after], after, strict=False)]
    assert kinds[:2] == ["changed", "identified"]


def test_a_matched_track_showing_only_unknown_frames_becomes_unknown():
    f = fusion()
    feed(f, [A] * 5)
    fused = [f.observe(1, STRANGER, None, BIG, 2 + n / 5) for n in range(10)]
    assert fused[0].person_id == "a"
    assert (fused[-1].status, fused[-1].reason) == ("unknown", "no_match")


def test_confidence_never_exceeds_the_best_frame_confidence():
    rng = random.Random(7)
    for trial in range(40):
        f = fusion(min_hits=rng.choice([1, 2, 3]))
        best: dict[str | None, float] = {}
        for n in range(rng.randint(1, 25)):
            scores = [(pid, rng.uniform(0.85, 0.99)) for pid in rng.sample(sorted(NAMES), rng.randint(1, 3))]
            decision = frame(*scores)
            box = Box(0, 0, rng.uniform(20, 200), rng.uniform(20, 200))
            fused = f.observe(trial, decision, quality(rng.uniform(0.0, 1.0)), box, n / 5)
            key = decision.person_id if decision.is_match else None
            best[key] = max(best.get(key, 0.0), decision.confidence)
            if fused.is_match:
                assert 0.0 < fused.confidence <= best[fused.person_id]
            else:
                assert 0.0 <= fused.confidence <= max(best.values())


def test_confidence_is_the_weighted_mean_of_the_named_frames():
    f = fusion()
    high, low = frame(("a", 0.96)), frame(("a", 0.91))
    fused = feed(f, [high, low], box=BIG)[-1]
    w_high, w_low = 0.96 - 0.87, 0.91 - 0.87
    expected = (w_high * high.confidence + w_low * low.confidence) / (w_high + w_low)
    assert fused.confidence == pytest.approx(expected)
    assert low.confidence < fused.confidence < high.confidence


def test_needs_embedding_schedule():
    f = fusion(min_hits=2, reembed_every=10, settle_confidence=0.5)
    assert f.needs_embedding(1, 0) and f.needs_embedding(1, 1)  # new: every frame
    f.observe(1, A, None, BIG, 0.0)
    assert f.needs_embedding(1, 2)  # pending: every frame
    assert f.observe(1, A, None, BIG, 0.4).is_match  # now settled
    embedded = [n for n in range(3, 40) if f.needs_embedding(1, n)]
    assert embedded == [12, 22, 32]  # every 10th frame after the last embedding

    f.observe(1, B, None, BIG, 6.4)  # a clear frame naming Bob at 32: the track starts over, every frame again
    assert [n for n in range(33, 36) if f.needs_embedding(1, n)] == [33, 34, 35]
    f.observe(1, A, None, BIG, 7.0)
    assert f.needs_embedding(1, 36)  # not settled yet: Ann and Bob have one frame each
    while not f.current(1).is_match:
        f.observe(1, A, None, BIG, 7.2)
    assert [n for n in range(37, 50) if f.needs_embedding(1, n)] == [46]  # settled again
    assert f.needs_embedding(1, 47, force=True)  # the caller saw the face change


def test_a_low_confidence_match_is_not_settled():
    f = fusion(settle_confidence=0.999)
    feed(f, [A, A])
    assert f.current(1).is_match
    assert all(f.needs_embedding(1, n) for n in range(2, 8))


def test_an_unknown_track_stops_at_max_attempts():
    f = fusion(max_attempts=4, reembed_every=5)
    embedded = []
    for n in range(30):
        if f.needs_embedding(1, n):
            embedded.append(n)
            fused = f.observe(1, STRANGER, None, BIG, n / 5)
    assert embedded == [0, 1, 2, 3, 8, 13, 18, 23, 28]
    assert (fused.status, fused.reason, fused.hits) == ("unknown", "no_match", 9)


def test_an_unknown_track_is_still_named_on_its_rechecks():
    f = fusion(max_attempts=3, reembed_every=5)
    for n in range(3):
        assert f.needs_embedding(1, n)
        f.observe(1, STRANGER, None, BIG, n / 5)
    assert not f.needs_embedding(1, 3)
    fused = f.observe(1, A, None, BIG, 3.0)
    assert fused.status == "unknown"  # one frame: not enough against three unknown ones
    fused = f.observe(1, A, None, BIG, 4.0)
    assert (fused.status, fused.person_id) == ("match", "a")


def test_current_and_forget():
    f = fusion()
    assert f.current(1) is None
    feed(f, [A, A], track_id=1)
    feed(f, [B], track_id=2)
    assert f.current(1).person_id == "a" and f.current(2).status == "pending"
    f.forget(1)
    f.forget(99)
    assert f.current(1) is None and len(f) == 1
    assert f.observe(1, A, None, BIG, 9.0).status == "pending"  # a reused id starts afresh
    f.forget_all((1, 2))
    assert len(f) == 0


def test_tracks_do_not_share_evidence():
    f = fusion()
    for n in range(4):
        f.observe(1, A, None, BIG, n / 5)
        f.observe(2, B, None, BIG, n / 5)
    assert f.current(1).person_id == "a" and f.current(2).person_id == "b"


def test_update_kinds():
    pending = FusedDecision.pending()
    ann = FusedDecision("match", "a", "Ann", 0.97, 2, 1.0)
    bob = FusedDecision("match", "b", "Bob", 0.97, 5, 0.8)
    tie = FusedDecision("unknown", None, None, 0.9, 4, 0.5, "tie")
    assert update_kind(None, pending) == "appeared"
    assert update_kind(None, ann) == "identified"
    assert update_kind(pending, pending) is None
    assert update_kind(pending, ann) == "identified"
    assert update_kind(tie, ann) == "identified"
    assert update_kind(ann, ann) is None
    assert update_kind(ann, bob) == "changed"
    assert update_kind(ann, tie) == "changed"
    assert update_kind(tie, pending) is None


def test_updates_and_tracked_faces_render():
    ann = FusedDecision("match", "a", "Ann", 0.97123, 2, 1.0)
    update = TrackUpdate.of("identified", 3, 1.5, BIG, ann)
    assert (update.person_id, update.name, update.confidence) == ("a", "Ann", 0.97123)
    assert update.to_dict() == {
        "kind": "identified",
        "track_id": 3,
        "ts": 1.5,
        "person_id": "a",
        "name": "Ann",
        "confidence": 0.9712,
        "box": [0, 0, 112, 112],
    }
    lost = TrackUpdate.of("lost", 3, 2.0, BIG, None)
    assert (lost.person_id, lost.confidence) == (None, 0.0)
    face = TrackedFace(3, BIG, None, ann, 0.5)
    assert face.to_dict()["fused"]["name"] == "Ann" and face.to_dict()["frame_decision"] is None
    assert TrackedFace(3, BIG, A, ann, 0.5).to_dict()["frame_decision"]["person_id"] == "a"


@pytest.mark.parametrize(
    "kwargs",
    [{"min_hits": 0}, {"decay": 0.0}, {"decay": 1.5}, {"tie_margin": 1.0}, {"area_cap": 0}, {"reembed_every": 0}],
)
def test_a_bad_config_is_refused(kwargs):
    with pytest.raises(ConfigError):
        FusionConfig(**kwargs)
