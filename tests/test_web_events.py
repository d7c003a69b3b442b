"""The Events page end to end: Debian's Chromium (Playwright) against a real facegate server whose
event bus gets events published in the server process (as a camera would publish them).

A published event must show in the Live feed within seconds (Pause holds it back until Resume, a
kind filter reconnects the feed), the History tab must list it and its CSV export must hold it, the
Attendance tab must list the person for today with the CSV and HR downloads, and a webhook added
through the page must receive a test event (a stdlib HTTP receiver on loopback) while its delivered
count on the page goes up; deleting it asks first. With API keys required, the live feed works and
no requested URL (HTTP or WebSocket) carries the key. Skipped without Playwright or Chromium,
except in CI (``CI=true``).
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from api_server import free_port, running_server
from conftest import photos
from facegate.events.types import Event, event_id
from test_web import TOO_WIDE, UNLABELLED, axe_violations, browser_page, screenshot

WIDE = "document.documentElement.scrollWidth <= window.innerWidth"
SHOWN = "(img) => img.complete && img.naturalWidth > 0 && img.src.startsWith('blob:')"


def settings_for(data_dir, **values):
    from facegate.config import load_settings

    return load_settings().with_values(data_dir=str(data_dir), port=free_port(), **values)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A facegate server (no API keys); yields the app (its bus) and its base URL."""
    with running_server(settings_for(tmp_path_factory.mktemp("web-events"))) as app:
        yield app, f"http://127.0.0.1:{app.state.runtime.settings.server.port}"


def publish(app, kind: str, person: str | None = "p_ann", name: str | None = "Ann", **fields) -> Event:
    """Publish an event (now) on the server's bus, as a camera worker does; returns it."""
    now = time.time()
    values = {
        "collection": "default",
        "track_id": 7,
        "person_id": person,
        "name": name,
        "confidence": 0.93 if kind == "recognized" else None,
        "decision": {"recognized": "PASS", "unknown": "REJECT", "left": "NO_FACE"}.get(kind),
        "box": (10.0, 20.0, 110.0, 140.0),
        "source": "camera:cam1",
    }
    values.update(fields)
    event = Event(id=event_id(now), ts=now, kind=kind, **values)
    app.state.runtime.bus.publish(event)
    return event


