"""deploy/mosquitto + scripts/make-certs.sh: a real mosquitto with the shipped config and ACL, real certificates.

The config is used as shipped except for the listener address (a free loopback port) and file paths.
"""

from __future__ import annotations

import os
import pwd
import queue
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from conftest import REPO, Broker, _spawn_mosquitto, free_port, wait_for_port
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

MAKE_CERTS = REPO / "scripts" / "make-certs.sh"
CONF = REPO / "deploy" / "mosquitto" / "consentcam.conf"
ACL = REPO / "deploy" / "mosquitto" / "consentcam.acl"
DEV_A = "ccaaaaaaaaaaaaaaaa"
DEV_B = "ccbbbbbbbbbbbbbbbb"
INV_1 = "police-kent"
INV_2 = "insurer-acme"
HA = "ha-home"
R = "consentcam/v1"


def make_certs(*args: str, pki: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["bash", str(MAKE_CERTS), "--dir", str(pki), *args], capture_output=True, text=True,
                          timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@dataclass
class Network:
    pki: Path
    rogue: Path
    broker: Broker
    acl: Path


def _rewrite_conf(text: str, port: int, d: Path) -> str:
    """The shipped config with the listener on loopback and paths in the temp directory; nothing else."""
    replacements = {
        r"^listener 8883$": f"listener {port} 127.0.0.1",
        r"^cafile .*$": f"cafile {d / 'ca.crt'}",
        r"^certfile .*$": f"certfile {d / 'broker.crt'}",
        r"^keyfile .*$": f"keyfile {d / 'broker.key'}",
        r"^acl_file .*$": f"acl_file {d / 'consentcam.acl'}",
        r"^persistence_location .*$": f"persistence_location {d / 'data'}/",
    }
    for pattern, new in replacements.items():
        text, n = re.subn(pattern, new, text, flags=re.M)
        assert n == 1, f"{pattern} not found exactly once in the shipped config"
    return text


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    pki = tmp_path_factory.mktemp("pki")
    make_certs("ca", pki=pki)
    make_certs("broker", "localhost", "127.0.0.1", pki=pki)
    for dev in (DEV_A, DEV_B):
        make_certs("device", dev, pki=pki)
    acl = tmp_path_factory.mktemp("acl") / "consentcam.acl"
    shutil.copy(ACL, acl)
    for inv in (INV_1, INV_2):
        make_certs("investigator", inv, "--acl", str(acl), pki=pki)
    make_certs("client", HA, pki=pki)
    with acl.open("a") as f:  # as docs/BROKER.md shows for the owner's own broker
        f.write(f"\nuser {HA}\ntopic read homeassistant/#\ntopic read {R}/ha/#\n")
    rogue = tmp_path_factory.mktemp("rogue")
    make_certs("ca", pki=rogue)
    make_certs("device", DEV_A, pki=rogue)

    # mosquitto started as root drops to user "mosquitto": lay the files out as in production
    # (world-traversable directory, key owned by mosquitto and 0600).
    d = Path(tempfile.mkdtemp(prefix="cc-broker-"))
    d.chmod(0o755)
    shutil.copy(pki / "ca.crt", d / "ca.crt")
    shutil.copy(pki / "broker" / "broker.crt", d / "broker.crt")
    shutil.copy(pki / "broker" / "broker.key", d / "broker.key")
    shutil.copy(acl, d / "consentcam.acl")
    (d / "data").mkdir(mode=0o700)
    for name in ("ca.crt", "broker.crt", "consentcam.acl"):
        (d / name).chmod(0o644)
    if os.geteuid() == 0:
        mosq = pwd.getpwnam("mosquitto")
        for p in (d / "broker.key", d / "data"):
            os.chown(p, mosq.pw_uid, mosq.pw_gid)
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(_rewrite_conf(CONF.read_text(), port, d))
    log = d / "mosquitto.log"
    proc = _spawn_mosquitto(conf, log)
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"mosquitto did not start: {log.read_text()[-2000:]}") from None
    broker = Broker("127.0.0.1", port, proc, conf, log)
    try:
        yield Network(pki, rogue, broker, acl)
    finally:
        broker.stop()
        shutil.rmtree(d, ignore_errors=True)


