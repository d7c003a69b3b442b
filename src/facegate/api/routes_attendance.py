"""REST v1: attendance from the event log, per person per day (JSON, CSV, or HR check-in rows)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from facegate.api.auth import check_collection, require
from facegate.api.deps import runtime_of
from facegate.api.problems import ApiError

router = APIRouter(prefix="/v1/attendance", tags=["events"], dependencies=[Depends(require("recognize"))])
MAX_DAYS = 366


class PersonDayOut(BaseModel):
    person_id: str
    name: str
    first_seen: float
    last_seen: float
    present_s: float
    sources: list[str]


class DayOut(BaseModel):
    date: str
    people: list[PersonDayOut]


class AttendanceOut(BaseModel):
    days: list[DayOut]


@router.get("", response_model=AttendanceOut, responses={200: {"content": {"text/csv": {}}}})
def attendance(
    request: Request,
    start: Annotated[dt.date | None, Query(alias="from", description="first day (server local); default today")] = None,
    end: Annotated[dt.date | None, Query(alias="to", description="last day, included; default the first")] = None,
    collection: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    format: Literal["json", "csv", "hr"] = "json",
):
    """Who was present each day: first and last seen (Unix time), time present, sources. A stay is from a
    ``recognized`` event to the person's ``left``; gaps under ``events.attendance_absence_s`` (600 s) do not
    end it. ``format=csv``: a row per person and day; ``format=hr``: check-in rows ``employee, log_type (IN or
    OUT), time (ISO 8601), device`` — the employee is the person's ``employee_id`` metadata, else their id."""
    key = getattr(request.state, "api_key", None)
    if key is not None and key.collections:
        if collection is None:
            raise ApiError("a key limited to some collections must name one: ?collection=", code="collection_forbidden")
        check_collection(key, collection)
    first = start or dt.date.today()
    last = end or first
    if last < first or (last - first).days >= MAX_DAYS:
        raise ApiError(f"'to' must be on or after 'from', and at most {MAX_DAYS} days later", code="invalid_range")
    service = runtime_of(request).attendance
    days = service.days(first, last, collection)
    if format == "json":
        return AttendanceOut(
            days=[
                DayOut(
                    date=day.isoformat(),
                    people=[
                        PersonDayOut(
                            person_id=p.person_id,
                            name=p.name,
                            first_seen=round(p.first_seen, 3),
                            last_seen=round(p.last_seen, 3),
                            present_s=round(p.present_s, 1),
                            sources=list(p.sources),
                        )
                        for p in people
                    ],
                )
                for day, people in days.items()
            ]
        )
    out = io.StringIO()
    writer = csv.writer(out)
    if format == "csv":
        writer.writerow(["date", "person_id", "name", "first_seen", "last_seen", "present_s", "sources"])
        for day, people in days.items():
            for p in people:
                first_seen, last_seen = service.iso(p.first_seen), service.iso(p.last_seen)
                sources = " ".join(p.sources)
                writer.writerow(
                    [day.isoformat(), p.person_id, p.name, first_seen, last_seen, round(p.present_s), sources]
                )
    else:
        writer.writerow(["employee", "log_type", "time", "device"])
        for people in days.values():
            for p in people:
                employee = service.employee(p.person_id)
                for start_ts, end_ts, entered, exited in p.stays:
                    writer.writerow([employee, "IN", service.iso(start_ts), entered])
                    writer.writerow([employee, "OUT", service.iso(end_ts), exited])
    name = f"attendance-{first.isoformat()}-{last.isoformat()}{'-hr' if format == 'hr' else ''}.csv"
    return Response(
        out.getvalue(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
