"""MQTT and Home Assistant: events, presence and availability on a broker (``facegate[mqtt]``: paho-mqtt).

Topics (``prefix`` ``facegate`` by default; a source ``camera:<id>`` is ``camera_<id>`` in topics):

- ``<prefix>/status``: ``online``, retained; the broker publishes ``offline`` (the Last Will) when
  facegate dies, and facegate does on a clean stop;
- ``<prefix>/<source>/<kind>``: every event as JSON (``recognized``, ``unknown``, ``left``,
  ``camera_down``, ``camera_up``);
- ``<prefix>/<source>/last``: the last person recognised there, retained;
- ``<prefix>/person/<person id>/presence``: ``ON`` when recognised, ``OFF`` when they left, retained;
- Home Assistant discovery under ``<discovery>`` (``homeassistant``): a device per camera with a
  "last person" sensor, and a presence binary sensor per enrolled person; sent at connection and
  again whenever ``<discovery>/status`` says ``online`` (Home Assistant restarted).

The sink reads its own bounded subscription of the event bus on its own thread; paho's network
thread reconnects with a backoff (1 s to 30 s). Recognition never waits for the broker.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from facegate.core.errors import ConfigError
from facegate.events.bus import EventBus, Subscription
from facegate.events.types import Event

log = logging.getLogger(__name__)

QUEUE = 10_000
Discovery = Callable[[], tuple[list[tuple[str, str]], list[tuple[str, str]]]]  # (cameras, people): (id, name)


@dataclass(frozen=True)
class MqttConfig:
    url: str  # mqtt://user:password@host:1883 (mqtts:// for TLS)
    prefix: str = "facegate"
    discovery_prefix: str = "homeassistant"
    keepalive_s: int = 30
    client_id: str = "facegate"

    def endpoint(self) -> tuple[str, int, str | None, str | None, bool]:
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"mqtt_url must be mqtt://[user:password@]host[:port]; got {parts.scheme}://…")
        tls = parts.scheme == "mqtts"
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return parts.hostname, parts.port or (8883 if tls else 1883), user, password, tls


def topic_part(text: str) -> str:
    """A source or id made safe for a topic level (no ``/``, ``+``, ``#``, ``:``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


class MqttSink:
    """Publishes the bus's events to an MQTT broker until :meth:`stop`."""

    def __init__(self, bus: EventBus, config: MqttConfig, discovery: Discovery) -> None:
        import paho.mqtt.client as mqtt

        self.bus, self.config, self.discovery = bus, config, discovery
        host, port, user, password, tls = config.endpoint()
        self._endpoint = (host, port)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id)
        if user:
            self.client.username_pw_set(user, password)
        if tls:
            self.client.tls_set()
        self.client.will_set(self.status_topic, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)
        # events go out at QoS 1: paho keeps them while it (re)connects instead of dropping them, at most
        # QUEUE of them (past that a publish is refused and counted lost: memory stays bounded)
        self.client.max_queued_messages_set(QUEUE)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.subscription: Subscription | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.published = 0

    @property
    def status_topic(self) -> str:
        return f"{self.config.prefix}/status"

    def start(self) -> None:
        self.subscription = self.bus.subscribe("mqtt", maxsize=QUEUE)
        self.client.connect_async(*self._endpoint, keepalive=self.config.keepalive_s)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="facegate-mqtt", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.subscription is not None:
            self.bus.unsubscribe(self.subscription)
        if self._thread is not None:
            self._thread.join(timeout=5)
        info = self.client.publish(self.status_topic, "offline", qos=1, retain=True)
        info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()

    # ----------------------------------------------------------------- broker callbacks (paho's thread)

    def _on_connect(self, client, userdata, flags, reason, properties=None) -> None:
        if reason.is_failure:
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        client.publish(self.status_topic, "online", qos=1, retain=True)
        client.subscribe(f"{self.config.discovery_prefix}/status")
        self.announce()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == f"{self.config.discovery_prefix}/status" and message.payload == b"online":
            self.announce()  # Home Assistant restarted: it needs the configs again

    def announce(self) -> None:
        """Home Assistant discovery: a device per camera (last person), a presence sensor per person."""
        try:
            cameras, people = self.discovery()
        except Exception:
            log.warning("MQTT discovery could not list cameras and people", exc_info=True)
            return
        p, d = self.config.prefix, self.config.discovery_prefix
        availability = {"availability_topic": self.status_topic}
        for camera_id, name in cameras:
            source = topic_part(f"camera:{camera_id}")
            config = {
                "name": "Last person",
                "unique_id": f"facegate_{source}_last_person",
                "state_topic": f"{p}/{source}/last",
                "value_template": "{{ value_json.name }}",
                "json_attributes_topic": f"{p}/{source}/last",
                "icon": "mdi:face-recognition",
                "device": {
                    "identifiers": [f"facegate_{source}"],
                    "name": f"facegate {name}",
                    "manufacturer": "facegate",
                },
                **availability,
            }
            self.client.publish(f"{d}/sensor/facegate_{source}/last_person/config", json.dumps(config), retain=True)
        for person_id, name in people:
            pid = topic_part(person_id)
            config = {
                "name": f"{name} present",
                "unique_id": f"facegate_{pid}_presence",
                "state_topic": f"{p}/person/{pid}/presence",
                "device_class": "presence",
                "payload_on": "ON",
                "payload_off": "OFF",
                **availability,
            }
            self.client.publish(f"{d}/binary_sensor/facegate_{pid}/presence/config", json.dumps(config), retain=True)

    # ----------------------------------------------------------------- events (this sink's thread)

    def _run(self) -> None:
        while not self._stop.is_set():
            event = self.subscription.get(timeout=0.2)
            if event is not None:
                try:
                    self.publish(event)
                except Exception:
                    log.warning("MQTT publish failed", exc_info=True)

    def publish(self, event: Event) -> None:
        p, source = self.config.prefix, topic_part(event.source)
        body = json.dumps(event.to_dict(), separators=(",", ":"))
        self.client.publish(f"{p}/{source}/{event.kind}", body, qos=1)
        if event.kind == "recognized" and event.person_id:
            self.client.publish(f"{p}/{source}/last", body, qos=1, retain=True)
            self.client.publish(f"{p}/person/{topic_part(event.person_id)}/presence", "ON", qos=1, retain=True)
        elif event.kind == "left" and event.person_id:
            self.client.publish(f"{p}/person/{topic_part(event.person_id)}/presence", "OFF", qos=1, retain=True)
        self.published += 1
