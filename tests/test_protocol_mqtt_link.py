"""MqttLink over TLS with certificate checks against a real mosquitto; backoff; bounded publish."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.config import MqttConfig, TlsConfig
from edge.errors import ConfigError
from edge.mqtt_link import LinkError, MqttLink, Will
from tests.conftest import Broker, start_broker

REPO = Path(__file__).resolve().parent.parent
MAKE_CERTS = REPO / "scripts" / "make-certs.sh"
DEVICE = "ccaaaaaaaaaaaaaaaa"


def make_certs(pki: Path, *args: str) -> None:
    res = subprocess.run(["bash", str(MAKE_CERTS), "--dir", str(pki), *args], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr


@dataclass
class Pki:
    good: Path
    rogue: Path
    wrong_name: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    good = tmp_path_factory.mktemp("pki")
    make_certs(good, "ca")
    make_certs(good, "broker", "localhost", "127.0.0.1")
    make_certs(good, "device", DEVICE)
    rogue = tmp_path_factory.mktemp("rogue")
    make_certs(rogue, "ca")
    make_certs(rogue, "device", DEVICE)
    wrong = tmp_path_factory.mktemp("wrongname")
    make_certs(wrong, "ca")
    make_certs(wrong, "broker", "broker.example.net")
    return Pki(good, rogue, wrong)


def tls_broker(server_pki: Path, client_ca: Path) -> Broker:
    """mosquitto started as root drops to user "mosquitto": lay its files out readable for it
    (a world-traversable directory outside pytest's 0700 tree, the key owned by mosquitto)."""
    d = Path(tempfile.mkdtemp(prefix="cc-link-broker-"))
    d.chmod(0o755)
    shutil.copy(client_ca / "ca.crt", d / "ca.crt")
    shutil.copy(server_pki / "broker" / "broker.crt", d / "broker.crt")
    shutil.copy(server_pki / "broker" / "broker.key", d / "broker.key")
    for name in ("ca.crt", "broker.crt"):
        (d / name).chmod(0o644)
    if os.geteuid() == 0:
        mosq = pwd.getpwnam("mosquitto")
        os.chown(d / "broker.key", mosq.pw_uid, mosq.pw_gid)
    conf = "\n".join([
        f"cafile {d / 'ca.crt'}",
        f"certfile {d / 'broker.crt'}",
        f"keyfile {d / 'broker.key'}",
        "require_certificate true",
        "use_identity_as_username true",
    ])
    return start_broker(d / "run", conf)


def link_config(broker: Broker, pki: Path, ca: Path | None = None) -> MqttConfig:
    client = pki / "clients" / DEVICE
    return MqttConfig(enabled=True, host="127.0.0.1", port=broker.port, tls=TlsConfig(
        ca_file=str((ca or pki) / "ca.crt"), cert_file=str(client / "client.crt"), key_file=str(client / "client.key")))


@pytest.fixture
def good_broker(pki: Pki) -> Iterator[Broker]:
    b = tls_broker(pki.good, pki.good)
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(b.config_path.parent.parent, ignore_errors=True)


def test_tls_with_client_certificate_connects_and_round_trips(good_broker: Broker, pki: Pki) -> None:
    link = MqttLink(link_config(good_broker, pki.good), DEVICE, min_backoff=0.1, max_backoff=0.5)
    got: list[tuple[str, bytes]] = []
    link.subscribe("consentcam/v1/device/ccaaaaaaaaaaaaaaaa/request", lambda t, p: got.append((t, p)))
    link.start()
    try:
        assert link.wait_connected(10), link.last_error
        link.publish("consentcam/v1/device/ccaaaaaaaaaaaaaaaa/request", b"hello", timeout=5)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got == [("consentcam/v1/device/ccaaaaaaaaaaaaaaaa/request", b"hello")]
    finally:
        link.stop()
    assert not link.connected and link.state == "stopped"


def test_broker_certificate_from_another_ca_is_refused(good_broker: Broker, pki: Pki) -> None:
    # The device trusts only the rogue CA: the real broker's certificate must not pass.
    link = MqttLink(link_config(good_broker, pki.good, ca=pki.rogue), DEVICE, min_backoff=0.1, max_backoff=0.3)
    link.start()
    try:
        assert not link.wait_connected(2)
        assert "certificate" in link.last_error.lower() or "ssl" in link.last_error.lower(), link.last_error
    finally:
        link.stop()


def test_broker_certificate_for_another_host_name_is_refused(pki: Pki) -> None:
    b = tls_broker(pki.wrong_name, pki.good)
    # Client cert from the good CA (the broker accepts it); the broker's cert names broker.example.net.
    cfg = link_config(b, pki.good, ca=pki.wrong_name)
    link = MqttLink(cfg, DEVICE, min_backoff=0.1, max_backoff=0.3)
    link.start()
    try:
        assert not link.wait_connected(2)
        assert "hostname" in link.last_error.lower() or "certificate" in link.last_error.lower(), link.last_error
    finally:
        link.stop()
        b.stop()
        shutil.rmtree(b.config_path.parent.parent, ignore_errors=True)


def test_client_certificate_from_another_ca_is_refused(good_broker: Broker, pki: Pki) -> None:
    rogue_client = pki.rogue / "clients" / DEVICE
    cfg = MqttConfig(enabled=True, host="127.0.0.1", port=good_broker.port, tls=TlsConfig(
        ca_file=str(pki.good / "ca.crt"), cert_file=str(rogue_client / "client.crt"),
        key_file=str(rogue_client / "client.key")))
    link = MqttLink(cfg, DEVICE, min_backoff=0.1, max_backoff=0.3)
    link.start()
    try:
        assert not link.wait_connected(2)
    finally:
        link.stop()


def test_tls_config_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        MqttLink(MqttConfig(tls=TlsConfig(ca_file=str(tmp_path / "missing.crt"))), DEVICE)
    with pytest.raises(ConfigError, match="required"):
        MqttLink(MqttConfig(tls=TlsConfig()), DEVICE)


def _subscriber(broker: Broker, client_id: str, topic: str,
                on_message: Callable[[mqtt.MQTTMessage], object]) -> mqtt.Client:
    """A plain MQTT v5 client subscribed to topic (SUBACK seen) on the test broker; the caller stops it."""
    ready = threading.Event()
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: on_message(m)
    client.on_subscribe = lambda *a: ready.set()
    client.connect(broker.host, broker.port, 30)
    client.loop_start()
    client.subscribe(topic, qos=1)
    assert ready.wait(5)
    return client


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    link = MqttLink(MqttConfig(), DEVICE, min_backoff=1.0, max_backoff=30.0)
    for attempt in range(12):
        ceiling = min(30.0, 2.0**attempt)
        samples = [link.backoff(attempt) for _ in range(200)]
        assert all(1.0 <= s <= ceiling for s in samples)
        if ceiling > 2:
            assert max(samples) - min(samples) > (ceiling - 1) * 0.3  # jitter spreads the fleet out


def test_publish_refuses_when_disconnected_and_never_retains(broker: Broker) -> None:
    link = MqttLink(MqttConfig(host=broker.host, port=broker.port), DEVICE, min_backoff=0.1, max_backoff=0.3,
                    will=Will("ha/consentcam/availability", b"offline", retain=True))
    with pytest.raises(LinkError, match="not connected"):
        link.publish("a/b", b"x")
    seen: list[tuple[str, bytes, bool]] = []
    watcher = _subscriber(broker, "watcher", "#", lambda m: seen.append((m.topic, bytes(m.payload), bool(m.retain))))
    link.start()
    try:
        assert link.wait_connected(10)
        link.publish("a/b", b"x", timeout=5)
        # Kill the link's socket without DISCONNECT: the broker publishes the last will.
        link._client.socket().close()
        deadline = time.monotonic() + 10
        while not any(t == "ha/consentcam/availability" for t, _p, _r in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("a/b", b"x", False) in seen
        assert any(t == "ha/consentcam/availability" and p == b"offline" for t, p, _r in seen)
        assert link.wait_connected(10)  # and the link came back by itself
    finally:
        link.stop()
        watcher.loop_stop()
        watcher.disconnect()


def test_large_publishes_from_several_threads_keep_one_connection(broker: Broker) -> None:
    """Only the link's loop thread may write the socket: concurrent 512 KiB publishes from three
    threads must neither corrupt the stream (the broker would drop us) nor lose a message."""
    link = MqttLink(MqttConfig(host=broker.host, port=broker.port), DEVICE, min_backoff=0.1, max_backoff=0.3)
    received: list[bytes] = []
    reader = _subscriber(broker, "reader", "big/#", lambda m: received.append(bytes(m.payload[:8])))
    link.start()
    errors: list[Exception] = []

    def sender(n: int) -> None:
        for i in range(20):
            try:
                link.publish(f"big/{n}", f"{n:02d}-{i:04d}|".encode() + os.urandom(512 * 1024), timeout=20)
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

    try:
        assert link.wait_connected(10)
        threads = [threading.Thread(target=sender, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        deadline = time.monotonic() + 30
        while len(received) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not errors, errors[:3]
        assert link.connects == 1, "the broker dropped the link: interleaved socket writes"
        assert sorted(received) == sorted(f"{n:02d}-{i:04d}|".encode() for n in range(3) for i in range(20))
    finally:
        link.stop()
        reader.loop_stop()
        reader.disconnect()


def _read_mqtt_packet(conn: socket.socket) -> bytes:
    """One whole MQTT packet from a raw socket (fixed header, variable-length remaining length, body)."""
    header = conn.recv(1)
    length, shift = 0, 0
    for _ in range(4):
        byte = conn.recv(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        piece = conn.recv(length - len(body))
        assert piece, "client closed mid-packet"
        body += piece
    return header + body


def test_oversized_packet_from_a_hostile_broker_is_refused_before_it_is_buffered() -> None:
    """A broker that ignores our Maximum Packet Size and announces a 100 MB PUBLISH: the link drops the
    connection after the header instead of reading the body into RAM, then reconnects."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(15)
    port = server.getsockname()[1]
    link = MqttLink(MqttConfig(host="127.0.0.1", port=port, max_message_bytes=64 * 1024), DEVICE,
                    min_backoff=0.1, max_backoff=0.3)
    link.start()
    announced = 100_000_000
    sent = 0
    try:
        conn, _ = server.accept()
        conn.settimeout(10)
        assert _read_mqtt_packet(conn)[0] >> 4 == 1  # CONNECT
        conn.sendall(bytes([0x20, 0x03, 0x00, 0x00, 0x00]))  # CONNACK (v5): accepted, no properties
        assert link.wait_connected(10)
        remaining, varint = announced, bytearray()
        while True:
            byte, remaining = remaining & 0x7F, remaining >> 7
            varint.append(byte | (0x80 if remaining else 0))
            if not remaining:
                break
        conn.sendall(bytes([0x30]) + bytes(varint))  # PUBLISH, QoS 0, 100 MB to follow
        junk = bytes(64 * 1024)
        deadline = time.monotonic() + 20
        with contextlib.suppress(OSError):  # reset / broken pipe once the client hung up
            while sent < 50_000_000 and time.monotonic() < deadline:
                sent += conn.send(junk)
        conn.close()
        # Without the guard paho would read all 50 MB; with it, only what socket buffers absorbed.
        assert sent < 20_000_000, f"the client kept reading: {sent} bytes accepted"
        deadline = time.monotonic() + 10
        while "over the" not in link.last_error and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "over the 66560-byte limit" in link.last_error and str(announced) in link.last_error
        again, _ = server.accept()  # and the link reconnects by itself
        again.close()
    finally:
        link.stop()
        server.close()


def test_wait_subscribed_means_messages_arrive(broker: Broker) -> None:
    """After wait_subscribed() the broker has acknowledged the topics: a message published at once arrives."""
    got: list[bytes] = []
    link = MqttLink(MqttConfig(host=broker.host, port=broker.port), DEVICE, min_backoff=0.1, max_backoff=0.3)
    for n in range(5):
        link.subscribe(f"dev/topic{n}", lambda _t, payload: got.append(payload))
    link.start()
    sender = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="sender",
                         protocol=mqtt.MQTTv5)
    try:
        assert link.wait_subscribed(30), link.last_error
        sender.connect(broker.host, broker.port, 30)
        sender.loop_start()
        sender.publish("dev/topic4", b"first", qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got == [b"first"]
        link.subscribe("dev/late", lambda _t, payload: got.append(payload))  # from another thread, while connected
        assert link.wait_subscribed(30)
        sender.publish("dev/late", b"late", qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got == [b"first", b"late"]
    finally:
        sender.loop_stop()
        sender.disconnect()
        link.stop()