def logged(base: str, event_id_: str, headers=None, timeout: float = 10) -> None:
    """Wait until the event log holds ``event_id_`` (the log writes published events within ~0.1 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = httpx.get(f"{base}/v1/events", params={"limit": 1000}, headers=headers).json()["events"]
        if any(e["id"] == event_id_ for e in events):
            return
        time.sleep(0.1)
    pytest.fail(f"{event_id_} was not logged within {timeout} s")


def wait_feed_open(page) -> None:
    page.locator('#live-state[data-state="open"]').wait_for(timeout=15_000)


def check_accessible(page, what: str) -> None:
    assert page.evaluate(UNLABELLED) == [], what
    assert axe_violations(page) == [], what


class Receiver:
    """A loopback HTTP server answering 204 to every POST; records the JSON bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.bodies.append(json.loads(body or b"{}"))
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_live_feed_history_export_and_attendance(playwright, service):
    app, base = service
    with browser_page(playwright, base) as page:
        page.goto("/#/help")
        page.get_by_role("navigation").get_by_role("link", name="Events").click()
        page.get_by_role("heading", name="Events", level=1).wait_for()
        assert page.get_by_role("tab", name="Live").get_attribute("aria-selected") == "true"
        wait_feed_open(page)
        check_accessible(page, "live, empty")

        # a recognised person appears live, with the face snapshot, kind, confidence, source link and box
        ann = publish(app, "recognized", snapshot=photos("Colin_Powell")[0].read_bytes())
        item = page.locator(f'[data-testid="event"][data-id="{ann.id}"]')
        item.wait_for(timeout=5_000)
        text = item.inner_text()
        assert "Ann" in text and "Recognized" in text and "93%" in text and "100×120 px" in text, text
        assert item.get_by_role("link").get_attribute("href") == "#/cameras"
        face = item.get_by_role("img", name="Face of Ann")
        page.wait_for_function(SHOWN, arg=face.element_handle(), timeout=10_000)
        unknown = publish(app, "unknown", person=None, name=None, track_id=8)
        page.locator(f'[data-testid="event"][data-id="{unknown.id}"]').get_by_text("Unknown person").wait_for(
            timeout=5_000
        )
        assert page.locator('[data-testid="event"]').first.get_attribute("data-id") == unknown.id  # newest on top

        # Pause holds new events back; Resume shows them
        page.get_by_role("button", name="Pause").click()
        held = publish(app, "recognized", track_id=9)
        page.get_by_role("button", name="Resume (1 new)").wait_for(timeout=5_000)
        assert page.locator(f'[data-testid="event"][data-id="{held.id}"]').count() == 0
        page.get_by_role("button", name="Resume (1 new)").click()
        page.locator(f'[data-testid="event"][data-id="{held.id}"]').wait_for()
        assert page.locator("#events-pause").get_attribute("aria-pressed") == "false"

        # a kind filter reconnects the feed with ?kind=: only those events arrive
        with page.expect_websocket(lambda ws: "kind=left" in ws.url):
            page.locator("#live-kind").select_option("left")
        wait_feed_open(page)
        assert page.locator('[data-testid="event"]').count() == 0
        publish(app, "recognized", track_id=10)
        left = publish(app, "left", track_id=7, confidence=None)
        page.locator(f'[data-testid="event"][data-id="{left.id}"]').wait_for(timeout=5_000)
        page.wait_for_timeout(500)
        assert {e.get_attribute("data-kind") for e in page.locator('[data-testid="event"]').all()} == {"left"}
        check_accessible(page, "live, with events")
        screenshot(page, "events-live")

        # History: today's events, oldest first, and the CSV export of the same filters
        logged(base, left.id)
        page.get_by_role("tab", name="History").click()
        assert page.url.endswith("#/events/history")
        rows = page.locator('[data-testid="history-event"]')
        page.locator(f'[data-testid="history-event"][data-id="{left.id}"]').wait_for(timeout=10_000)
        assert rows.first.get_attribute("data-id") == ann.id
        assert page.locator(f'[data-testid="history-event"][data-id="{ann.id}"]').get_by_text("Ann").count() == 1
        page.get_by_role("tabpanel", name="History").get_by_label("Kind").select_option("recognized")
        page.get_by_role("button", name="Show events").click()
        page.wait_for_function("document.querySelector('#history-summary').textContent === '3 events'")
        assert {r.get_attribute("data-kind") for r in rows.all()} == {"recognized"}
        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").click()
        exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert ann.id in [r["id"] for r in exported] and {r["kind"] for r in exported} == {"recognized"}
        assert [r["name"] for r in exported if r["id"] == ann.id] == ["Ann"]
        check_accessible(page, "history")
        screenshot(page, "events-history")

        # Attendance: Bea arrives (recognized) and leaves a few seconds later, today; Ann was seen above
        arrived = publish(app, "recognized", person="p_att", name="Bea", track_id=20)
        time.sleep(2)
        gone = publish(app, "left", person="p_att", name="Bea", track_id=20, confidence=None)
        logged(base, gone.id)
        assert arrived.ts < gone.ts
        page.get_by_role("tab", name="Attendance").click()
        bea = page.locator('[data-testid="attendance-person"][data-name="Bea"]')
        bea.wait_for(timeout=10_000)
        assert page.locator('[data-testid="attendance-person"][data-name="Ann"]').count() == 1
        cells = bea.locator("td").all_inner_texts()
        assert cells[0] == "Bea" and cells[3] == "0:00" and "cam1" in cells[4], cells
        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV").click()
        rows_csv = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert {"Ann", "Bea"} <= {r["name"] for r in rows_csv}
        with page.expect_download() as download:
            page.get_by_role("button", name="HR check-ins").click()
        hr = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert {("p_att", "IN"), ("p_att", "OUT")} <= {(r["employee"], r["log_type"]) for r in hr}
        check_accessible(page, "attendance")
        screenshot(page, "events-attendance")

        # every tab fits a phone's width
        page.set_viewport_size({"width": 390, "height": 844})
        for tab in ("Live", "History", "Attendance", "Webhooks"):
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(300)
            assert page.evaluate(WIDE), (tab, page.evaluate(TOO_WIDE))
        screenshot(page, "events-phone")

        # the tabs work by keyboard (arrows move between them)
        page.get_by_role("tab", name="Webhooks").focus()
        page.keyboard.press("Home")
        assert page.evaluate("document.activeElement.textContent") == "Live"
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.getAttribute('aria-selected')") == "true"
        assert page.locator("#panel-history").is_visible()


