"""Home Assistant MQTT discovery: motion, recording, pending-request count and availability. Off by default.

What is published, and nothing else (guarantee 8, "silence by default", is relaxed only this far, and only
when the owner sets ``home_assistant.enabled: true``):

- discovery configs (retained, HA convention) under ``<discovery_prefix>/<component>/<device_id>/<object>/config``
- availability ``online``/``offline`` (retained; ``offline`` is also the MQTT last will)
  at ``<topic_root>/ha/<device_id>/availability``
- states, never retained: ``.../motion`` and ``.../recording`` (``ON``/``OFF``), ``.../pending`` (a count)

No footage, no clip ids, no request ids, requesters or reasons are ever published: the payload builders
below take only booleans and a count. The broker ACL (deploy/mosquitto/consentcam.acl) lets a device
write only under its own id in both trees.

Use from the daemon (publishing happens on this module's own thread, so the frame loop never waits on
the network):

    will = availability_will(device_id, topic_root)          # pass to MqttLink(..., will=will)
    ha = HomeAssistant.from_config(link, config, device_id)  # None when disabled
    link.add_on_connect(ha.announce)                           # discovery + "online" after every connect
    ha.start(); ha.set_motion(True); ha.set_recording(True); ha.set_pending(2)
    ha.stop()                                                  # publishes "offline" on a clean shutdown
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from edge import __version__
from edge.errors import ConfigError, ConsentcamError

if TYPE_CHECKING:
    from edge.config import Config

log = logging.getLogger(__name__)

ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"
_NODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PREFIX_RE = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")


class Publisher(Protocol):
    """What this module needs from edge.mqtt_link.MqttLink (or any MQTT client wrapper)."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                timeout: float = 10.0) -> None: ...


@dataclass(frozen=True)
class HaTopics:
    availability: str
    motion: str
    recording: str
    pending: str


def _check(device_id: str, discovery_prefix: str, topic_root: str) -> None:
    if not _NODE_RE.fullmatch(device_id):
        raise ValueError(f"device id {device_id!r} cannot be a Home Assistant node id")
    if not _PREFIX_RE.fullmatch(discovery_prefix):
        raise ConfigError(
            f"home_assistant.discovery_prefix: got {discovery_prefix!r}, use letters, digits, '_' or '-' "
            "in '/'-separated levels (no wildcards)"
        )
    if not _PREFIX_RE.fullmatch(topic_root.replace(".", "_")):
        raise ConfigError(f"mqtt.topic_root: {topic_root!r} is not a valid topic prefix")


def state_topics(device_id: str, topic_root: str = "consentcam/v1") -> HaTopics:
    base = f"{topic_root}/ha/{device_id}"
    return HaTopics(f"{base}/availability", f"{base}/motion", f"{base}/recording", f"{base}/pending")


def _device_block(device_id: str, name: str) -> dict[str, Any]:
    return {
        "identifiers": [f"consentcam_{device_id}"],
        "name": name,
        "manufacturer": "consentcam",
        "model": "consentcam camera daemon",
        "sw_version": __version__,
    }


def discovery_messages(
    device_id: str,
    name: str,
    discovery_prefix: str = "homeassistant",
    topic_root: str = "consentcam/v1",
) -> list[tuple[str, bytes]]:
    """(topic, JSON payload) of every discovery config. Pure: same inputs, same bytes."""
    _check(device_id, discovery_prefix, topic_root)
    t = state_topics(device_id, topic_root)
    common = {
        "availability_topic": t.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": _device_block(device_id, name),
        "origin": {"name": "consentcam", "sw_version": __version__},
        "qos": 1,
    }
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("binary_sensor", "motion", {
            "name": "Motion", "state_topic": t.motion, "payload_on": ON, "payload_off": OFF,
            "device_class": "motion",
        }),
        ("binary_sensor", "recording", {
            "name": "Recording", "state_topic": t.recording, "payload_on": ON, "payload_off": OFF,
            "device_class": "running", "icon": "mdi:record-rec",
        }),
        ("sensor", "pending", {
            "name": "Pending requests", "state_topic": t.pending, "state_class": "measurement",
            "icon": "mdi:email-alert", "entity_category": "diagnostic",
        }),
    ]
    out = []
    for component, obj, fields in entities:
        payload = {**fields, **common, "unique_id": f"consentcam_{device_id}_{obj}"}
        topic = f"{discovery_prefix}/{component}/{device_id}/{obj}/config"
        out.append((topic, json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()))
    return out