class Peer:
    """A paho-mqtt v5 client over TLS that records what it receives; every wait is bounded."""

    def __init__(self, net: Network, name: str | None, *, pki: Path | None = None, client_id: str | None = None,
                 clean_start: bool = True, expiry: int = 0, connect: bool = True) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack = threading.Event()
        self.connected_ok = False
        self.disconnected = threading.Event()
        self.suback: queue.Queue[list[int]] = queue.Queue()
        self.client_id = client_id or f"{name or 'anon'}-{uuid.uuid4().hex[:8]}"
        c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=mqtt.MQTTv5)
        base = pki or net.pki
        if name is None:
            c.tls_set(ca_certs=str(net.pki / "ca.crt"))
        else:
            cdir = base / "clients" / name
            c.tls_set(ca_certs=str(net.pki / "ca.crt"), certfile=str(cdir / "client.crt"),
                      keyfile=str(cdir / "client.key"))
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *a: self.disconnected.set()
        c.on_connect_fail = lambda *a: self.disconnected.set()
        c.on_message = lambda cl, u, m: self.messages.put((m.topic, bytes(m.payload)))
        c.on_subscribe = lambda cl, u, mid, codes, props: self.suback.put([int(rc.value) for rc in codes])
        self.client = c
        self.net = net
        self.clean_start = clean_start
        self.expiry = expiry
        if connect:
            self.connect()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: mqtt.ReasonCode,
                    properties: object) -> None:
        self.connected_ok = not reason.is_failure
        self.connack.set()

    def connect(self, timeout: float = 10.0) -> bool:
        props = Properties(PacketTypes.CONNECT)
        if self.expiry:
            props.SessionExpiryInterval = self.expiry
        self.connack.clear()
        self.disconnected.clear()
        try:
            self.client.connect(self.net.broker.host, self.net.broker.port, keepalive=30,
                                clean_start=self.clean_start, properties=props)
        except (ssl.SSLError, OSError):
            return False
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (self.connack.is_set() or self.disconnected.is_set()):
            time.sleep(0.02)
        return self.connack.is_set() and self.connected_ok

    def subscribe(self, topic: str) -> list[int]:
        self.client.subscribe(topic, qos=1)
        return self.suback.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def expect(self, timeout: float = 5.0) -> tuple[str, bytes]:
        return self.messages.get(timeout=timeout)

    def nothing(self, within: float = 1.0) -> bool:
        try:
            self.messages.get(timeout=within)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers(net: Network) -> Iterator[dict[str, Peer]]:
    ps = {n: Peer(net, n) for n in (DEV_A, DEV_B, INV_1, INV_2)}
    try:
        for n, p in ps.items():
            assert p.connected_ok, f"{n} could not connect: {net.broker.log_path.read_text()[-1500:]}"
        yield ps
    finally:
        for p in ps.values():
            p.close()


GRANTED_QOS1 = 1


