"""End to end through a real mosquitto: investigator CLI -> device daemon (`consentcam run`) -> owner CLI
-> release -> investigator CLI. Plain TCP, and TLS with client certificates and a %u ACL made with openssl.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge import audit, clock, keys
from edge.daemon.status import status_path
from edge.protocol import chunks, outbox
from edge.state import StateDir
from tests.conftest import REPO, Broker, run_cli, start_broker
from tests.consent_helpers import decoded_frames, make_ts

INV = "consentcam-investigator"
ROOT = "consentcam/v1"


@dataclass
class World:
    state: Path
    config: Path
    home: Path
    passphrase: Path
    device_id: str
    broker_args: list[str]
    tmp: Path

    def dev(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        res = run_cli(*args, state=self.state, config=self.config, timeout=timeout)
        return res  # type: ignore[return-value]

    def inv(self, *args: str, timeout: float = 120):  # type: ignore[no-untyped-def]
        return run_cli("--home", str(self.home), *args, prog=INV, timeout=timeout)


def _config(path: Path, port: int, tls: dict[str, str] | None = None) -> Path:
    tls_block = ""
    if tls:
        tls_block = (f"  tls:\n    ca_file: {tls['ca']}\n    cert_file: {tls['cert']}\n"
                     f"    key_file: {tls['key']}\n")
    path.write_text(
        "device:\n  name: porch\n"
        "camera:\n  source: synthetic\n  width: 64\n  height: 48\n  fps: 2\n  detect_width: 32\n"
        "  detect_height: 24\n  bitrate: 100000\n"
        f"mqtt:\n  enabled: true\n  host: 127.0.0.1\n  port: {port}\n  keepalive: 10\n{tls_block}"
        "release:\n  chunk_bytes: 16KiB\n"
        "clock:\n  mode: synchronized\n"
    )
    return path


def _world(state_dir: Path, tmp_path: Path, passphrase_file: Path, port: int,
           tls: dict[str, str] | None = None) -> World:
    config = _config(tmp_path / "config.yaml", port, tls)
    device_id = keys.load_device_info(StateDir(state_dir)).device_id
    broker_args = ["--broker", f"127.0.0.1:{port}"]
    if tls:
        broker_args += ["--tls-ca", tls["ca"], "--tls-cert", tls["inv_cert"], "--tls-key", tls["inv_key"]]
    return World(state_dir, config, tmp_path / "inv", passphrase_file, device_id, broker_args, tmp_path)


def _setup_parties(w: World, clips: int = 2) -> dict[str, bytes]:
    """Import clips (made with PyAV), make the investigator, have the owner trust its card."""
    originals: dict[str, bytes] = {}
    for i in range(clips):
        video = w.tmp / f"video{i}.ts"
        video.write_bytes(make_ts(1.0, seed=20 + i))
        start = clock.iso(time.time() - 1200 + 120 * i)
        res = w.dev("clips", "import", str(video), "--start", start)
        assert res.returncode == 0, res.stderr
    listed = json.loads(w.dev("clips", "list", "--json").stdout)
    for c, i in zip(sorted(listed, key=lambda c: c["start"]), range(clips), strict=True):
        originals[c["id"]] = (w.tmp / f"video{i}.ts").read_bytes()
    res = w.inv("keygen", "--name", "Alice", "--inbox", "alice", "--organisation", "Police", "--json")
    assert res.returncode == 0, res.stderr
    res = w.dev("trust", "add", "alice", str(w.home / "card.json"))
    assert res.returncode == 0, res.stderr
    return originals


@pytest.fixture
def daemon_runner() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def _start_daemon(w: World, procs: list[subprocess.Popen]) -> subprocess.Popen:
    log = open(w.tmp / "daemon.log", "ab")  # noqa: SIM115 - the process owns it
    cmd = [sys.executable, "-c", "import sys; from edge.cli.main import main; sys.exit(main())",
           "--state-dir", str(w.state), "--config", str(w.config), "run"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTCAM_")}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    procs.append(proc)
    deadline = time.monotonic() + 30
    path = status_path(StateDir(w.state))
    while time.monotonic() < deadline:
        assert proc.poll() is None, (w.tmp / "daemon.log").read_text()[-3000:]
        try:
            status = json.loads(path.read_text())
            if (status.get("broker") or {}).get("connected"):
                time.sleep(1.0)  # let the SUBACKs arrive
                return proc
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"daemon never connected: {(w.tmp / 'daemon.log').read_text()[-3000:]}")


def _request(w: World, request_id: str) -> dict:
    res = w.inv("request", *w.broker_args, "--device", w.device_id, "--from=-1h", "--to", "now", "--case",
                "CASE-7", "--reason", "bicycle theft", "--expires", "1d", "--id", request_id, "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _wait_pending(w: World, request_id: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = w.dev("requests", "list", "--json")
        if res.returncode == 0 and any(r.get("id") == request_id for r in json.loads(res.stdout)):
            return
        time.sleep(0.3)
    raise AssertionError(f"request {request_id} never reached the pending queue: "
                         f"{(w.tmp / 'daemon.log').read_text()[-2000:]}")


def _approve_and_receive(w: World, request_id: str, originals: dict[str, bytes], chosen: list[str]) -> Path:
    res = w.dev("requests", "approve", request_id, "--clips", ",".join(chosen), "--passphrase-file",
                str(w.passphrase), "--json")
    assert res.returncode == 0, res.stderr
    # The investigator was offline while the daemon published: its persistent session kept the release.
    out = w.tmp / "evidence"
    res = w.inv("receive", *w.broker_args, "--request", request_id, "--out", str(out), "--timeout", "40", "--json",
                timeout=90)
    assert res.returncode == 0, res.stderr + (w.tmp / "daemon.log").read_text()[-2000:]
    result = json.loads(res.stdout)
    assert [r["status"] for r in result["releases"]] == ["verified"]
    target = Path(result["releases"][0]["path"])
    assert target == out / w.device_id
    received = sorted(p.name for p in (target / "clips").iterdir())
    assert received == sorted(f"{c}.ts" for c in chosen)
    for cid in chosen:
        clip = target / "clips" / f"{cid}.ts"
        assert clip.read_bytes() == originals[cid]
        assert decoded_frames(clip) > 0
    res = w.inv("verify", str(target), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["request_id"] == request_id
    return target


def test_request_approve_release_verify_plain(state_dir: Path, tmp_path: Path, passphrase_file: Path,
                                               broker: Broker, daemon_runner: list) -> None:
    w = _world(state_dir, tmp_path, passphrase_file, broker.port)
    originals = _setup_parties(w)
    _start_daemon(w, daemon_runner)
    sent = _request(w, "case7-request-1")
    _wait_pending(w, sent["id"])
    chosen = sorted(originals)[:1]  # the owner narrows the release to one clip
    _approve_and_receive(w, sent["id"], originals, chosen)
    deadline = time.monotonic() + 10
    while outbox.get_item(StateDir(state_dir), sent["id"]).status != "sent" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert outbox.get_item(StateDir(state_dir), sent["id"]).status == "sent"
    kinds = [e["kind"] for e in audit.read_entries(StateDir(state_dir).audit)]
    assert "release.queued" in kinds and "release.sent" in kinds


# -- TLS, client certificates, %u ACL -------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _make_pki(d: Path, device_id: str) -> dict[str, str]:
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "2", "-subj", "/CN=consentcam test CA", cwd=d)
    ext = d / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("server", "localhost"), ("device", device_id), ("inv", "alice"), ("eve", "eve")):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        extra = ["-extfile", str(ext)] if name == "server" else []
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *extra, cwd=d)
    return {"ca": str(d / "ca.crt"), "cert": str(d / "device.crt"), "key": str(d / "device.key"),
            "inv_cert": str(d / "inv.crt"), "inv_key": str(d / "inv.key"), "dir": str(d)}


def _tls_broker(pki: dict[str, str]) -> tuple[Broker, Path]:
    """mosquitto with TLS, required client certificates, CN as user name and the shipped %u ACL
    (deploy/mosquitto/consentcam.acl) plus the `user` block make-certs.sh adds for an investigator."""
    d = Path(tempfile.mkdtemp(prefix="cc-e2e-broker-"))
    d.chmod(0o755)  # mosquitto started as root drops to its own user: it must reach these files
    for name in ("ca.crt", "server.crt", "server.key"):
        shutil.copy(Path(pki["dir"]) / name, d / name)
        (d / name).chmod(0o644 if name.endswith(".crt") else 0o600)
    if os.geteuid() == 0:
        mosq = pwd.getpwnam("mosquitto")
        os.chown(d / "server.key", mosq.pw_uid, mosq.pw_gid)
    acl = d / "consentcam.acl"
    acl.write_text(
        (REPO / "deploy" / "mosquitto" / "consentcam.acl").read_text()
        + f"\nuser alice\ntopic write {ROOT}/device/+/request\ntopic write {ROOT}/area/#\n"
    )
    acl.chmod(0o644)
    conf = (
        f"cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n"
        "require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n"
        f"acl_file {acl}\n"
    )
    return start_broker(d / "broker", conf), d


class Capture:
    """A separate MQTT client subscribed to '#' that records everything it is allowed to see."""

    def __init__(self, port: int, tls: tuple[str, str, str] | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if tls:
            c.tls_set(ca_certs=tls[0], certfile=tls[1], keyfile=tls[2])
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        c.subscribe("#", qos=1)
        assert ready.wait(10)
        self.client = c

    def _on_message(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        with self.lock:
            self.messages.append((message.topic, message.payload, message.retain))

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_request_approve_release_verify_tls_client_certs_acl(state_dir: Path, tmp_path: Path,
                                                             passphrase_file: Path, daemon_runner: list) -> None:
    device_id = keys.load_device_info(StateDir(state_dir)).device_id
    pki = _make_pki(tmp_path / "pki", device_id)
    tls_broker, broker_dir = _tls_broker(pki)
    eve = None
    try:
        w = _world(state_dir, tmp_path, passphrase_file, tls_broker.port, pki)
        originals = _setup_parties(w)
        _start_daemon(w, daemon_runner)
        d = pki["dir"]
        eve = Capture(tls_broker.port, (pki["ca"], f"{d}/eve.crt", f"{d}/eve.key"))  # another valid cert
        sent = _request(w, "case7-request-tls")
        _wait_pending(w, sent["id"])
        _approve_and_receive(w, sent["id"], originals, sorted(originals))
        # No client certificate: refused outright.
        res = run_cli("--home", str(w.home), "receive", "--broker", f"127.0.0.1:{tls_broker.port}", "--tls-ca",
                      pki["ca"], "--request", sent["id"], "--out", str(tmp_path / "x"), "--timeout", "2", prog=INV)
        assert res.returncode == 11, res.stderr
        time.sleep(0.5)
        # Another certificate holder sees neither the request nor the release (ACL confines each party).
        assert eve.snapshot() == []
    finally:
        if eve is not None:
            eve.close()
        tls_broker.stop()
        shutil.rmtree(broker_dir, ignore_errors=True)


# -- deny: silence, and the opt-in signed decline ------------------------------------------------


def test_deny_is_silent_and_notify_sends_one_signed_decline(state_dir: Path, tmp_path: Path,
                                                             passphrase_file: Path, broker: Broker,
                                                             daemon_runner: list) -> None:
    w = _world(state_dir, tmp_path, passphrase_file, broker.port)
    _setup_parties(w, clips=1)
    _start_daemon(w, daemon_runner)
    cap = Capture(broker.port)
    try:
        silent = _request(w, "deny-silent-0001")
        _wait_pending(w, silent["id"])
        res = w.dev("requests", "deny", silent["id"])
        assert res.returncode == 0, res.stderr
        time.sleep(4.0)  # the daemon's outbox loop runs every few seconds: give it time to misbehave
        seen = cap.snapshot()
        assert [t for t, _, _ in seen] == [f"{ROOT}/device/{w.device_id}/request"], seen  # only the request

        loud = _request(w, "deny-notify-0001")
        _wait_pending(w, loud["id"])
        res = w.dev("requests", "deny", loud["id"], "--notify")
        assert res.returncode == 0, res.stderr
        reply = f"{ROOT}/inbox/alice/{loud['id']}"
        deadline = time.monotonic() + 20
        while not any(t == reply for t, _, _ in cap.snapshot()) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)
        device_msgs = [(t, p, r) for t, p, r in cap.snapshot() if not t.endswith("/request")]
        assert len(device_msgs) == 1, device_msgs
        topic, payload, retained = device_msgs[0]
        assert topic == reply and not retained
        decline = chunks.decode_decline(payload)
        assert decline.request_digest == loud["digest"] and decline.device_id == w.device_id
    finally:
        cap.close()
    res = w.inv("receive", *w.broker_args, "--request", loud["id"], "--out", str(tmp_path / "out"), "--timeout",
                "20", "--json", timeout=60)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["releases"][0]["status"] == "declined"
    res = w.inv("receive", *w.broker_args, "--request", silent["id"], "--out", str(tmp_path / "out2"),
                "--timeout", "2")
    assert res.returncode == 12 and "nothing received" in res.stderr
