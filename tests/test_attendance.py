"""Attendance from the event log: stays merge across short gaps, split at midnight, HR check-in rows."""

from __future__ import annotations

import csv
import datetime as dt
import io

import httpx
import pytest

from api_server import free_port, running_server
from facegate.events.types import Event, event_id
from facegate.service.attendance import local_day_start


def ev(kind: str, ts: float, source: str = "camera:door", person: str | None = None, name: str = "Ann") -> dict:
    return Event(
        event_id(ts), ts, kind, source, "default", 1, person, name, 0.99 if kind == "recognized" else None
    ).to_dict()


@pytest.fixture
def service(tmp_path):
    from facegate.config import load_settings

    settings = load_settings().with_values(data_dir=str(tmp_path), port=free_port(), attendance_absence_s=600)
    with running_server(settings) as app:
        yield app, f"http://127.0.0.1:{settings.server.port}"


def test_a_day_of_stays_with_a_short_break_a_long_one_and_two_doors(service):
    app, base = service
    runtime = app.state.runtime
    ann = runtime.store.create_person("Ann", metadata={"employee_id": "E-17"})
    day = dt.date(2026, 11, 30)
    t0 = local_day_start(day) + 9 * 3600  # 09:00 local
    runtime.events.log.append(
        [
            ev("recognized", t0, person=ann.id),
            ev("left", t0 + 3600, person=ann.id),  # 09:00-10:00
            ev("recognized", t0 + 3900, "camera:lab", ann.id),  # back after 5 min at another door: same stay
            ev("left", t0 + 7200, "camera:lab", ann.id),  # ...until 11:00
            ev("recognized", t0 + 4 * 3600, person=ann.id),  # 13:00 after lunch: a new stay
            ev("left", t0 + 5 * 3600, person=ann.id),  # 14:00
            ev("recognized", local_day_start(day) + 23.5 * 3600, person=ann.id),  # 23:30...
            ev("left", local_day_start(day) + 24.5 * 3600, person=ann.id),  # ...00:30 the next day
            ev("unknown", t0 + 100),  # nobody: not attendance
        ]
    )
    got = httpx.get(f"{base}/v1/attendance", params={"from": day.isoformat(), "to": "2026-12-01"}).json()
    first, second = got["days"]
    (person,) = first["people"]
    assert (person["name"], person["first_seen"], person["sources"]) == ("Ann", t0, ["camera:door", "camera:lab"])
    assert person["present_s"] == 2 * 3600 + 3600 + 1800 and person["last_seen"] == local_day_start(day) + 86400
    assert second["people"][0]["present_s"] == 1800
    rows = list(
        csv.DictReader(
            io.StringIO(httpx.get(f"{base}/v1/attendance", params={"from": day.isoformat(), "format": "hr"}).text)
        )
    )
    assert [(r["employee"], r["log_type"]) for r in rows] == [("E-17", "IN"), ("E-17", "OUT")] * 3
    assert rows[0]["time"].startswith("2026-11-30T09:00:00") and rows[0]["device"] == "camera:door"
    table = httpx.get(f"{base}/v1/attendance", params={"from": day.isoformat(), "format": "csv"}).text
    assert table.splitlines()[1].startswith(f"2026-11-30,{ann.id},Ann,")
    bad = httpx.get(f"{base}/v1/attendance", params={"from": "2026-12-02", "to": "2026-12-01"})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_range")