def test_webhooks_added_tested_disabled_and_deleted_through_the_page(playwright, service):
    _, base = service
    receiver = Receiver()
    try:
        with browser_page(playwright, base) as page:
            page.goto("/#/events/webhooks")
            page.get_by_role("heading", name="Webhooks", level=2).wait_for()
            page.get_by_text("No webhooks yet.").wait_for()

            page.get_by_label("Webhook URL").fill(receiver.url)
            page.get_by_label("Recognized").check()
            page.get_by_label("Left").check()
            page.get_by_role("button", name="Add webhook").click()
            secret = page.get_by_label("Signing secret")
            secret.wait_for()
            [hook] = httpx.get(f"{base}/v1/webhooks").json()
            assert hook["url"] == receiver.url and sorted(hook["kinds"]) == ["left", "recognized"]
            assert secret.input_value().startswith("whsec_")
            assert "shown only this once" in page.locator("#webhook-secret").inner_text()
            row = page.locator(f'[data-testid="webhook"][data-id="{hook["id"]}"]')
            row.wait_for()
            assert "Recognized, Left" in row.inner_text()
            check_accessible(page, "webhooks with the secret")
            screenshot(page, "events-webhooks")
            page.get_by_role("button", name="Done").click()
            assert page.locator("#webhook-secret").is_hidden() and secret.input_value() == ""

            # a test event reaches the receiver and the delivered count goes up
            row.get_by_role("button", name="Send test event").click()
            deadline = time.monotonic() + 15
            while not receiver.bodies and time.monotonic() < deadline:
                time.sleep(0.1)
            assert receiver.bodies and receiver.bodies[0]["source"] == "test"
            row.locator('[data-testid="webhook-delivered"]', has_text="1").wait_for(timeout=10_000)

            # disable, enable
            row.get_by_role("button", name="Disable").click()
            row.locator('[data-testid="webhook-state"]', has_text="disabled").wait_for()
            assert httpx.get(f"{base}/v1/webhooks/{hook['id']}").json()["enabled"] is False
            row.get_by_role("button", name="Enable").click()
            row.locator('[data-testid="webhook-state"]', has_text="enabled").wait_for()
            assert httpx.get(f"{base}/v1/webhooks/{hook['id']}").json()["enabled"] is True

            # deleting asks: Cancel keeps it, confirming deletes it
            row.get_by_role("button", name="Delete").click()
            dialog = page.locator("#confirm-dialog")
            dialog.wait_for()
            assert receiver.url in page.locator("#confirm-text").inner_text()
            dialog.get_by_role("button", name="Cancel").click()
            page.wait_for_timeout(300)
            assert [w["id"] for w in httpx.get(f"{base}/v1/webhooks").json()] == [hook["id"]]
            assert row.is_visible()
            row.get_by_role("button", name="Delete").click()
            dialog.get_by_role("button", name="Delete webhook").click()
            row.wait_for(state="detached")
            assert httpx.get(f"{base}/v1/webhooks").json() == []
            page.get_by_text("No webhooks yet.").wait_for()
    finally:
        receiver.stop()


