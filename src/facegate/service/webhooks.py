"""Webhooks: signed event deliveries from the durable outbox, retried with backoff, dead after too many.

Each request is a POST of the event as JSON with ``X-Facegate-Event-Id`` (the same id in the log,
the live feed and every retry: receivers deduplicate by it) and ``X-Facegate-Signature:
t=<unix time>,v1=<hex>``, where ``hex`` is HMAC-SHA256 with the webhook's secret over
``"<t>.<body>"``. To verify (Python)::

    t, v1 = (part.split("=", 1)[1] for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, v1) and abs(time.time() - int(t)) < 300

A 2xx answer is a delivery; anything else (an error status, a timeout, a refused connection, a
redirect that is not followed) is tried again after 1, 2, 4 … s (at most 10 minutes, with
jitter) and the delivery is ``dead`` after ``MAX_ATTEMPTS``, its last error visible in the API.
A webhook's deliveries go out one at a time in event order; one sender thread per webhook, so a
slow receiver delays only itself.

URLs are ``http``/``https`` with a host; ``events.webhook_allowed_hosts`` (``FACEGATE_WEBHOOK_ALLOWED_HOSTS``)
restricts the hosts (see :class:`HostPolicy`), checked when a webhook is created or changed and again
before each request. A 307/308 redirect is followed (at most ``MAX_REDIRECTS``) only to the same host;
other redirects, and every redirect to another host, are failures. URLs are shown with their
credentials masked (:func:`shown_url`).

The sender wakes when this process writes deliveries (the event log tells it after each write) and
when a webhook's line of deliveries ends with more waiting; it also wakes for its own retries when they
are due. Polling the outbox (every ``POLL_S``, only while an enabled webhook exists) is the fallback
for deliveries written by other processes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

from facegate.core.errors import FacegateError
from facegate.core.urls import redact_url
from facegate.events.types import Event, event_id
from facegate.store.records import Delivery, Webhook
from facegate.store.webhooks import BATCH, WebhookStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
TIMEOUT_S = 5.0
MAX_BACKOFF_S = 600.0
MAX_ANSWER_BYTES = 64 * 1024  # what is read of a receiver's answer
POLL_S = 1.0  # the fallback: deliveries written by other processes (this one's wake the sender at once)
HOOKS_CHECK_S = 5.0  # how often a sender with no webhook looks whether one was added (another process)
MAX_REDIRECTS = 3  # 307/308 to the same host
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


def shown_url(url: str) -> str:
    """The URL as facegate shows it: a password, a user name alone (often a token) and secret query
    parameters masked as ``***``."""
    shown = redact_url(url)
    try:
        parts = urlsplit(shown)
    except ValueError:
        return "***"
    userinfo, at, host = parts.netloc.rpartition("@")
    if at and ":" not in userinfo:
        shown = urlunsplit(parts._replace(netloc=f"***@{host}"))
    return shown


@dataclass(frozen=True)
class HostPolicy:
    """The hosts webhook URLs may name (``events.webhook_allowed_hosts``; empty: any host).

    An entry is a host name (``hooks.example.org``, any letter case), ``*.example.org`` (its
    subdomains, not the name itself), an IP address (``192.0.2.7``, ``::1``) or network
    (``10.0.0.0/8``: IP literals in it). Names are compared as written in the URL, never resolved.
    """

    allowed: tuple[str, ...] = ()

    def allows(self, host: str) -> bool:
        if not self.allowed:
            return True
        host = host.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        for entry in (e.strip().lower().rstrip(".") for e in self.allowed):
            if not entry:
                continue
            if address is not None:
                try:
                    if address in ipaddress.ip_network(entry.strip("[]"), strict=False):
                        return True
                except ValueError:
                    pass
            elif entry.startswith("*."):
                if host.endswith(entry[1:]):
                    return True
            elif host == entry:
                return True
        return False


def check_url(url: str, policy: HostPolicy = HostPolicy()) -> str:
    """``url`` when it is a webhook URL this install may call; else a :class:`WebhookError`
    (``invalid_webhook_url``, ``webhook_host_not_allowed``) that shows it with credentials masked."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise WebhookError("a webhook URL has no spaces or control characters", code="invalid_webhook_url")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not 0-65535
    except ValueError:
        raise WebhookError("the webhook URL cannot be parsed (host or port)", code="invalid_webhook_url") from None
    if parts.scheme not in ("http", "https") or not host:
        raise WebhookError(f"a webhook URL is http(s)://host/…; got {shown_url(url)}", code="invalid_webhook_url")
    if not policy.allows(host):
        raise WebhookError(
            f"webhooks may call only {', '.join(policy.allowed)} (events.webhook_allowed_hosts); got {host}",
            code="webhook_host_not_allowed",
        )
    return url


