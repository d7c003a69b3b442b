"""Per-track evidence fusion: many frame-level decisions -> one decision per track.

Pure: no I/O, no clock. See :class:`~facegate.stream.types.FusionConfig` for the rules;
in short, every embedded frame adds evidence weighted by face size, quality and how far
each candidate's similarity is above a floor; a name needs ``min_hits`` frames naming the
person and a clear margin over the runner-up, and once given it is kept while that person
stays ahead — unless a frame confidently names someone else: then the track starts over
(pending), because a name that may now be wrong is worse than a moment without one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from facegate.gallery.decision import MATCH_THRESHOLD, Decision, ScoredCandidate
from facegate.stream.types import (
    APPEARED,
    CHANGED,
    IDENTIFIED,
    MATCH,
    PENDING,
    UNKNOWN,
    FusedDecision,
    FusionConfig,
)
from facegate.vision.types import Box, Quality

_PRUNE = 1e-9  # evidence below this (and never named) is dropped
# a frame naming someone else restarts a matched track when its size × quality weight is at least this
# share of the track's mean frame weight
RESET_SIZE_SHARE = 0.5


@dataclass
class _Person:
    name: str
    evidence: float = 0.0
    named: int = 0  # frames whose decision named this person
    conf_weighted: float = 0.0  # sum of weight × frame confidence over the naming frames
    conf_weight: float = 0.0
    conf_sum: float = 0.0  # plain sum, for when every weight is 0
    conf_best: float = 0.0


@dataclass
class _TrackState:
    people: dict[str, _Person] = field(default_factory=dict)
    nobody: float = 0.0
    hits: int = 0
    conf_weighted: float = 0.0  # all frames: weight × frame confidence
    conf_weight: float = 0.0
    conf_sum: float = 0.0
    conf_best: float = 0.0
    last_named: str | None = None  # the person named by the latest frame
    last_embed_frame: int | None = None
    last_ts: float | None = None
    fused: FusedDecision | None = None
    size_sum: float = 0.0  # sum of the frames' size × quality weights
    last_reason: str | None = None  # why the latest unknown frame named no one (too_small, low_margin...)


def _mean(weighted: float, weight: float, plain: float, count: int) -> float:
    if weight > 0:
        return weighted / weight
    return plain / count if count else 0.0


class TrackFusion:
    """Accumulates the frame decisions of each track and answers one fused decision per track.

    ``threshold`` is the policy's match threshold (``DecisionPolicy.threshold``); evidence
    counts similarity above ``threshold − config.similarity_band``. One per stream; not
    thread-safe.
    """

    def __init__(self, config: FusionConfig | None = None, *, threshold: float = MATCH_THRESHOLD) -> None:
        self.config = config or FusionConfig()
        self.threshold = threshold
        self.floor = threshold - self.config.similarity_band
        self._tracks: dict[int, _TrackState] = {}

    def needs_embedding(self, track_id: int, frame_no: int, *, force: bool = False) -> bool:
        """Whether this track's face should be embedded in frame ``frame_no``.

        New and unsettled tracks: every frame. Settled matches, and tracks still unnamed
        after ``max_attempts`` embedded frames: every ``reembed_every`` frames; ``force``
        (the caller saw the face change, e.g. its appearance jumped): this frame. A True
        answer is taken as the promise that the face is embedded in this frame (the count restarts).
        """
        state = self._tracks.setdefault(track_id, _TrackState())
        if not force and self._periodic(state) and state.last_embed_frame is not None:
            since = frame_no - state.last_embed_frame
            if 0 <= since < self.config.reembed_every:
                return False
        state.last_embed_frame = frame_no
        return True

    def _periodic(self, state: _TrackState) -> bool:
        fused = state.fused
        if fused is None:
            return False
        if fused.is_match:
            return fused.confidence >= self.config.settle_confidence and state.last_named == fused.person_id
        return state.hits >= self.config.max_attempts

    def observe(self, track_id: int, decision: Decision, quality: Quality | None, box: Box, ts: float) -> FusedDecision:
        """Add one embedded frame's decision for the track's face and return the fused decision."""
        cfg = self.config
        state = self._tracks.setdefault(track_id, _TrackState())
        q = 1.0 if quality is None else min(max(quality.score, 0.0), 1.0)
        size = min(max(box.area, 0.0), cfg.area_cap) / cfg.area_cap * q
        if self._names_someone_else(state, decision, size):
            # a frame as clear as the track's usual ones confidently names someone else: the face on this
            # track is likely another person now (tracks swapped, or one face replaced another). Start the
            # evidence again rather than keep a name that may be wrong; the new person is named after
            # min_hits frames. (A smaller or blurrier odd frame only adds evidence: hysteresis.)
            state = self._tracks[track_id] = _TrackState(last_embed_frame=state.last_embed_frame)
        state.last_ts = ts
        state.hits += 1
        state.size_sum += size

        for person in state.people.values():
            person.evidence *= cfg.decay
        state.nobody *= cfg.decay

        frame_weight = size * cfg.similarity_band
        if decision.is_match and decision.person_id is not None:
            for c in _candidates(decision):
                weight = size * max(0.0, c.similarity - self.floor)
                person = state.people.get(c.person_id)
                if person is None:
                    if weight <= 0:
                        continue
                    person = state.people[c.person_id] = _Person(c.name)
                person.name = c.name
                person.evidence += weight
                if c.person_id == decision.person_id:
                    frame_weight = weight
                    person.named += 1
                    person.conf_weighted += weight * decision.confidence
                    person.conf_weight += weight
                    person.conf_sum += decision.confidence
                    person.conf_best = max(person.conf_best, decision.confidence)
            state.last_named = decision.person_id
        else:
            state.nobody += frame_weight
            state.last_named = None
            state.last_reason = decision.reason
        state.conf_weighted += frame_weight * decision.confidence
        state.conf_weight += frame_weight
        state.conf_sum += decision.confidence
        state.conf_best = max(state.conf_best, decision.confidence)

        for pid in [pid for pid, p in state.people.items() if p.evidence < _PRUNE and p.named == 0]:
            del state.people[pid]

        state.fused = self._fuse(state)
        return state.fused

    @staticmethod
    def _names_someone_else(state: _TrackState, decision: Decision, size: float) -> bool:
        fused = state.fused
        if not (decision.is_match and fused is not None and fused.is_match and decision.person_id != fused.person_id):
            return False
        return size >= RESET_SIZE_SHARE * state.size_sum / max(state.hits, 1)

    def _fuse(self, state: _TrackState) -> FusedDecision:
        cfg = self.config
        ranked = sorted(state.people.items(), key=lambda kv: (-kv[1].evidence, kv[0]))
        total = sum(p.evidence for p in state.people.values()) + state.nobody
        frames_conf = min(_mean(state.conf_weighted, state.conf_weight, state.conf_sum, state.hits), state.conf_best)

        def not_named(status: str, reason: str, share: float) -> FusedDecision:
            return FusedDecision(status, None, None, frames_conf, state.hits, share, reason)

        if state.hits < cfg.min_hits:
            share = ranked[0][1].evidence / total if ranked and total > 0 else 0.0
            return not_named(PENDING, "too_few_hits", share)
        if not ranked or total <= 0 or ranked[0][1].evidence <= 0:
            return not_named(UNKNOWN, state.last_reason or "no_match", 0.0)

        best_id, best = ranked[0]
        second = ranked[1][1].evidence if len(ranked) > 1 else 0.0
        share = best.evidence / total
        runner = max(second, state.nobody)
        previous = state.fused
        keeps = previous is not None and previous.is_match and previous.person_id == best_id
        if not (keeps and best.evidence >= runner):
            if state.nobody >= best.evidence:
                return not_named(UNKNOWN, state.last_reason or "no_match", share)
            if (best.evidence - runner) / total < cfg.tie_margin:
                return not_named(UNKNOWN, "tie" if second >= state.nobody else "no_match", share)
            if best.named < cfg.min_hits:
                return not_named(UNKNOWN, "too_few_hits", share)
        confidence = min(_mean(best.conf_weighted, best.conf_weight, best.conf_sum, best.named), best.conf_best)
        return FusedDecision(MATCH, best_id, best.name, confidence, state.hits, share, None)

    def current(self, track_id: int) -> FusedDecision | None:
        """The track's latest fused decision, or None when it was never observed."""
        state = self._tracks.get(track_id)
        return state.fused if state else None

    def forget(self, track_id: int) -> None:
        """Drop a track's evidence (call it with ``TrackStep.lost``)."""
        self._tracks.pop(track_id, None)

    def forget_all(self, track_ids: Iterable[int]) -> None:
        """Drop the evidence of several tracks."""
        for tid in track_ids:
            self.forget(tid)

    def __len__(self) -> int:
        return len(self._tracks)


def _candidates(decision: Decision) -> tuple[ScoredCandidate, ...]:
    """The decision's candidates, with its named person among them (top_k may be 0)."""
    shown = decision.candidates
    if decision.person_id is not None and all(c.person_id != decision.person_id for c in shown):
        named = ScoredCandidate(decision.person_id, decision.name or "", decision.similarity, decision.confidence)
        shown = (named, *shown)
    seen: set[str] = set()
    out = []
    for c in shown:
        if c.person_id not in seen:
            seen.add(c.person_id)
            out.append(c)
    return tuple(out)


def update_kind(previous: FusedDecision | None, new: FusedDecision) -> str | None:
    """The event a change of a track's fused decision makes, or None.

    No previous decision: ``identified`` when the first is a match, else ``appeared``.
    Not a match -> match: ``identified``; match -> another person or no longer a match:
    ``changed``. ``lost`` comes from the tracker (``TrackStep.lost``), not from here.
    """
    if previous is None:
        return IDENTIFIED if new.is_match else APPEARED
    if new.is_match and not previous.is_match:
        return IDENTIFIED
    if previous.is_match and (not new.is_match or new.person_id != previous.person_id):
        return CHANGED
    return None
