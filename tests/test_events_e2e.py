"""Events end to end: the slideshow clip served by a real RTSP server as a camera of a real facegate server
(its three people enrolled) gives ``recognized`` events, each person once per appearance (the cooldown),
and the same event ids reach the log (``/v1/events``), the live feed (``/v1/events/ws``), a webhook
receiver on loopback (signatures checked) and an MQTT subscriber on the Mosquitto broker at
127.0.0.1:1883.

RTSP needs Debian's python3-gi and gst-rtsp-server, MQTT a broker: without them the tests skip with
the reason, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
import websockets

from api_server import free_port, running_server
from camera_clips import enrol_clip_people
from camera_servers import RtspServer, require_rtsp
from test_mqtt import Listener, require_broker
from test_webhooks import Receiver

SECRET = "whsec_e2e_secret_0123456789"
PEOPLE = ("Colin Powell", "Tony Blair", "Hugo Chavez")  # the clip's order
APPEARANCES = 4  # recognitions to wait for: every person, then the first again (after ~10 s away)


class Feed:
    """A ``/v1/events/ws`` client on its own thread, recording the events it is sent."""

    def __init__(self, url: str) -> None:
        self.events: list[dict] = []
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(url),), daemon=True)
        self._thread.start()
        if not self.ready.wait(30) or self.error is not None:
            pytest.fail(f"the live feed did not say ready: {self.error!r}")

    async def _run(self, url: str) -> None:
        try:
            async with websockets.connect(url) as ws:
                assert json.loads(await ws.recv())["type"] == "ready"
                self.ready.set()
                while not self._stop.is_set():
                    try:
                        message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    except TimeoutError:
                        continue
                    if message.get("type") == "event":
                        self.events.append(message)
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.ready.set()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
        return True
    except OSError:
        return False


@dataclass
class Seen:
    """What each place got of one camera's ``recognized`` events (ids in arrival order)."""

    logged: list[dict]
    feed: list[str]
    webhook: list[str]
    webhook_bad: list[str]
    mqtt: list[str] | None  # None: no broker
    mqtt_events: list[dict] = field(default_factory=list)


def wait_until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    return predicate()


@pytest.fixture(scope="module")
def seen(tmp_path_factory) -> Seen:
    """Run the clip as a camera until every person was recognised and the first came back; then stop it and
    collect what the log, the live feed, the webhook receiver and the MQTT subscriber got."""
    require_rtsp()
    from facegate.config import load_settings
    from facegate.service.runtime import Runtime

    data = tmp_path_factory.mktemp("events-e2e")
    mqtt = broker_up()
    prefix = f"fge2e{uuid.uuid4().hex[:6]}"
    values = {"data_dir": str(data), "port": free_port(), "camera_cooldown": 5.0}
    if mqtt:
        values |= {"mqtt_url": "mqtt://127.0.0.1:1883", "mqtt_prefix": prefix, "mqtt_discovery_prefix": prefix + "ha"}
    settings = load_settings().with_values(**values)
    runtime = Runtime.build(settings)
    runtime.warmup()
    enrol_clip_people(runtime)
    runtime.close()

    rtsp, receiver = RtspServer(), Receiver(secret=SECRET)
    listener = Listener(f"{prefix}/+/recognized") if mqtt else None
    rtsp.start()
    feed = camera_id = None
    try:
        with running_server(settings):
            base = f"http://127.0.0.1:{settings.server.port}"
            hook = httpx.post(
                f"{base}/v1/webhooks", json={"url": receiver.url, "secret": SECRET, "kinds": ["recognized"]}
            )
            assert hook.status_code == 201, hook.text
            feed = Feed(base.replace("http", "ws", 1) + "/v1/events/ws?kind=recognized")
            created = httpx.post(f"{base}/v1/cameras", json={"name": "door", "url": rtsp.url(), "fps": 5})
            assert created.status_code == 201, created.text
            camera_id = created.json()["id"]
            source = f"camera:{camera_id}"
            query = {"source": source, "kind": "recognized", "limit": 1000}

            def logged() -> list[dict]:
                return httpx.get(f"{base}/v1/events", params=query, timeout=10).json()["events"]

            # the clip loops every 14.9 s: each person ~5 s on screen, ~10 s away (more than the cooldown)
            def enough() -> list[dict] | None:
                events = logged()
                return events if len(events) >= APPEARANCES else None

            got = wait_until(enough, 75) or logged()
            assert len(got) >= APPEARANCES, (got, httpx.get(f"{base}/v1/cameras/{camera_id}").json())
            httpx.delete(f"{base}/v1/cameras/{camera_id}").raise_for_status()
            camera_id = None
            time.sleep(1)  # the camera's last events reach the log (written every 0.1 s)
            final = logged()
            ids = {e["id"] for e in final}

            def mqtt_ids() -> list[str]:
                with listener.lock:
                    return [json.loads(m[1])["id"] for m in listener.messages]

            def everywhere() -> bool:
                return (
                    ids <= {e["id"] for e in feed.events}
                    and ids <= set(receiver.ids)
                    and (listener is None or ids <= set(mqtt_ids()))
                )

            wait_until(everywhere, 30)
            feed.close()
            mine = [e for e in feed.events if e["source"] == source]
            return Seen(
                logged=final,
                feed=[e["id"] for e in mine],
                webhook=list(receiver.ids),
                webhook_bad=list(receiver.bad),
                mqtt=mqtt_ids() if listener else None,
                mqtt_events=[json.loads(m[1]) for m in listener.messages] if listener else [],
            )
    finally:
        if feed is not None:
            feed.close()
        if listener is not None:
            listener.close()
        receiver.stop()
        rtsp.close()


def test_each_person_is_recognized_once_per_appearance_in_the_log(seen: Seen):
    names = [e["name"] for e in seen.logged]
    print(f"events e2e: {len(names)} recognized ({', '.join(names)}); mqtt {'on' if seen.mqtt is not None else 'off'}")
    assert set(names) == set(PEOPLE), names
    assert all(a != b for a, b in itertools.pairwise(names)), names  # the cooldown: one event per appearance
    assert all(PEOPLE[(PEOPLE.index(a) + 1) % 3] == b for a, b in itertools.pairwise(names)), names  # clip order
    assert all(e["decision"] == "PASS" and e["person_id"] and e["confidence"] > 0.5 for e in seen.logged)


def test_the_live_feed_and_the_webhook_get_the_same_event_ids(seen: Seen):
    ids = [e["id"] for e in seen.logged]
    assert seen.feed == ids  # once each, in order
    assert not seen.webhook_bad  # every signature and X-Facegate-Event-Id header right
    assert list(dict.fromkeys(seen.webhook)) == ids  # in order; at least once (a retry may repeat one)


def test_mqtt_gets_the_same_event_ids(seen: Seen):
    require_broker()
    assert seen.mqtt is not None, "the broker answered only after the scenario ran"
    ids = [e["id"] for e in seen.logged]
    assert sorted(set(seen.mqtt)) == sorted(ids)
    assert {e["name"] for e in seen.mqtt_events} == set(PEOPLE)
