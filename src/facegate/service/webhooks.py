"""Webhooks: signed event deliveries from the durable outbox, retried with backoff, dead after too many.

Each request is a POST of the event as JSON with ``X-Facegate-Event-Id`` (the same id in the log,
the live feed and every retry: receivers deduplicate by it) and ``X-Facegate-Signature:
t=<unix time>,v1=<hex>``, where ``hex`` is HMAC-SHA256 with the webhook's secret over
``"<t>.<body>"``. To verify (Python)::

    t, v1 = (part.split("=", 1)[1] for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, v1) and abs(time.time() - int(t)) < 300

A 2xx answer is a delivery; anything else (an error status, a timeout, a refused connection, a
redirect: redirects are not followed) is tried again after 1, 2, 4 … s (at most 10 minutes, with
jitter) and the delivery is ``dead`` after ``MAX_ATTEMPTS``, its last error visible in the API.
A webhook's deliveries go out one at a time in event order; one sender thread per webhook, so a
slow receiver delays only itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from facegate.core.errors import FacegateError
from facegate.core.urls import redact_url
from facegate.events.types import Event, event_id
from facegate.store.records import Delivery, Webhook
from facegate.store.webhooks import WebhookStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
TIMEOUT_S = 5.0
MAX_BACKOFF_S = 600.0
MAX_ANSWER_BYTES = 64 * 1024  # what is read of a receiver's answer
POLL_S = 0.2
HOOKS_CHECK_S = 5.0  # how often a sender with no webhook looks whether one was added (another process)
LEASE_S = 15.0  # a batch's lease: a sender stops its line before it ends; a killed sender's batch is free after it
KINDS = ("recognized", "unknown", "left", "camera_down", "camera_up")


class WebhookError(FacegateError):
    code = "invalid_webhook"


def signature(secret: str, body: bytes, ts: int) -> str:
    """The ``X-Facegate-Signature`` header value of a body sent at ``ts``."""
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failures: 1, 2, 4 … 600, times 0.5-1 (jitter)."""
    return min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1)) * (0.5 + random.random() / 2)


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"a webhook URL is http(s)://host/…; got {redact_url(url)}")
    return url


class Webhooks:
    """Webhooks as use cases."""

    def __init__(self, store: WebhookStore) -> None:
        self.store = store
        self.changed: list[Callable[[], None]] = []  # told when a webhook is added or changed (the sender)

    def _changed(self) -> None:
        for listener in self.changed:
            listener()

    def create(self, url: str, secret: str | None = None, kinds=(), sources=(), collections=(), enabled=True):
        """A new webhook and its secret (generated when not given; shown only here)."""
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise WebhookError(f"kinds must be among {', '.join(KINDS)}; got {', '.join(unknown)}")
        secret = secret or "whsec_" + secrets.token_urlsafe(24)
        created = self.store.create(check_url(url), secret, kinds, sources, collections, enabled)
        self._changed()
        return created, secret

    def update(self, webhook_id: str, **changes) -> Webhook:
        if changes.get("url") is not None:
            check_url(changes["url"])
        updated = self.store.update(webhook_id, **changes)
        self._changed()
        return updated

    def test(self, webhook_id: str) -> str:
        """Queue a test event for this webhook only; returns its id."""
        now = time.time()
        event = Event(event_id(now), now, "recognized", "test", detail="a test event from facegate").to_dict()
        self.store.add_delivery(webhook_id, event)
        self._changed()
        return event["id"]


class WebhookSender:
    """Delivers the outbox on background threads until :meth:`stop` (which lets in-flight requests finish)."""

    def __init__(self, store: WebhookStore, worker: str, threads: int = 8) -> None:
        import httpx

        self.store, self.worker = store, worker
        self._client = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="facegate-webhook")
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="facegate-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)
        self._client.close()

    def wake(self) -> None:
        """New deliveries were written (by this process): look now rather than at the next poll."""
        self._wakeup.set()

    def _run(self) -> None:
        hooks, checked = 0, float("-inf")
        while not self._stop.is_set():
            woken = self._wakeup.wait(POLL_S)
            self._wakeup.clear()
            if self._stop.is_set():
                return
            try:
                if woken or time.monotonic() - checked > HOOKS_CHECK_S:  # no webhook: no outbox to poll
                    hooks, checked = self.store.enabled_count(), time.monotonic()
                if not hooks:
                    continue
                for line in self.store.claim(self.worker, LEASE_S):
                    hook = line[0].webhook_id
                    with self._lock:
                        if hook in self._busy:  # still sending its previous batch: this one was re-leased to us
                            continue
                        self._busy.add(hook)
                    self._pool.submit(self._send_line, hook, line)
            except Exception:
                log.warning("webhook outbox poll failed", exc_info=True)

    def _send_line(self, hook: str, line: list[Delivery]) -> None:
        deadline = time.monotonic() + LEASE_S - 2 * TIMEOUT_S  # stop while the lease surely holds
        try:
            for n, delivery in enumerate(line):
                if self._stop.is_set() or time.monotonic() > deadline or not self._send(delivery):
                    self.store.release([d.id for d in line[n + 1 :]])
                    return
        finally:
            with self._lock:
                self._busy.discard(hook)

    def _send(self, delivery: Delivery) -> bool:
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Facegate-Event-Id": delivery.event_id,
            "X-Facegate-Signature": signature(delivery.secret, body, int(time.time())),
            "User-Agent": "facegate-webhook",
        }
        try:
            with self._client.stream("POST", delivery.url, content=body, headers=headers) as answer:
                read = 0
                for chunk in answer.iter_bytes():
                    read += len(chunk)
                    if read >= MAX_ANSWER_BYTES:
                        break
                status = answer.status_code
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except Exception as exc:  # refused, reset, timed out, TLS…: the name of it, never the URL's secrets
            error = f"{type(exc).__name__}"
        if error is None:
            self.store.delivered(delivery.id, self.worker)
            return True
        attempts = delivery.attempts + 1
        dead = attempts >= MAX_ATTEMPTS
        self.store.failed(delivery.id, error, None if dead else time.time() + backoff(attempts))
        log.info("webhook %s: event %s %s (attempt %d)", delivery.webhook_id, delivery.event_id, error, attempts)
        return False