def test_dead_deliveries_are_listed_with_their_last_error(playwright, service, monkeypatch):
    import facegate.service.webhooks as webhooks

    _, base = service
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 1)  # the server runs in this process: dead at the first failure
    nobody = f"http://127.0.0.1:{free_port()}/gone"  # nothing listens there: the connection is refused
    made = httpx.post(f"{base}/v1/webhooks", json={"url": nobody}).json()
    try:
        with browser_page(playwright, base) as page:
            page.goto("/#/events/webhooks")
            row = page.locator(f'[data-testid="webhook"][data-id="{made["id"]}"]')
            row.get_by_role("button", name="Send test event").click()
            row.locator('[data-testid="webhook-dead"]', has_text="1").wait_for(timeout=15_000)
            assert "Last error: ConnectError" in row.locator('[data-testid="webhook-last-error"]').inner_text()
            row.get_by_text("Dead deliveries (1)").click()  # a disclosure: opens the list
            dead = row.locator('[data-testid="dead-delivery"]')
            dead.wait_for()
            assert "ConnectError" in dead.inner_text() and "after 1 attempt" in dead.inner_text()
            check_accessible(page, "webhooks with a dead delivery")
            page.set_viewport_size({"width": 390, "height": 844})
            assert page.evaluate(WIDE), page.evaluate(TOO_WIDE)
    finally:
        httpx.delete(f"{base}/v1/webhooks/{made['id']}")


def test_history_pages_with_load_more_and_filters_by_source(playwright, service):
    app, base = service
    made = [publish(app, "unknown", person=None, name=None, source="camera:bulk", track_id=n) for n in range(130)]
    logged(base, made[-1].id)
    with browser_page(playwright, base) as page:
        page.goto("/#/events/history")
        history = page.get_by_role("tabpanel", name="History")
        history.get_by_label("Source").fill("camera:bulk")
        history.get_by_label("Source").press("Enter")
        summary = page.locator("#history-summary")
        summary.filter(has_text="100 events so far: more to load").wait_for(timeout=10_000)
        page.get_by_role("button", name="Load more").click()
        summary.filter(has_text="130 events").wait_for(timeout=10_000)
        assert page.get_by_role("button", name="Load more").is_hidden()
        ids = [r.get_attribute("data-id") for r in page.locator('[data-testid="history-event"]').all()]
        assert ids == [e.id for e in made]  # oldest first, each once


def test_with_api_keys_the_feed_works_and_no_url_carries_the_key(playwright, tmp_path):
    settings = settings_for(tmp_path, auth="required")
    with running_server(settings) as app:
        base = f"http://127.0.0.1:{settings.server.port}"
        secret = app.state.runtime.keys.create("events ui", ["admin"]).secret
        keyed = {"X-API-Key": secret}
        assert httpx.get(f"{base}/v1/events").status_code == 401
        with browser_page(playwright, base) as page:
            requests: list[tuple[str, dict]] = []
            sockets: list[str] = []
            page.on("request", lambda r: requests.append((r.url, r.headers)))
            page.on("websocket", lambda ws: sockets.append(ws.url))
            page.add_init_script(f"localStorage.setItem('facegate.apiKey', {secret!r})")
            page.goto("/#/events")
            wait_feed_open(page)
            ann = publish(app, "recognized", snapshot=photos("Colin_Powell")[0].read_bytes())
            item = page.locator(f'[data-testid="event"][data-id="{ann.id}"]')
            item.wait_for(timeout=5_000)
            page.wait_for_function(SHOWN, arg=item.get_by_role("img").element_handle(), timeout=10_000)
            logged(base, ann.id, headers=keyed)
            page.get_by_role("tab", name="History").click()
            page.locator(f'[data-testid="history-event"][data-id="{ann.id}"]').wait_for(timeout=10_000)
            with page.expect_download() as download:
                page.get_by_role("button", name="Export CSV").click()
            assert ann.id in Path(download.value.path()).read_text()
            page.get_by_role("tab", name="Webhooks").click()
            page.get_by_text("No webhooks yet.").wait_for()
        assert sockets and all("/v1/events/ws" in url for url in sockets)
        api_calls = [(url, headers) for url, headers in requests if "/v1/" in url]
        assert any("/v1/events/export.csv" in url for url, _ in api_calls)
        assert any(url.endswith(f"/v1/events/{ann.id}/snapshot.jpg") for url, _ in api_calls)
        assert all(headers.get("x-api-key") == secret for url, headers in api_calls if "/ws" not in url)
        leaked = [url for url in [u for u, _ in requests] + sockets if "api_key" in url or secret in url]
        assert leaked == []
