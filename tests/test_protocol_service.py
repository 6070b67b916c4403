"""ConsentService + MqttLink against a real mosquitto: intake, floods, outages, silence."""

from __future__ import annotations

import dataclasses
import gc
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import clock, keys
from edge.audit import AuditLog, read_entries
from edge.config import config_from_dict
from edge.mqtt_link import LinkError, MqttLink
from edge.protocol import topics
from edge.protocol.request import encode_request
from edge.protocol.service import ConsentService
from edge.protocol.trust import TrustStore
from edge.state import StateDir
from tests.conftest import Broker
from tests.protocol_support import HOME, area, body, entry

ROOT = "consentcam/v1"


def wait_until(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Client:
    """A plain test-side MQTT v5 client (the requester or an observer)."""

    def __init__(self, broker: Broker, name: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=name,
                             protocol=mqtt.MQTTv5)
        self.c.on_message = self._on_message
        self.c.connect(broker.host, broker.port, 30)
        self.c.loop_start()

    def _on_message(self, client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def subscribe_all(self) -> None:
        got = threading.Event()
        self.c.on_subscribe = lambda *a: got.set()
        self.c.subscribe("#", qos=1)
        assert got.wait(5)

    def publish(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def device_config(broker: Broker, **release):  # type: ignore[no-untyped-def]
    return config_from_dict({
        "device": {"location": {"lat": HOME.lat, "lon": HOME.lon}},
        "mqtt": {"enabled": True, "host": broker.host, "port": broker.port, "area_precision": 4},
        "clock": {"mode": "synchronized"},
        "requests": {"max_pending": 1000},
        "release": release,
    })


class Device:
    def __init__(self, state_path: Path, broker: Broker, requester: Ed25519PrivateKey, **release) -> None:  # type: ignore[no-untyped-def]
        self.state = StateDir(state_path)
        store = TrustStore([entry(requester)], self.state.trust_store)
        store.save()
        self.info = keys.load_device_info(self.state)
        self.config = device_config(broker, **release)
        self.audit = AuditLog(self.state.audit, keys.load_device_key(self.state))
        self.link = MqttLink(self.config.mqtt, self.info.device_id, min_backoff=0.1, max_backoff=0.5)
        self.service = ConsentService(self.config, self.state, self.link, self.audit, self.info.device_id,
                                      publish_outbox=False)
        self.service.start()
        self.link.start()
        assert self.link.wait_subscribed(30), self.link.last_error  # SUBACKs in: nothing published is lost

    def pending(self) -> list[str]:
        return [p.id for p in self.service.verifier.pending.list()]

    def stop(self) -> None:
        self.service.stop()
        self.link.stop()

    def audit_kinds(self) -> list[str]:
        return [e["kind"] for e in read_entries(self.state.audit)]


@pytest.fixture
def requester() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def device(state_dir: Path, broker: Broker, requester: Ed25519PrivateKey) -> Iterator[Device]:
    d = Device(state_dir, broker, requester)
    try:
        yield d
    finally:
        d.stop()


def live_body(device_id: str, **over):  # type: ignore[no-untyped-def]
    now = clock.now()
    base = dict(issued=clock.iso(now - 5), expires=clock.iso(now + 3600), audience=device_id,
                window_start=clock.iso(now - 7200), window_end=clock.iso(now - 3600))
    base.update(over)
    return body(**base)


def test_valid_request_over_the_broker_reaches_the_pending_queue(device: Device, broker: Broker,
                                                                 requester: Ed25519PrivateKey) -> None:
    pub = Client(broker, "requester")
    try:
        msg = encode_request(live_body(device.info.device_id), requester)
        pub.publish(topics.device_topic(ROOT, device.info.device_id), msg)
        wait_until(lambda: device.pending() == ["REQ-0000-test"], what="pending request")
        assert "request.accepted" in device.audit_kinds()
    finally:
        pub.close()


def test_area_request_fan_out_one_acceptance(device: Device, broker: Broker, requester: Ed25519PrivateKey) -> None:
    pub = Client(broker, "requester")
    try:
        a = area(radius_m=8000)
        msg = encode_request(live_body(device.info.device_id, id="REQ-area-0001", audience=a), requester)
        area_topics = topics.area_topics(ROOT, a.lat, a.lon, a.radius_m)
        sub_prefix = device.service.subscriptions()[1][:-1]
        reaching = [t for t in area_topics if t.startswith(sub_prefix)]
        assert len(reaching) >= 2  # several copies land in the device's coarse cell
        for t in area_topics:
            pub.publish(t, msg)
        wait_until(lambda: device.service.stats.accepted + device.service.stats.duplicates == len(reaching),
                   what="all copies processed")
        assert device.pending() == ["REQ-area-0001"]
        assert device.service.stats.duplicates == len(reaching) - 1 and device.service.stats.refused == 0
    finally:
        pub.close()


def test_flood_does_not_block_or_grow_memory(device: Device, broker: Broker, requester: Ed25519PrivateKey) -> None:
    pub = Client(broker, "flooder")
    topic = topics.device_topic(ROOT, device.info.device_id)
    proc = psutil.Process()
    gc.collect()
    rss_before = proc.memory_info().rss
    max_depth = 0
    try:
        n = 5000
        infos = [pub.c.publish(topic, b"CCRQ\x01" + i.to_bytes(4, "big") * 50, qos=0) for i in range(n)]
        for info in infos[-10:]:
            info.wait_for_publish(10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            max_depth = max(max_depth, device.service.queue_depth())
            s = device.service.stats
            # an empty queue is not enough: the last message taken off it may still be being judged
            if s.received >= n and device.service.queue_depth() == 0 and s.refused + s.dropped == s.received:
                break
            time.sleep(0.01)
        s = device.service.stats
        assert s.received >= n * 0.9  # QoS 0 on loopback: essentially all arrive
        assert max_depth <= 256  # bounded intake queue
        assert s.refused + s.dropped == s.received  # every message either refused or dropped, counted
        # The device still takes a valid request right after the flood.
        pub.publish(topic, encode_request(live_body(device.info.device_id, id="REQ-after-flood"), requester))
        wait_until(lambda: "REQ-after-flood" in device.pending(), what="request after flood")
        gc.collect()
        growth = proc.memory_info().rss - rss_before
        assert growth < 40 * 1024 * 1024, growth
        device.service.verifier.flush_suppressed()
        refused = [e for e in read_entries(device.state.audit) if e["kind"] == "request.refused"]
        assert len(refused) < 200  # audit budget: a flood is summarised, not written 5,000 times
    finally:
        pub.close()


def test_oversized_payload_is_refused_without_queueing_it(device: Device, broker: Broker) -> None:
    pub = Client(broker, "big")
    try:
        pub.publish(topics.device_topic(ROOT, device.info.device_id), b"CCRQ\x01" + b"\x00" * 40_000)
        wait_until(lambda: device.service.stats.oversized == 1, what="oversized refusal")
        entries = [e for e in read_entries(device.state.audit) if e["kind"] == "request.refused"]
        assert entries[-1]["data"]["reason"] == "oversized"
    finally:
        pub.close()


def test_broker_restart_reconnects_and_resubscribes(device: Device, broker: Broker,
                                                    requester: Ed25519PrivateKey) -> None:
    assert device.link.connects == 1
    broker.stop()
    wait_until(lambda: not device.link.connected, timeout=10, what="disconnect noticed")
    with pytest.raises(LinkError):
        device.link.publish("x/y", b"z", timeout=1)
    broker.start()
    wait_until(lambda: device.link.connected, timeout=15, what="reconnect")
    assert device.link.connects == 2
    pub = Client(broker, "requester2")
    try:
        msg = encode_request(live_body(device.info.device_id, id="REQ-after-outage"), requester)
        # Subscriptions are restored by the link asynchronously after CONNACK: retry publishing, bounded.
        deadline = time.monotonic() + 10
        while "REQ-after-outage" not in device.pending() and time.monotonic() < deadline:
            pub.publish(topics.device_topic(ROOT, device.info.device_id), msg)
            time.sleep(0.3)
        assert "REQ-after-outage" in device.pending()
    finally:
        pub.close()


def test_device_is_silent_during_intake(state_dir: Path, broker: Broker, requester: Ed25519PrivateKey) -> None:
    watcher = Client(broker, "watcher")
    watcher.subscribe_all()
    d = Device(state_dir, broker, requester)
    pub = Client(broker, "requester")
    try:
        topic = topics.device_topic(ROOT, d.info.device_id)
        sent = [
            encode_request(live_body(d.info.device_id), requester),  # accepted
            encode_request(live_body(d.info.device_id, id="REQ-expired-1", expires=clock.iso(clock.now() - 1),
                                     issued=clock.iso(clock.now() - 99)), requester),  # refused
            encode_request(live_body(d.info.device_id, id="REQ-unknown-1"), Ed25519PrivateKey.generate()),
            b"garbage",
            encode_request(live_body("ccsomeoneelse"), requester),  # wrong audience
        ]
        for m in sent:
            pub.publish(topic, m)
        wait_until(lambda: d.service.stats.received == len(sent) and d.service.queue_depth() == 0,
                   what="intake done")
        wait_until(lambda: len(watcher.messages) >= len(sent), what="watcher saw the requests")
        time.sleep(0.5)  # room for anything the device might (wrongly) publish in response
        assert sorted(p for _t, p, _r in watcher.messages) == sorted(sent)
        assert all(t == topic and not r for t, _p, r in watcher.messages)
        assert d.pending() == ["REQ-0000-test"]
    finally:
        pub.close()
        d.stop()
        watcher.close()


def test_owner_notification_is_opt_in_and_contentless(state_dir: Path, broker: Broker,
                                                      requester: Ed25519PrivateKey) -> None:
    watcher = Client(broker, "watcher")
    watcher.subscribe_all()
    d = Device(state_dir, broker, requester, notify_owner_topic="home/consentcam/requests")
    pub = Client(broker, "requester")
    try:
        pub.publish(topics.device_topic(ROOT, d.info.device_id), encode_request(live_body(d.info.device_id),
                                                                                requester))
        wait_until(lambda: any(t == "home/consentcam/requests" for t, _p, _r in watcher.messages),
                   what="owner notification")
        notes = [(p, r) for t, p, r in watcher.messages if t == "home/consentcam/requests"]
        assert notes == [(b'{"pending": 1}', False)]
        assert json.loads(notes[0][0]) == {"pending": 1}
    finally:
        pub.close()
        d.stop()
        watcher.close()


def test_reload_picks_up_a_newly_trusted_requester(device: Device, broker: Broker) -> None:
    from tests.conftest import run_cli

    newcomer = Ed25519PrivateKey.generate()
    pub = Client(broker, "newcomer")
    try:
        topic = topics.device_topic(ROOT, device.info.device_id)
        pub.publish(topic, encode_request(live_body(device.info.device_id, id="REQ-new-0001"), newcomer))
        wait_until(lambda: device.service.stats.refusals.get("unknown_signer") == 1, what="unknown signer")
        from edge.signing import encode_public

        res = run_cli("trust", "add", "newcomer", encode_public(newcomer), state=device.state.root)
        assert res.returncode == 0, res.stderr
        device.service.reload()  # what the daemon does on SIGHUP
        pub.publish(topic, encode_request(live_body(device.info.device_id, id="REQ-new-0002"), newcomer))
        wait_until(lambda: "REQ-new-0002" in device.pending(), what="request from the newly trusted key")
    finally:
        pub.close()


def test_reload_applies_new_request_limits(device: Device, broker: Broker, requester: Ed25519PrivateKey) -> None:
    """SIGHUP with a shorter requests.max_window: the same kind of request accepted before is refused after."""
    pub = Client(broker, "requester")
    topic = topics.device_topic(ROOT, device.info.device_id)
    try:
        pub.publish(topic, encode_request(live_body(device.info.device_id, id="REQ-limits-0001"), requester))
        wait_until(lambda: "REQ-limits-0001" in device.pending(), what="the one-hour window accepted")
        stricter = dataclasses.replace(device.config, requests=dataclasses.replace(device.config.requests,
                                                                                   max_window=1800.0))
        device.service.reload(stricter)  # what the daemon does on SIGHUP
        pub.publish(topic, encode_request(live_body(device.info.device_id, id="REQ-limits-0002"), requester))
        wait_until(lambda: device.service.stats.refusals.get("window_too_long") == 1, what="the window refused")
        assert "REQ-limits-0002" not in device.pending()
    finally:
        pub.close()
