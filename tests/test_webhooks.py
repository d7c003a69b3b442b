"""Webhooks against a real receiver on loopback: signed, every event at least once and in order, retried
while the receiver is down, no event lost when facegate is killed, none twice after a clean restart."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from api_server import free_port, serve_process
from facegate.events.types import Event, event_id

SECRET = "whsec_test_secret_0123456789"


class Receiver:
    """An HTTP server that checks signatures and records event ids in arrival order."""

    def __init__(self, port: int, delay_s: float = 0.0) -> None:
        self.port, self.ids, self.bad = port, [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                t, v1 = (part.split("=", 1)[1] for part in self.headers["X-Facegate-Signature"].split(","))
                expected = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
                event = json.loads(body)
                if not hmac.compare_digest(expected, v1) or self.headers["X-Facegate-Event-Id"] != event["id"]:
                    receiver.bad.append(event["id"])
                time.sleep(delay_s)
                receiver.ids.append(event["id"])
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def events(n: int, start: int = 0) -> list[dict]:
    out = []
    for i in range(start, start + n):
        ts = 1_800_000_000 + i / 100
        out.append(Event(event_id(ts), ts, "recognized", f"camera:c{i % 2}", "default", i, "p_x", "X", 0.99).to_dict())
    return out


def serve(data, port: int) -> subprocess.Popen:
    return serve_process(port, {"FACEGATE_DATA_DIR": str(data)}, ready_path="/healthz")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def in_order_per_source(ids: list[str], sent: list[dict]) -> bool:
    source = {e["id"]: e["source"] for e in sent}
    firsts: dict[str, list[str]] = {}
    for i in dict.fromkeys(ids):  # first arrival of each id
        firsts.setdefault(source[i], []).append(i)
    return all(seq == sorted(seq) for seq in firsts.values())


def test_every_event_arrives_signed_in_order_through_an_outage_a_kill_and_a_restart(tmp_path):
    from facegate.config import load_settings
    from facegate.service.runtime import Runtime

    runtime = Runtime.build(load_settings().with_values(data_dir=str(tmp_path)))  # the database; no server here
    port, receiver_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(tmp_path, port)
    receiver = None
    try:
        created = httpx.post(
            f"{base}/v1/webhooks", json={"url": f"http://127.0.0.1:{receiver_port}/hook", "secret": SECRET}
        )
        assert created.status_code == 201 and created.json()["secret"] == SECRET
        hook = created.json()["id"]
        listed = httpx.get(f"{base}/v1/webhooks").json()
        assert listed[0]["url"].endswith("/hook") and "secret" not in listed[0]

        sent = events(1000)
        runtime.events.log.append(sent[:500])  # the receiver is down: refused, retried
        time.sleep(2)
        waiting = httpx.get(f"{base}/v1/webhooks/{hook}").json()
        assert waiting["pending"] == 1000 - 500 and waiting["last_error"] == "ConnectError", waiting
        receiver = Receiver(receiver_port)
        runtime.events.log.append(sent[500:])
        deadline = time.monotonic() + 90
        while len(set(receiver.ids)) < 600 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop(server, signal.SIGKILL)  # mid-delivery
        server = serve(tmp_path, port)
        deadline = time.monotonic() + 120
        while len(set(receiver.ids)) < 1000 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert set(receiver.ids) == {e["id"] for e in sent} and not receiver.bad
        duplicates = len(receiver.ids) - 1000
        assert duplicates <= 50  # only what was in flight when killed
        assert in_order_per_source(receiver.ids, sent)
        print(f"webhooks: 1000 events, {duplicates} delivered twice after kill -9")

        stop(server)  # a clean restart: nothing twice
        received = len(receiver.ids)
        more = events(200, start=1000)
        runtime.events.log.append(more[:100])
        server = serve(tmp_path, port)
        runtime.events.log.append(more[100:])
        deadline = time.monotonic() + 60
        while len(receiver.ids) < received + 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        assert receiver.ids[received:] == [e["id"] for e in more]  # all, once each, in order
        test = httpx.post(f"{base}/v1/webhooks/{hook}/test").json()["event_id"]
        deadline = time.monotonic() + 10
        while test not in receiver.ids and time.monotonic() < deadline:
            time.sleep(0.05)
        assert test in receiver.ids
    finally:
        stop(server)
        if receiver:
            receiver.stop()
        runtime.close()


def test_a_receiver_that_always_fails_ends_dead_with_its_error(tmp_path, monkeypatch):
    import facegate.service.webhooks as webhooks
    from facegate.config import load_settings
    from facegate.service.runtime import Runtime
    from facegate.service.webhooks import WebhookSender

    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(webhooks, "backoff", lambda attempts: 0.05)
    runtime = Runtime.build(load_settings().with_values(data_dir=str(tmp_path)))

    class Failing(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"x" * 1_000_000)  # a large answer is not read whole

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    hook, _ = runtime.webhooks.create(f"http://127.0.0.1:{httpd.server_address[1]}/")
    with pytest.raises(Exception) as refused:
        runtime.webhooks.create("ftp://example.org/")
    assert getattr(refused.value, "code", "") == "invalid_webhook"
    sender = WebhookSender(runtime.webhooks.store, "test-worker")
    sender.start()
    try:
        runtime.events.log.append(events(2))
        deadline = time.monotonic() + 20
        while runtime.webhooks.store.get(hook.id).dead < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        described = runtime.webhooks.store.get(hook.id)
        assert (described.dead, described.last_error) == (2, "HTTP 500")
        dead = runtime.webhooks.store.deliveries(hook.id, "dead")
        assert all(d["attempts"] == 3 for d in dead)
    finally:
        sender.stop()
        httpd.shutdown()
        runtime.close()
