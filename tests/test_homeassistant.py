"""Home Assistant discovery: payloads, and real publishing through edge.mqtt_link to a real mosquitto."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from conftest import REPO, Broker

from edge.config import MqttConfig, parse_config
from edge.errors import ConfigError
from edge.homeassistant import (
    HomeAssistant,
    availability_will,
    discovery_messages,
    removal_messages,
    state_payload,
    state_topics,
)
from edge.mqtt_link import MqttLink

DEV = "ccq7zk3mxa4b2vwe5h"
ALLOWED_KEYS = {
    "name", "unique_id", "state_topic", "payload_on", "payload_off", "device_class", "icon", "state_class",
    "entity_category", "availability_topic", "payload_available", "payload_not_available", "device", "origin", "qos",
}


def test_discovery_payloads_follow_the_ha_schema() -> None:
    msgs = discovery_messages(DEV, "front-door", "homeassistant", "consentcam/v1")
    assert [t for t, _ in msgs] == [
        f"homeassistant/binary_sensor/{DEV}/motion/config",
        f"homeassistant/binary_sensor/{DEV}/recording/config",
        f"homeassistant/sensor/{DEV}/pending/config",
    ]
    payloads = [json.loads(p) for _, p in msgs]
    assert len({p["unique_id"] for p in payloads}) == 3
    topics = state_topics(DEV, "consentcam/v1")
    for p in payloads:
        assert set(p) <= ALLOWED_KEYS, set(p) - ALLOWED_KEYS  # nothing beyond these, ever
        assert p["state_topic"].startswith(f"consentcam/v1/ha/{DEV}/")
        assert p["availability_topic"] == topics.availability
        assert (p["payload_available"], p["payload_not_available"]) == ("online", "offline")
        assert p["device"]["identifiers"] == [f"consentcam_{DEV}"] and p["device"]["name"] == "front-door"
        assert p["unique_id"].startswith(f"consentcam_{DEV}_")
    motion, recording, pending = payloads
    assert motion["device_class"] == "motion" and motion["state_topic"] == topics.motion
    assert (motion["payload_on"], motion["payload_off"]) == ("ON", "OFF")
    assert recording["state_topic"] == topics.recording
    assert pending["state_topic"] == topics.pending and pending["state_class"] == "measurement"
    # pure: the same inputs give the same bytes (so re-announcing never churns HA's registry)
    assert discovery_messages(DEV, "front-door") == msgs
    assert removal_messages(DEV) == [(t, b"") for t, _ in msgs]


def test_custom_prefix_and_root() -> None:
    msgs = discovery_messages(DEV, "cam", "ha/disc", "home/cc")
    assert msgs[0][0] == f"ha/disc/binary_sensor/{DEV}/motion/config"
    assert json.loads(msgs[0][1])["state_topic"] == f"home/cc/ha/{DEV}/motion"


@pytest.mark.parametrize("prefix", ["", "home/#", "home/+/x", "/lead", "trail/", "sp ace"])
def test_bad_discovery_prefix_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError, match=r"home_assistant\.discovery_prefix: got"):
        discovery_messages(DEV, "cam", prefix)


def test_bad_device_id_is_refused() -> None:
    with pytest.raises(ValueError, match="node id"):
        discovery_messages("a/b", "cam")


def test_state_payloads_carry_only_booleans_and_counts() -> None:
    assert state_payload(True) == b"ON" and state_payload(False) == b"OFF"
    assert state_payload(0) == b"0" and state_payload(17) == b"17"
    for bad in (-1, "3", 2.5, None, {"id": "req"}):
        with pytest.raises(ValueError):
            state_payload(bad)  # type: ignore[arg-type]


def test_from_config_is_off_by_default() -> None:
    link = object()  # never used when disabled
    assert HomeAssistant.from_config(link, parse_config(""), DEV) is None  # type: ignore[arg-type]
    only_ha = parse_config("home_assistant: {enabled: true}")
    assert HomeAssistant.from_config(link, only_ha, DEV) is None  # type: ignore[arg-type]
    on = parse_config("device: {name: porch}\nmqtt: {enabled: true, topic_root: home/cc}\n"
                      "home_assistant: {enabled: true, discovery_prefix: hass}")
    ha = HomeAssistant.from_config(link, on, DEV)  # type: ignore[arg-type]
    assert ha is not None and ha.topics.motion == f"home/cc/ha/{DEV}/motion"
    assert ha.discovery[0][0] == f"hass/binary_sensor/{DEV}/motion/config"
    assert json.loads(ha.discovery[0][1])["device"]["name"] == "porch"


def test_last_will_is_retained_offline() -> None:
    will = availability_will(DEV)
    assert (will.topic, will.payload, will.retain, will.qos) == (
        f"consentcam/v1/ha/{DEV}/availability", b"offline", True, 1)


# --- real broker ------------------------------------------------------------------------------------


class Sub:
    def __init__(self, broker: Broker, *topics: str) -> None:
        self.q: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"sub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
        self.c.on_message = lambda c, u, m: self.q.put((m.topic, bytes(m.payload), bool(m.retain)))
        subscribed: queue.Queue[int] = queue.Queue()
        self.c.on_subscribe = lambda *a: subscribed.put(1)
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        for t in topics:
            self.c.subscribe(t, qos=1)
            subscribed.get(timeout=10)

    def collect(self, n: int, timeout: float = 10.0) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n and time.monotonic() < deadline:
            try:
                out.append(self.q.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
        return out

    def quiet(self, within: float = 0.7) -> bool:
        try:
            self.q.get(timeout=within)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _wait(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def link(broker: Broker) -> Iterator[MqttLink]:
    cfg = MqttConfig(enabled=True, host=broker.host, port=broker.port, tls=None)
    lk = MqttLink(cfg, DEV, will=availability_will(DEV), min_backoff=0.1, max_backoff=0.5)
    lk.start()
    assert lk.wait_connected(10)
    try:
        yield lk
    finally:
        lk.stop()


def test_real_publish_retains_only_discovery_and_availability(broker: Broker, link: MqttLink) -> None:
    ha = HomeAssistant(link, DEV, "front-door")
    link.add_on_connect(ha.announce)
    ha.start()
    try:
        ha.announce()
        ha.set_motion(True)
        ha.set_pending(2)
        assert _wait(lambda: ha.published >= 6), (ha.published, ha.failures)
        # A subscriber arriving later sees exactly the retained messages: 3 configs + "online", no states.
        late = Sub(broker, "homeassistant/#", "consentcam/v1/ha/#")
        try:
            got = late.collect(4)
            assert sorted(t for t, _, _ in got) == sorted(
                [t for t, _ in discovery_messages(DEV, "front-door")] + [f"consentcam/v1/ha/{DEV}/availability"])
            assert all(retained for _, _, retained in got)
            assert dict((t, p) for t, p, _ in got)[f"consentcam/v1/ha/{DEV}/availability"] == b"online"
            assert late.quiet(), "states must not be retained"
            # Live states arrive, not retained; an unchanged value is not sent again.
            ha.set_recording(True)
            assert late.collect(1) == [(f"consentcam/v1/ha/{DEV}/recording", b"ON", False)]
            ha.set_motion(True)
            assert late.quiet()
            ha.set_motion(False)
            ha.set_pending(3)
            assert sorted(late.collect(2)) == [
                (f"consentcam/v1/ha/{DEV}/motion", b"OFF", False),
                (f"consentcam/v1/ha/{DEV}/pending", b"3", False),
            ]
            ha.stop()
            assert late.collect(1) == [(f"consentcam/v1/ha/{DEV}/availability", b"offline", False)]
        finally:
            late.close()
    finally:
        ha.stop()


def test_broker_down_never_blocks_the_caller(broker: Broker, link: MqttLink) -> None:
    ha = HomeAssistant(link, DEV, "front-door", publish_timeout=0.5)
    ha.start()
    try:
        broker.stop()
        assert _wait(lambda: not link.connected, 10)
        t0 = time.monotonic()
        for i in range(200):
            ha.set_pending(i)
            ha.set_motion(i % 2 == 0)
        assert time.monotonic() - t0 < 1.0  # setters only record the latest value
        broker.start()
        assert link.wait_connected(15)
        ha.announce()  # what link.add_on_connect(ha.announce) does after a reconnection
        sub = Sub(broker, f"consentcam/v1/ha/{DEV}/availability")
        try:
            assert sub.collect(1)[0][1] == b"online"
        finally:
            sub.close()
    finally:
        ha.stop()


def test_last_will_publishes_offline_when_the_daemon_dies(broker: Broker, tmp_path: object) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        from edge.config import MqttConfig, parse_config
        from edge.homeassistant import HomeAssistant, availability_will
        from edge.mqtt_link import MqttLink
        link = MqttLink(MqttConfig(enabled=True, host="{broker.host}", port={broker.port}, tls=None),
                        "{DEV}", will=availability_will("{DEV}"))
        link.start()
        assert link.wait_connected(10)
        ha = HomeAssistant(link, "{DEV}", "cam")
        ha.start(); ha.announce()
        deadline = time.monotonic() + 10
        while ha.published < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        print("ready", flush=True)
        time.sleep(60)
    """)
    sub = Sub(broker, f"consentcam/v1/ha/{DEV}/availability")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert sub.collect(1)[0][1] == b"online"
        proc.kill()  # no clean disconnect: the broker must send the will
        proc.wait(10)
        assert sub.collect(1, timeout=10) == [(f"consentcam/v1/ha/{DEV}/availability", b"offline", False)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        sub.close()