def same_host(url: str, target: str) -> bool:
    """Whether a redirect from ``url`` to ``target`` stays on the same host (and port; http may become https)."""
    a, b = urlsplit(url), urlsplit(target)
    if b.scheme not in ("http", "https") or (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    return (a.scheme == "http" and b.scheme == "https") or (a.scheme, a.port) == (b.scheme, b.port)


class Webhooks:
    """Webhooks as use cases; ``allowed_hosts``: the hosts their URLs may name (empty: any, see :class:`HostPolicy`)."""

    def __init__(self, store: WebhookStore, allowed_hosts: tuple[str, ...] = ()) -> None:
        self.store, self.policy = store, HostPolicy(tuple(allowed_hosts))
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
        created = self.store.create(check_url(url, self.policy), secret, kinds, sources, collections, enabled)
        self._changed()
        return created, secret

    def update(self, webhook_id: str, **changes) -> Webhook:
        if changes.get("url") is not None:
            check_url(changes["url"], self.policy)
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

    def __init__(self, store: WebhookStore, worker: str, threads: int = 8, policy: HostPolicy = HostPolicy()) -> None:
        import httpx

        self.store, self.worker, self.policy = store, worker, policy
        self._client = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="facegate-webhook")
        self._busy: set[str] = set()  # webhooks whose line is being sent
        self._missed: set[str] = set()  # busy webhooks a claim skipped: their line's end wakes the loop
        self._next_retry = float("inf")  # Unix time of the earliest retry this sender scheduled
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
        """New deliveries were written (by this process), or a webhook changed: look now."""
        self._wakeup.set()

    def _wait_s(self, hooks: int) -> float:
        """How long the loop sleeps unless woken: until the next retry, at most the fallback poll."""
        if not hooks:
            return HOOKS_CHECK_S
        with self._lock:
            retry = self._next_retry
        return max(0.0, min(POLL_S, retry - time.time()))

    def _run(self) -> None:
        hooks, checked, changes = 0, float("-inf"), -1
        while not self._stop.is_set():
            self._wakeup.wait(self._wait_s(hooks))
            self._wakeup.clear()
            if self._stop.is_set():
                return
            try:
                if changes != self.store.changes or time.monotonic() - checked > HOOKS_CHECK_S:
                    changes = self.store.changes
                    hooks, checked = self.store.enabled_count(), time.monotonic()
                if not hooks:  # no enabled webhook: no outbox to look at
                    continue
                with self._lock:
                    if self._next_retry <= time.time():
                        self._next_retry = float("inf")  # due now: this claim takes it (a failure sets it again)
                    busy = set(self._busy)
                    self._missed |= busy  # what this wake-up is about for them, they claim when their line ends
                for line in self.store.claim(self.worker, LEASE_S, skip=busy):
                    hook = line[0].webhook_id
                    with self._lock:
                        self._busy.add(hook)
                    self._pool.submit(self._send_line, hook, line)
            except Exception:
                log.warning("webhook outbox poll failed", exc_info=True)

    def _send_line(self, hook: str, line: list[Delivery]) -> None:
        deadline = time.monotonic() + LEASE_S - 2 * TIMEOUT_S  # stop while the lease surely holds
        more = len(line) >= BATCH  # a full line: more may wait behind it
        try:
            for n, delivery in enumerate(line):
                if self._stop.is_set():
                    self.store.release([d.id for d in line[n:]])
                    return
                if time.monotonic() > deadline:
                    self.store.release([d.id for d in line[n:]])
                    more = True
                    return
                if not self._send(delivery):  # its retry is due later (the loop wakes for it)
                    self.store.release([d.id for d in line[n + 1 :]])
                    more = False
                    return
        finally:
            with self._lock:
                self._busy.discard(hook)
                more = more or hook in self._missed
                self._missed.discard(hook)
            if more:  # claim what waited behind this line now rather than at the next poll
                self._wakeup.set()

    def _post(self, delivery: Delivery, body: bytes, headers: dict[str, str]) -> str | None:
        """One delivery's request (following same-host 307/308); None when answered 2xx, else the error."""
        url = delivery.url
        for _ in range(MAX_REDIRECTS + 1):
            host = urlsplit(url).hostname or ""
            if not self.policy.allows(host):
                return "host not allowed (events.webhook_allowed_hosts)"
            with self._client.stream("POST", url, content=body, headers=headers) as answer:
                read = 0
                for chunk in answer.iter_bytes():
                    read += len(chunk)
                    if read >= MAX_ANSWER_BYTES:
                        break
                status, location = answer.status_code, answer.headers.get("location")
            if 200 <= status < 300:
                return None
            if not 300 <= status < 400:
                return f"HTTP {status}"
            target = urljoin(url, location) if location else ""
            if status not in (307, 308) or not target:
                return f"HTTP {status} (redirect not followed)"
            if not same_host(url, target):
                return f"HTTP {status} (redirect to another host not followed)"
            url = target
        return f"more than {MAX_REDIRECTS} redirects"

    def _send(self, delivery: Delivery) -> bool:
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Facegate-Event-Id": delivery.event_id,
            "X-Facegate-Signature": signature(delivery.secret, body, int(time.time())),
            "User-Agent": "facegate-webhook",
        }
        try:
            error = self._post(delivery, body, headers)
        except Exception as exc:  # refused, reset, timed out, TLS…: the name of it, never the URL's secrets
            error = f"{type(exc).__name__}"
        if error is None:
            self.store.delivered(delivery.id, self.worker)
            return True
        attempts = delivery.attempts + 1
        dead = attempts >= MAX_ATTEMPTS
        retry_at = None if dead else time.time() + backoff(attempts)
        self.store.failed(delivery.id, error, retry_at)
        if retry_at is not None:
            with self._lock:
                self._next_retry = min(self._next_retry, retry_at)
            self._wakeup.set()  # the loop sleeps until then (it may have planned a longer sleep)
        log.info("webhook %s: event %s %s (attempt %d)", delivery.webhook_id, delivery.event_id, error, attempts)
        return False