def removal_messages(device_id: str, discovery_prefix: str = "homeassistant",
                     topic_root: str = "consentcam/v1") -> list[tuple[str, bytes]]:
    """Empty retained configs: Home Assistant deletes the entities (for when the owner turns HA off)."""
    return [(topic, b"") for topic, _ in discovery_messages(device_id, "x", discovery_prefix, topic_root)]


def availability_will(device_id: str, topic_root: str = "consentcam/v1") -> Any:
    """The MQTT last will for MqttLink: retained ``offline`` on the availability topic."""
    from edge.mqtt_link import Will  # local import: this module stays usable without paho

    _check(device_id, "homeassistant", topic_root)
    return Will(topic=state_topics(device_id, topic_root).availability, payload=OFFLINE.encode(), retain=True)


def state_payload(value: bool | int) -> bytes:
    """ON/OFF for booleans, a decimal count for the pending sensor. Nothing else can be expressed."""
    if isinstance(value, bool):
        return (ON if value else OFF).encode()
    if not isinstance(value, int) or value < 0:
        raise ValueError("a Home Assistant state is a boolean or a non-negative count")
    return str(value).encode()


class HomeAssistant:
    """Publishes discovery, availability and states through a Publisher, on its own thread.

    The setters only record the latest value and wake the thread, so callers (the frame loop) never
    block; only the newest value of each state is sent (older ones are superseded, never queued).
    """

    def __init__(self, link: Publisher, device_id: str, name: str, discovery_prefix: str = "homeassistant",
                 topic_root: str = "consentcam/v1", *, publish_timeout: float = 5.0) -> None:
        self.link = link
        self.device_id = device_id
        self.discovery = discovery_messages(device_id, name, discovery_prefix, topic_root)
        self.topics = state_topics(device_id, topic_root)
        self.publish_timeout = publish_timeout
        self._cond = threading.Condition()
        self._states: dict[str, bytes] = {}
        self._dirty: set[str] = set()
        self._announce = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self.published = 0  # messages the link accepted (for status output and tests)
        self.failures = 0

    @classmethod
    def from_config(cls, link: Publisher, config: Config, device_id: str) -> HomeAssistant | None:
        """The daemon's entry point: None unless ``home_assistant.enabled`` and MQTT are on."""
        if not (config.home_assistant.enabled and config.mqtt.enabled):
            return None
        return cls(link, device_id, config.device.name, config.home_assistant.discovery_prefix,
                   config.mqtt.topic_root)

    # -- called by the daemon (any thread, never blocks on the network) ----------------------------

    def set_motion(self, on: bool) -> None:
        self._set(self.topics.motion, state_payload(bool(on)))

    def set_recording(self, on: bool) -> None:
        self._set(self.topics.recording, state_payload(bool(on)))

    def set_pending(self, count: int) -> None:
        self._set(self.topics.pending, state_payload(int(count)))

    def announce(self) -> None:
        """Discovery configs + online + all current states; call after every (re)connection."""
        with self._cond:
            self._announce = True
            self._dirty.update(self._states)
            self._cond.notify()

    def start(self) -> None:
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="home-assistant", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Flush, then publish ``offline`` (a clean shutdown sends no last will)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._send(self.topics.availability, OFFLINE.encode(), retain=True)

    # -- internals ---------------------------------------------------------------------------------

    def _set(self, topic: str, payload: bytes) -> None:
        with self._cond:
            if self._states.get(topic) == payload:
                return
            self._states[topic] = payload
            self._dirty.add(topic)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._stop or self._announce or self._dirty):
                    self._cond.wait(30.0)
                announce, self._announce = self._announce, False
                batch = {t: self._states[t] for t in self._dirty}
                self._dirty.clear()
                stopping = self._stop
            if announce:
                ok = all([self._send(topic, payload, retain=True) for topic, payload in self.discovery])
                ok = self._send(self.topics.availability, ONLINE.encode(), retain=True) and ok
                if not ok:  # try again on the next connection (announce is called from on-connect)
                    log.debug("home assistant announce incomplete")
            # A state that fails to send stays the latest value in _states: announce() after the next
            # connection sends it again.
            for topic, payload in batch.items():
                self._send(topic, payload, retain=False)
            if stopping:
                return

    def _send(self, topic: str, payload: bytes, *, retain: bool) -> bool:
        try:
            self.link.publish(topic, payload, qos=1, retain=retain, timeout=self.publish_timeout)
        except ConsentcamError as exc:  # broker down: recording goes on; states resend on reconnect
            self.failures += 1
            log.debug("home assistant publish skipped: %s", exc)
            return False
        self.published += 1
        return True
