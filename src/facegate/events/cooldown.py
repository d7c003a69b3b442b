"""When a recognition becomes an event: when a person is named after being away for the cooldown."""

from __future__ import annotations

MAX_REMEMBERED = 10_000


class Cooldown:
    """Tracks when each key (a person id) was last seen on one source; timestamps are passed in.

    A person standing in front of a camera for a minute is one event, not twelve: the clock
    restarts every time they are seen, so only ``seconds`` of absence make the next sighting
    an event again (a track lost and found again meanwhile adds nothing).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last_seen: dict[str, float] = {}

    def seen(self, key: str, ts: float) -> bool:
        """Record a sighting; True when it is news (no sighting of ``key`` in the ``seconds`` before ``ts``)."""
        last = self._last_seen.get(key)
        self._last_seen[key] = ts if last is None else max(last, ts)
        if len(self._last_seen) > MAX_REMEMBERED:
            self._forget_before(ts - self.seconds)
        return last is None or ts - last >= self.seconds

    def _forget_before(self, cutoff: float) -> None:
        for key in [k for k, t in self._last_seen.items() if t < cutoff]:
            del self._last_seen[key]
