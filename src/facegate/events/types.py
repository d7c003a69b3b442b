"""The one event type every producer publishes and every sink receives."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

KINDS = ("recognized", "unknown", "left", "camera_down", "camera_up")


def event_id(ts: float | None = None) -> str:
    """A unique id that sorts by time: 13 hex digits of microseconds, then 8 random hex digits."""
    micros = int((time.time() if ts is None else ts) * 1_000_000)
    return f"ev_{micros:013x}{os.urandom(4).hex()}"


@dataclass(frozen=True)
class Event:
    """Something worth telling: a person recognised (after the cooldown), an unknown face, a camera state change.

    ``source`` is ``camera:<id>`` or ``stream:<session>``; ``box`` is ``[x1, y1, x2, y2]`` in the
    source's pixels; ``decision`` is the specification's ``PASS`` (recognised), ``REJECT``
    (unknown) or ``NO_FACE`` (nobody left in front of the camera).
    """

    id: str
    ts: float  # Unix time of the frame
    kind: str
    source: str
    collection: str | None = None
    track_id: int | None = None
    person_id: str | None = None
    name: str | None = None
    confidence: float | None = None
    decision: str | None = None
    box: tuple[float, float, float, float] | None = None
    detail: str | None = None  # camera_down: the error code and message
    snapshot: bytes | None = field(default=None, repr=False, compare=False)  # the face, JPEG (~10 kB)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")

    def to_dict(self) -> dict:
        """The event's fields (what the log stores and sinks send); ``snapshot`` is a flag here, not the bytes."""
        out = {k: v for k, v in asdict(self).items() if k != "snapshot"}
        out["box"] = list(self.box) if self.box else None
        out["has_snapshot"] = self.snapshot is not None
        return out
