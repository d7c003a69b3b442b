"""Events: bus + log throughput, event-to-receiver latency (webhook, MQTT, live feed), a slow webhook's cost.

    python bench/events.py [--events 20000] [--rate 20] [--seconds 10] [--bursts]

- ``events_per_s``: one process, SQLite; ``--events`` events published at once; the time until the
  log has written them all (the bus and the log writer, batched);
- latency: a server (uvicorn in a thread of this process, as the tests run it: there is no API to
  publish events, so the bench publishes on its bus; SQLite, a webhook to a receiver here, MQTT to
  the Mosquitto broker at 127.0.0.1:1883 when one answers) gets events at ``--rate`` a second for
  ``--seconds``; each event's latency is from its publication to its arrival at the webhook
  receiver, at an MQTT subscriber and on ``/v1/events/ws``;
- ``--bursts`` (a line of its own): events in pairs 5 ms apart every 0.2 s to a receiver taking 20 ms a
  request, so the second of a pair is written while the first is being delivered (the sender must
  claim it when that delivery ends, not at its next poll of the outbox);
- ``slow_sink_fps_ratio``: an RTSP camera (the slideshow of ``tests/camera_clips.py``) at 5 fps,
  processed frames per second with a webhook receiver that takes 10 s per request over the same
  without any webhook.

Last line: ``events_per_s=… webhook_p95_ms=… mqtt_p95_ms=… ws_feed_p95_ms=… events_lost=… slow_sink_fps_ratio=…``
(targets of issue 16: >= 2,000 events/s on SQLite, p95 <= 100 ms for each sink on loopback, 0 lost,
ratio >= 0.95).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from api_server import free_port, running_server  # noqa: E402
from camera_servers import RtspServer  # noqa: E402
from facegate.config import load_settings  # noqa: E402
from facegate.events.types import Event, event_id  # noqa: E402


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[int(0.95 * (len(values) - 1))] if values else float("nan")


def event(n: int, ts: float | None = None) -> Event:
    ts = time.time() if ts is None else ts
    return Event(event_id(ts), ts, "recognized", "camera:bench", "default", n, "p_bench", "Bench", 0.99, "PASS")


def throughput(count: int) -> float:
    from facegate.service.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime.build(load_settings().with_values(data_dir=tmp))
        from facegate.service.eventlog import EventLogSink

        sink = EventLogSink(runtime.bus, runtime.events.log, 30, 7)
        sink.start()
        started = time.perf_counter()
        for n in range(count):
            runtime.bus.publish(event(n))
        while sink.written < count:
            time.sleep(0.005)
        took = time.perf_counter() - started
        sink.stop()
        runtime.close()
    rate = count / took
    print(f"throughput events={count} seconds={took:.2f} events_per_s={rate:.0f}", flush=True)
    return rate


class Receiver:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.arrivals: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.arrivals.setdefault(body["id"], time.time())
                time.sleep(delay_s)
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()


def broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
        return True
    except OSError:
        return False


def latencies(rate: float, seconds: float) -> tuple[float, float, float, int]:
    mqtt = broker_up()
    receiver = Receiver()
    prefix = f"bench{int(time.time())}"
    with tempfile.TemporaryDirectory() as tmp:
        values = {"data_dir": tmp, "port": free_port()}
        if mqtt:
            values |= {"mqtt_url": "mqtt://127.0.0.1:1883", "mqtt_prefix": prefix}
        settings = load_settings().with_values(**values)
        with running_server(settings) as app:
            base = f"http://127.0.0.1:{settings.server.port}"
            httpx.post(f"{base}/v1/webhooks", json={"url": receiver.url}).raise_for_status()
            mqtt_arrivals: dict[str, float] = {}
            if mqtt:
                import paho.mqtt.client as paho

                sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-sub")
                sub.on_message = lambda c, u, m: mqtt_arrivals.setdefault(json.loads(m.payload)["id"], time.time())
                sub.connect("127.0.0.1", 1883)
                sub.subscribe(f"{prefix}/+/recognized")
                sub.loop_start()
            ws_arrivals: dict[str, float] = {}
            published: dict[str, float] = {}

            async def feed(stop: asyncio.Event) -> None:
                async with websockets.connect(base.replace("http", "ws") + "/v1/events/ws") as ws:
                    await ws.recv()
                    ready.set()
                    while not stop.is_set():
                        try:
                            message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                        except TimeoutError:
                            continue
                        ws_arrivals.setdefault(message["id"], time.time())

            ready = threading.Event()
            stop = asyncio.Event()
            loop = asyncio.new_event_loop()
            feeder = threading.Thread(target=loop.run_until_complete, args=(feed(stop),), daemon=True)
            feeder.start()
            ready.wait(10)
            time.sleep(1)  # MQTT connected and subscribed
            for n in range(int(rate * seconds)):
                e = event(n)
                published[e.id] = e.ts
                app.state.runtime.bus.publish(e)
                time.sleep(1 / rate)
            time.sleep(3)
            loop.call_soon_threadsafe(stop.set)
            feeder.join(5)
            if mqtt:
                sub.loop_stop()
    receiver.stop()

    def lat(arrivals: dict[str, float]) -> list[float]:
        return [(arrivals[i] - ts) * 1000 for i, ts in published.items() if i in arrivals]

    lost = sum(i not in receiver.arrivals for i in published) + sum(i not in ws_arrivals for i in published)
    if mqtt:
        lost += sum(i not in mqtt_arrivals for i in published)
    hook, ws, mq = lat(receiver.arrivals), lat(ws_arrivals), lat(mqtt_arrivals)
    print(
        f"latency events={len(published)} webhook_p95_ms={p95(hook):.0f} ws_p95_ms={p95(ws):.0f} "
        f"mqtt_p95_ms={p95(mq) if mqtt else float('nan'):.0f} lost={lost}",
        flush=True,
    )
    return p95(hook), p95(mq) if mqtt else float("nan"), p95(ws), lost


def burst_latency(pairs: int = 100) -> float:
    """Webhook latency p95 of events in pairs 5 ms apart (every 0.2 s), the receiver taking 20 ms a request."""
    receiver = Receiver(delay_s=0.02)
    published: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings().with_values(data_dir=tmp, port=free_port())
        with running_server(settings) as app:
            base = f"http://127.0.0.1:{settings.server.port}"
            httpx.post(f"{base}/v1/webhooks", json={"url": receiver.url}).raise_for_status()
            for n in range(pairs):
                for k in range(2):
                    e = event(2 * n + k)
                    published[e.id] = e.ts
                    app.state.runtime.bus.publish(e)
                    time.sleep(0.005)
                time.sleep(0.2)
            deadline = time.monotonic() + 10
            while len(receiver.arrivals) < len(published) and time.monotonic() < deadline:
                time.sleep(0.05)
    receiver.stop()
    hook = [(receiver.arrivals[i] - ts) * 1000 for i, ts in published.items() if i in receiver.arrivals]
    lost = len(published) - len(hook)
    print(
        f"bursts events={len(published)} webhook_p50_ms={sorted(hook)[len(hook) // 2]:.0f} "
        f"webhook_p95_ms={p95(hook):.0f} lost={lost}",
        flush=True,
    )
    return p95(hook)


def camera_fps(webhook_delay_s: float | None, seconds: float) -> float:
    server = RtspServer()
    server.start()
    receiver = Receiver(webhook_delay_s) if webhook_delay_s is not None else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings().with_values(data_dir=tmp, port=free_port())
            from camera_clips import enrol_clip_people
            from facegate.service.runtime import Runtime

            runtime = Runtime.build(settings)
            enrol_clip_people(runtime)
            runtime.close()
            with running_server(settings):
                base = f"http://127.0.0.1:{settings.server.port}"
                if receiver:
                    httpx.post(f"{base}/v1/webhooks", json={"url": receiver.url}).raise_for_status()
                camera = httpx.post(f"{base}/v1/cameras", json={"name": "bench", "url": server.url(), "fps": 5}).json()
                deadline = time.monotonic() + 30
                while httpx.get(f"{base}/v1/cameras/{camera['id']}").json()["state"] != "live":
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
                time.sleep(3)
                before = httpx.get(f"{base}/v1/cameras/{camera['id']}").json()["stats"]["processed"]
                started = time.monotonic()
                time.sleep(seconds)
                after = httpx.get(f"{base}/v1/cameras/{camera['id']}").json()["stats"]["processed"]
                fps = (after - before) / (time.monotonic() - started)
                sent = len(receiver.arrivals) if receiver else 0
                print(f"camera webhook_delay_s={webhook_delay_s} processed_fps={fps:.2f} webhook_requests={sent}")
                return fps
    finally:
        server.close()
        if receiver:
            receiver.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--bursts", action="store_true", help="also the webhook latency of events in pairs")
    args = ap.parse_args()
    rate = throughput(args.events)
    hook, mqtt, ws, lost = latencies(args.rate, args.seconds)
    if args.bursts:
        burst_latency()
    plain = camera_fps(None, 15)
    slow = camera_fps(10.0, 15)
    print(
        f"events_per_s={rate:.0f} webhook_p95_ms={hook:.0f} mqtt_p95_ms={mqtt:.0f} ws_feed_p95_ms={ws:.0f} "
        f"events_lost={lost} slow_sink_fps_ratio={slow / plain:.2f}"
    )


if __name__ == "__main__":
    main()
