"""Attendance from the event log: per person per day, first seen, last seen, time present, sources.

A stay starts with a ``recognized`` event and ends with the person's ``left`` event at the same
source (stamped when they were last seen; a person still in view is present until now). Stays
closer than ``absence_s`` merge (someone stepping out for a minute is still present), across
sources too. Days are the server's local calendar days; a stay over midnight counts in both.

The HR export has two rows per stay and day: ``employee`` (the person's ``employee_id`` metadata,
else their id), ``log_type`` IN or OUT, ``time`` (ISO 8601, local time with offset) and
``device`` (the source where the stay began, for IN; where it ended, for OUT).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import dataclass, field

from facegate.store.events import EventLog
from facegate.store.records import EventQuery
from facegate.store.repository import Store


@dataclass
class Stay:
    start: float
    end: float
    sources: set[str] = field(default_factory=set)
    entered: str = ""  # the source where the stay began
    exited: str = ""  # the source where it ended


@dataclass(frozen=True)
class PersonDay:
    person_id: str
    name: str
    first_seen: float
    last_seen: float
    present_s: float
    sources: tuple[str, ...]
    stays: tuple[tuple[float, float, str, str], ...]  # (start, end, source entered, source left)


def local_day_start(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time()).astimezone().timestamp()


class Attendance:
    """Days of presence, computed from the event log."""

    def __init__(self, events: EventLog, store: Store, absence_s: float) -> None:
        self.events, self.store, self.absence_s = events, store, absence_s

    def days(self, first: dt.date, last: dt.date, collection: str | None = None) -> dict[dt.date, list[PersonDay]]:
        since, until = local_day_start(first), local_day_start(last + dt.timedelta(days=1))
        stays, names = self._stays(since - 86400, until, collection)  # a stay may start the day before
        out: dict[dt.date, list[PersonDay]] = {}
        day = first
        while day <= last:
            start, end = local_day_start(day), local_day_start(day + dt.timedelta(days=1))
            people = []
            for person_id, merged in stays.items():
                inside = [s for s in merged if s.end > start and s.start < end]
                parts = [(max(s.start, start), min(s.end, end), s.sources, s.entered, s.exited) for s in inside]
                if parts:
                    people.append(
                        PersonDay(
                            person_id,
                            names.get(person_id, person_id),
                            min(p[0] for p in parts),
                            max(p[1] for p in parts),
                            sum(p[1] - p[0] for p in parts),
                            tuple(sorted(set().union(*(p[2] for p in parts)))),
                            tuple((p[0], p[1], p[3], p[4]) for p in parts),
                        )
                    )
            out[day] = sorted(people, key=lambda p: (p.first_seen, p.name))
            day += dt.timedelta(days=1)
        return out

    def _stays(self, since: float, until: float, collection: str | None):
        now = time.time()
        open_at: dict[tuple[str, str], float] = {}
        raw: dict[str, list[Stay]] = defaultdict(list)
        names: dict[str, str] = {}
        query = EventQuery(since=since, until=until, collection=collection, limit=1000)
        for event in self.events.export(query):
            person, kind = event["person_id"], event["kind"]
            if not person or kind not in ("recognized", "left"):
                continue
            names[person] = event["name"] or person
            key = (person, event["source"])
            if kind == "recognized":
                open_at.setdefault(key, event["ts"])
            else:  # without its arrival in the range (left with no recognized): present from a gap before
                start = open_at.pop(key, None) or max(since, event["ts"] - self.absence_s)
                src = event["source"]
                raw[person].append(Stay(start, event["ts"], {src}, src, src))
        for (person, source), start in open_at.items():  # still in view
            raw[person].append(Stay(start, min(now, until), {source}, source, source))
        merged: dict[str, list[Stay]] = {}
        for person, stays in raw.items():
            stays.sort(key=lambda s: s.start)
            out = [stays[0]]
            for s in stays[1:]:
                if s.start - out[-1].end <= self.absence_s:
                    if s.end >= out[-1].end:
                        out[-1].end, out[-1].exited = s.end, s.exited
                    out[-1].sources |= s.sources
                else:
                    out.append(s)
            merged[person] = out
        return merged, names

    def employee(self, person_id: str) -> str:
        """What an HR system knows the person by: their ``employee_id`` metadata, else their id."""
        try:
            record = self.store.get_person(person_id)
        except Exception:
            return person_id
        return str((record.metadata or {}).get("employee_id") or person_id)

    @staticmethod
    def iso(ts: float) -> str:
        return dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")
