"""Webhooks against a real receiver on loopback: signed, every event at least once and in order, retried
while the receiver is down, no event lost when facegate is killed, none twice after a clean restart;
bad URLs refused with codes (credentials never echoed), an allow-list of hosts, redirects followed only
to the same host."""

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

from api_server import free_port, running_server, serve_process
from facegate.events.types import Event, event_id

SECRET = "whsec_test_secret_0123456789"


class Receiver:
    """An HTTP server that checks signatures and records event ids in arrival order (port 0: any free one)."""

    def __init__(self, port: int = 0, delay_s: float = 0.0, secret: str = SECRET) -> None:
        self.ids, self.bad = [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                t, v1 = (part.split("=", 1)[1] for part in self.headers["X-Facegate-Signature"].split(","))
                expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
                event = json.loads(body)
                if not hmac.compare_digest(expected, v1) or self.headers["X-Facegate-Event-Id"] != event["id"]:
                    receiver.bad.append(event["id"])
                time.sleep(delay_s)
                receiver.ids.append(event["id"])
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
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
    assert getattr(refused.value, "code", "") == "invalid_webhook_url"
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


class Redirecting:
    """An HTTP server answering POSTs by ``routes``: path -> (status, Location); other paths 204. Records paths."""

    def __init__(self, routes: dict[str, tuple[int, str]]) -> None:
        self.paths: list[str] = []
        self.authorization: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                server.paths.append(self.path)
                server.authorization.append(self.headers.get("Authorization"))
                status, location = routes.get(self.path, (204, ""))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    return predicate()


def test_bad_webhook_urls_are_refused_with_codes_and_credentials_are_never_echoed(tmp_path):
    from facegate.config import load_settings

    receiver = Redirecting({})
    settings = load_settings().with_values(
        data_dir=str(tmp_path), port=free_port(), webhook_allowed_hosts=("127.0.0.1", "*.example.org", "10.0.0.0/8")
    )
    try:
        with running_server(settings):
            base = f"http://127.0.0.1:{settings.server.port}"
            refused = {
                "ftp://127.0.0.1/hook": "invalid_webhook_url",
                "javascript:alert(1)": "invalid_webhook_url",
                "http:///no-host": "invalid_webhook_url",
                "http://127.0.0.1:99999/hook": "invalid_webhook_url",
                "http://127.0.0.1/a b": "invalid_webhook_url",
                "http://127.0.0.1/\x00": "invalid_webhook_url",
                "http://alice:hunter2@evil.test/hook": "webhook_host_not_allowed",
                "https://example.org/hook": "webhook_host_not_allowed",  # *.example.org: subdomains only
                "http://11.0.0.1/hook": "webhook_host_not_allowed",
                "http://localhost/hook": "webhook_host_not_allowed",
            }
            for url, code in refused.items():
                answer = httpx.post(f"{base}/v1/webhooks", json={"url": url})
                assert (answer.status_code, answer.json()["code"]) == (422, code), (url, answer.text)
                assert "hunter2" not in answer.text
            assert httpx.post(f"{base}/v1/webhooks", json={"url": "http://x.org", "kinds": ["nope"]}).status_code == 422
            assert httpx.get(f"{base}/v1/webhooks").json() == []

            for url in ("https://hooks.example.org/in", "http://10.1.2.3:8080/in"):
                made = httpx.post(f"{base}/v1/webhooks", json={"url": url, "enabled": False})
                assert made.status_code == 201, made.text
                httpx.delete(f"{base}/v1/webhooks/{made.json()['id']}").raise_for_status()

            # credentials in the URL are used (basic auth) and shown masked, a token as user name too
            url = f"http://alice:hunter2@127.0.0.1:{receiver.port}/hook?token=abc123"
            made = httpx.post(f"{base}/v1/webhooks", json={"url": url, "secret": SECRET})
            assert made.status_code == 201, made.text
            hook = made.json()
            assert hook["url"] == f"http://alice:***@127.0.0.1:{receiver.port}/hook?token=***"
            tokened = httpx.post(f"{base}/v1/webhooks", json={"url": f"http://tok_9f8e7d@127.0.0.1:{receiver.port}/"})
            assert tokened.json()["url"] == f"http://***@127.0.0.1:{receiver.port}/"
            httpx.delete(f"{base}/v1/webhooks/{tokened.json()['id']}").raise_for_status()
            listed = httpx.get(f"{base}/v1/webhooks").text
            assert "hunter2" not in listed and "abc123" not in listed and "tok_9f8e7d" not in listed

            # changes are checked the same way; an unknown webhook is 404
            for url, code in (
                ("gopher://127.0.0.1/", "invalid_webhook_url"),
                ("http://a:b@evil.test/", "webhook_host_not_allowed"),
            ):
                answer = httpx.patch(f"{base}/v1/webhooks/{hook['id']}", json={"url": url})
                assert (answer.status_code, answer.json()["code"]) == (422, code), answer.text
                assert ":b@" not in answer.text
            missing = httpx.patch(f"{base}/v1/webhooks/wh_nope", json={"enabled": False})
            assert (missing.status_code, missing.json()["code"]) == (404, "webhook_not_found")
            assert httpx.get(f"{base}/v1/webhooks/{hook['id']}").json()["url"] == hook["url"]  # unchanged

            httpx.post(f"{base}/v1/webhooks/{hook['id']}/test").raise_for_status()
            assert wait_until(lambda: receiver.paths), "the test event never arrived"
            assert receiver.paths[0] == "/hook?token=abc123" and receiver.authorization[0].startswith("Basic ")
    finally:
        receiver.stop()


def test_redirects_are_followed_only_to_the_same_host(tmp_path):
    from facegate.config import load_settings

    other = Redirecting({})  # where a redirect to another host would land: it must stay empty
    routes: dict[str, tuple[int, str]] = {}
    receiver = Redirecting(routes)
    routes |= {
        "/moved": (308, "/new"),  # same host: followed, still a POST with the same body and signature
        "/temporary": (307, f"http://127.0.0.1:{receiver.port}/new2"),
        "/elsewhere": (307, f"http://localhost:{other.port}/stolen"),  # another host: never followed
        "/found": (302, "/new"),  # a POST would become a GET: not followed
        "/loop": (308, "/loop"),
    }
    settings = load_settings().with_values(data_dir=str(tmp_path), port=free_port())
    try:
        with running_server(settings):
            base = f"http://127.0.0.1:{settings.server.port}"
            hooks = {}
            for path in routes:
                made = httpx.post(f"{base}/v1/webhooks", json={"url": f"http://127.0.0.1:{receiver.port}{path}"})
                hooks[path] = made.json()["id"]
                httpx.post(f"{base}/v1/webhooks/{hooks[path]}/test").raise_for_status()

            def described(path: str) -> dict:
                return httpx.get(f"{base}/v1/webhooks/{hooks[path]}").json()

            assert wait_until(lambda: described("/moved")["delivered"] == 1), described("/moved")
            assert wait_until(lambda: described("/temporary")["delivered"] == 1), described("/temporary")
            assert {"/new", "/new2"} <= set(receiver.paths)
            expected = {
                "/elsewhere": "HTTP 307 (redirect to another host not followed)",
                "/found": "HTTP 302 (redirect not followed)",
                "/loop": "more than 3 redirects",
            }
            for path, error in expected.items():
                assert wait_until(lambda p=path: described(p)["last_error"]) == error, described(path)
            assert other.paths == [] and "/stolen" not in receiver.paths
    finally:
        receiver.stop()
        other.stop()


def test_the_allowed_hosts_are_checked_again_before_each_request(tmp_path):
    from facegate.config import load_settings
    from facegate.service.runtime import Runtime
    from facegate.service.webhooks import HostPolicy, WebhookSender

    receiver = Redirecting({})
    runtime = Runtime.build(load_settings().with_values(data_dir=str(tmp_path)))  # no allow-list: created
    hook, _ = runtime.webhooks.create(f"http://127.0.0.1:{receiver.port}/hook")
    sender = WebhookSender(runtime.webhooks.store, "test-worker", policy=HostPolicy(("hooks.example.org",)))
    sender.start()  # a sender of an install that allows other hosts since
    try:
        runtime.events.log.append(events(1))
        sender.wake()
        assert wait_until(lambda: runtime.webhooks.store.get(hook.id).last_error) == (
            "host not allowed (events.webhook_allowed_hosts)"
        )
        assert receiver.paths == []
    finally:
        sender.stop()
        receiver.stop()
        runtime.close()


def test_the_allow_list_setting_reads_from_the_environment():
    from facegate.config import load_settings
    from facegate.service.webhooks import HostPolicy

    settings = load_settings(environ={"FACEGATE_WEBHOOK_ALLOWED_HOSTS": "hooks.example.org, *.lan ,192.168.0.0/16"})
    policy = HostPolicy(settings.events.webhook_allowed_hosts)
    assert policy.allowed == ("hooks.example.org", "*.lan", "192.168.0.0/16")
    allowed = ["hooks.example.org", "HOOKS.Example.org.", "ha.lan", "a.b.lan", "192.168.4.2"]
    refused = ["example.org", "lan", "evil-lan", "hooks.example.org.evil.test", "192.169.0.1", "::1"]
    assert [h for h in allowed if not policy.allows(h)] == []
    assert [h for h in refused if policy.allows(h)] == []
    assert HostPolicy().allows("anything.test")