def test_certificates_have_the_right_names_and_modes(net: Network) -> None:
    cert = net.pki / "clients" / DEV_A / "client.crt"
    out = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-ext", "extendedKeyUsage"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    assert f"CN = {DEV_A}" in out and "TLS Web Client Authentication" in out
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(net.pki / "ca.crt"), str(cert)],
                            capture_output=True, text=True, timeout=30)
    assert verify.returncode == 0, verify.stderr
    for key in (net.pki / "ca.key", net.pki / "broker" / "broker.key", net.pki / "clients" / INV_1 / "client.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key
    san = subprocess.run(["openssl", "x509", "-in", str(net.pki / "broker" / "broker.crt"), "-noout", "-ext",
                          "subjectAltName"], capture_output=True, text=True, check=True, timeout=30).stdout
    assert "DNS:localhost" in san and "IP Address:127.0.0.1" in san


def test_make_certs_refuses_bad_names_and_overwrites(net: Network, tmp_path: Path) -> None:
    bad = make_certs("device", "front-door", pki=net.pki, check=False)
    assert bad.returncode == 1 and "not a consentcam device id" in bad.stderr
    lookalike = make_certs("investigator", DEV_B, pki=net.pki, check=False)
    assert lookalike.returncode == 1 and "looks like a device id" in lookalike.stderr
    again = make_certs("ca", pki=net.pki, check=False)
    assert again.returncode == 1 and "not overwriting" in again.stderr
    no_ca = make_certs("device", DEV_A, pki=tmp_path / "empty", check=False)
    assert no_ca.returncode == 1 and "no CA in" in no_ca.stderr
    acl = net.acl.read_text()
    assert acl.count(f"\nuser {INV_1}\n") == 1  # --acl appended exactly one block


def test_device_gets_its_own_requests_only(peers: dict[str, Peer]) -> None:
    a, b, inv = peers[DEV_A], peers[DEV_B], peers[INV_1]
    assert a.subscribe(f"{R}/device/{DEV_A}/request") == [GRANTED_QOS1]
    assert b.subscribe(f"{R}/device/{DEV_B}/request") == [GRANTED_QOS1]
    # Device A trying to listen to B's requests (directly or by wildcard) gets nothing.
    # (mosquitto 2.0 grants the SUBACK and filters on delivery; what counts is what arrives)
    a.subscribe(f"{R}/device/{DEV_B}/request")
    a.subscribe(f"{R}/device/+/request")
    inv.publish(f"{R}/device/{DEV_B}/request", b"for-b")
    assert b.expect() == (f"{R}/device/{DEV_B}/request", b"for-b")
    assert a.nothing()
    inv.publish(f"{R}/device/{DEV_A}/request", b"for-a")
    assert a.expect() == (f"{R}/device/{DEV_A}/request", b"for-a")


def test_devices_cannot_send_requests(peers: dict[str, Peer]) -> None:
    a, b = peers[DEV_A], peers[DEV_B]
    b.subscribe(f"{R}/device/{DEV_B}/request")
    b.subscribe(f"{R}/area/#")
    a.publish(f"{R}/device/{DEV_B}/request", b"forged")
    a.publish(f"{R}/area/g/c/p/v/j/request", b"forged-area")
    assert b.nothing(1.5)
    peers[INV_2].publish(f"{R}/area/g/c/p/v/j/request", b"area")
    assert b.expect() == (f"{R}/area/g/c/p/v/j/request", b"area")


def test_investigator_reads_only_its_own_inbox(peers: dict[str, Peer]) -> None:
    inv1, inv2, dev = peers[INV_1], peers[INV_2], peers[DEV_A]
    assert inv1.subscribe(f"{R}/inbox/{INV_1}/#") == [GRANTED_QOS1]
    assert inv2.subscribe(f"{R}/inbox/{INV_2}/#") == [GRANTED_QOS1]
    inv1.subscribe(f"{R}/inbox/{INV_2}/#")
    inv1.subscribe(f"{R}/inbox/#")
    dev.publish(f"{R}/inbox/{INV_2}/req-00000001", b"release-for-2")
    assert inv2.expect() == (f"{R}/inbox/{INV_2}/req-00000001", b"release-for-2")
    assert inv1.nothing()
    # and no investigator can read a device's requests
    inv1.subscribe(f"{R}/device/{DEV_A}/request")
    peers[INV_2].publish(f"{R}/device/{DEV_A}/request", b"req")
    assert inv1.nothing()


def test_home_assistant_topics_only_under_own_prefix(peers: dict[str, Peer], net: Network) -> None:
    ha = Peer(net, HA)  # the owner's Home Assistant, allowed to read every HA topic in this test ACL
    try:
        ha.subscribe("homeassistant/#")
        ha.subscribe(f"{R}/ha/#")
        a = peers[DEV_A]
        a.publish(f"homeassistant/binary_sensor/{DEV_B}/motion/config", b"spoof")
        a.publish(f"{R}/ha/{DEV_B}/motion", b"ON")
        a.publish(f"homeassistant/binary_sensor/{DEV_A}/motion/config", b"{}")
        assert ha.expect() == (f"homeassistant/binary_sensor/{DEV_A}/motion/config", b"{}")
        a.publish(f"{R}/ha/{DEV_A}/motion", b"ON")
        assert ha.expect() == (f"{R}/ha/{DEV_A}/motion", b"ON")
        assert ha.nothing(0.5)  # the two writes under B's prefix never arrived
        inv = peers[INV_1]  # an investigator may not read HA state
        inv.subscribe(f"{R}/ha/#")
        a.publish(f"{R}/ha/{DEV_A}/motion", b"OFF")
        assert ha.expect() == (f"{R}/ha/{DEV_A}/motion", b"OFF")
        assert inv.nothing(0.5)
    finally:
        ha.close()


def test_client_without_certificate_is_refused(net: Network) -> None:
    anon = Peer(net, None, connect=False)
    try:
        assert not anon.connect(timeout=5)
    finally:
        anon.client.loop_stop()


def test_certificate_from_another_ca_is_refused(net: Network) -> None:
    rogue = Peer(net, DEV_A, pki=net.rogue, connect=False)
    try:
        assert not rogue.connect(timeout=5)
    finally:
        rogue.client.loop_stop()
    # the same name with the right CA works: the refusal above is about the CA, not the name
    good = Peer(net, DEV_A)
    try:
        assert good.connected_ok
    finally:
        good.close()


def test_oversized_messages_are_dropped(peers: dict[str, Peer]) -> None:
    inv, dev = peers[INV_1], peers[DEV_A]
    inv.subscribe(f"{R}/inbox/{INV_1}/#")
    fits = os.urandom(256 * 1024)
    dev.publish(f"{R}/inbox/{INV_1}/req-00000002", fits)
    assert inv.expect(10) == (f"{R}/inbox/{INV_1}/req-00000002", fits)
    dev.publish(f"{R}/inbox/{INV_1}/req-00000003", os.urandom(300 * 1024))
    assert inv.nothing(2.0)
    assert dev.disconnected.wait(5), "the broker should disconnect a client that sends an oversized packet"


def test_queued_releases_wait_for_an_offline_investigator(net: Network) -> None:
    inv = Peer(net, INV_2, client_id="inv2-persistent", clean_start=False, expiry=3600)
    inv.subscribe(f"{R}/inbox/{INV_2}/#")
    inv.close()
    dev = Peer(net, DEV_B)
    try:
        for i in range(3):
            dev.publish(f"{R}/inbox/{INV_2}/req-0000001{i}", f"chunk-{i}".encode())
        time.sleep(0.5)
    finally:
        dev.close()
    back = Peer(net, INV_2, client_id="inv2-persistent", clean_start=False, expiry=3600)
    try:
        got = sorted(back.expect(5)[1] for _ in range(3))
        assert got == [b"chunk-0", b"chunk-1", b"chunk-2"]
    finally:
        back.close()
