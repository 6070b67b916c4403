"""`consentcam trust ...` and `consentcam requests ...` as real subprocesses over real state."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import clock, keys
from edge.audit import AuditLog, read_entries
from edge.config import StorageConfig, load_config
from edge.protocol import outbox
from edge.protocol.chunks import decode_decline, decode_header, message_kind
from edge.protocol.request import RequestBody, Requester, encode_request
from edge.protocol.trust import TrustEntry, TrustStore
from edge.protocol.verifier import Verifier
from edge.signing import encode_public, key_id
from edge.state import StateDir
from edge.vault import Vault
from tests.conftest import Broker, run_cli
from tests.consent_helpers import add_clip, make_ts


def kinds(state: Path, kind: str) -> list[dict]:
    return [e for e in read_entries(state / "audit") if e["kind"] == kind]


# -- trust -------------------------------------------------------------------------------------


def test_trust_add_list_remove(state_dir: Path, tmp_path: Path) -> None:
    k1, k2 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    res = run_cli("trust", "add", "police-north", encode_public(k1), "--max-window", "2h", "--rate", "5/day",
                  "--json", state=state_dir)
    assert res.returncode == 0, res.stderr
    added = json.loads(res.stdout)
    assert added["key_id"] == key_id(k1).hex() and added["max_window"] == 7200 and added["rate"] == 5
    # The investigator's public card (JSON) works as KEY too.
    card = tmp_path / "insurer.card.json"
    card.write_text(json.dumps({"name": "insurer", "signing_key": encode_public(k2),
                                "recipient": "age1example", "inbox": "insurer"}))
    res = run_cli("trust", "add", "insurer", str(card), state=state_dir)
    assert res.returncode == 0, res.stderr
    assert "fingerprint" in res.stdout
    listing = json.loads(run_cli("trust", "list", "--json", state=state_dir).stdout)
    assert [e["name"] for e in listing] == ["police-north", "insurer"]
    assert listing[1]["max_window"] == 43200 and listing[1]["rate"] == 20  # config defaults
    assert [e["data"]["name"] for e in kinds(state_dir, "trust.added")] == ["police-north", "insurer"]
    res = run_cli("trust", "remove", "police-north", state=state_dir)
    assert res.returncode == 0, res.stderr
    assert [e["name"] for e in json.loads(run_cli("trust", "list", "--json", state=state_dir).stdout)] == [
        "insurer"]
    assert kinds(state_dir, "trust.removed")[0]["data"]["key_id"] == key_id(k1).hex()
    assert oct((state_dir / "trust.json").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trust", "add", "x", "ed25519:AAAA"], "32 bytes"),
        (["trust", "add", "x", "ssh-ed25519 AAAA"], "neither"),
        (["trust", "add", "bad/name", "ed25519:" + "A" * 43 + "="], "name"),
        (["trust", "add", "x", "ed25519:" + "A" * 43 + "=", "--rate", "lots"], "rate"),
        (["trust", "add", "x", "ed25519:" + "A" * 43 + "=", "--max-window", "forever"], "max-window"),
        (["trust", "remove", "nobody"], "no trusted requester"),
    ],
)
def test_trust_errors_are_one_clear_line(state_dir: Path, args: list[str], message: str) -> None:
    res = run_cli(*args, state=state_dir)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("consentcam: ") and message in lines[0], res.stderr
    assert not (state_dir / "trust.json").exists()  # nothing changed


def test_trust_add_refuses_duplicates(state_dir: Path) -> None:
    k = encode_public(Ed25519PrivateKey.generate())
    assert run_cli("trust", "add", "a", k, state=state_dir).returncode == 0
    res = run_cli("trust", "add", "b", k, state=state_dir)
    assert res.returncode != 0 and "already trusted as 'a'" in res.stderr
    res = run_cli("trust", "add", "a", encode_public(Ed25519PrivateKey.generate()), state=state_dir)
    assert res.returncode != 0 and "already trusted" in res.stderr


def test_card_file_errors(state_dir: Path, tmp_path: Path) -> None:
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"name": "x"}))
    res = run_cli("trust", "add", "x", str(card), state=state_dir)
    assert res.returncode != 0 and "signing_key" in res.stderr


# -- requests ----------------------------------------------------------------------------------


class Scene:
    """A device with three clips (two inside the request window), a trusted requester and a config."""

    def __init__(self, state_dir: Path, tmp_path: Path, broker: Broker | None = None) -> None:
        self.state = state_dir
        self.key = Ed25519PrivateKey.generate()
        self.identity = __import__("pyrage").x25519.Identity.generate()
        self.config_path = tmp_path / "config.yaml"
        mqtt_conf = (f"mqtt: {{enabled: true, host: {broker.host}, port: {broker.port}}}\n" if broker else "")
        self.config_path.write_text("clock: {mode: synchronized}\n" + mqtt_conf)
        st = StateDir(state_dir)
        store = TrustStore([TrustEntry.create("police", encode_public(self.key), 43200, 100)], st.trust_store)
        store.save()
        device_key = keys.load_device_key(st)
        # The recorder's view: only the owner's public key (no passphrase, no scrypt).
        dev = SimpleNamespace(vault=Vault.open(st, StorageConfig(), keys.load_owner_recipient(st), device_key))
        now = clock.now()
        self.t0 = now - 3 * 3600
        self.inside = [add_clip(dev, make_ts(0.5, seed=i), self.t0 + 600 * i) for i in (1, 2)]  # type: ignore[arg-type]
        self.outside = add_clip(dev, make_ts(0.5, seed=9), now - 10 * 3600)  # type: ignore[arg-type]
        self.info = keys.load_device_info(st)

    def request(self, request_id: str, *, expires_in: float = 3600, inbox: str = "police",
                reason: str = "parcel theft") -> bytes:
        now = clock.now()
        b = RequestBody(
            id=request_id, issued=clock.iso(now - 5), expires=clock.iso(now + expires_in),
            audience=self.info.device_id, window_start=clock.iso(self.t0), window_end=clock.iso(self.t0 + 3600),
            case="CASE-77", reason=reason, requester=Requester("Det. B", "Police", "b@example.org"),
            recipient=str(self.identity.to_public()), inbox=inbox,
        )
        return encode_request(b, self.key)

    def deliver(self, message: bytes) -> None:
        """What the daemon's service does with a message from the broker (real files, in-process)."""
        st = StateDir(self.state)
        config = load_config(self.config_path)
        audit = AuditLog(st.audit, keys.load_device_key(st))
        v = Verifier.for_state(config, st, audit, self.info.device_id)
        outcome = v.process(message)
        v.replay.close()
        assert outcome.accepted, outcome

    def cli(self, *args: str, **kw):  # type: ignore[no-untyped-def]
        return run_cli(*args, state=self.state, config=self.config_path, **kw)


@pytest.fixture
def scene(state_dir: Path, tmp_path: Path) -> Scene:
    return Scene(state_dir, tmp_path)


def test_list_and_show(scene: Scene) -> None:
    scene.deliver(scene.request("REQ-show-0001"))
    listing = json.loads(scene.cli("requests", "list", "--json").stdout)
    assert [r["id"] for r in listing] == ["REQ-show-0001"]
    assert listing[0]["requester"]["organisation"] == "Police" and listing[0]["case"] == "CASE-77"
    shown = json.loads(scene.cli("requests", "show", "REQ-show-0001", "--json").stdout)
    assert sorted(c["id"] for c in shown["matching_clips"]) == sorted(scene.inside)
    assert shown["reason"] == "parcel theft" and shown["requester"]["contact"] == "b@example.org"
    text = scene.cli("requests", "show", "REQ-show-0001")
    assert text.returncode == 0 and scene.inside[0] in text.stdout and "parcel theft" in text.stdout
    missing = scene.cli("requests", "show", "REQ-nope-0001")
    assert missing.returncode == 5 and missing.stderr.count("\n") == 1


def test_an_id_starting_with_a_dash_is_shown_and_approved_after_double_dash(scene: Scene,
                                                                            passphrase_file: Path) -> None:
    # The protocol allows ids such as "-EHXuM-vIuT1jKc7GNa7Hg" (base64url); argparse reads a bare one as
    # an option, so owners (and the demo) put "--" before it.
    scene.deliver(scene.request("-dash-0001"))
    assert scene.cli("requests", "show", "-dash-0001").returncode == 2
    shown = json.loads(scene.cli("requests", "show", "--json", "--", "-dash-0001").stdout)
    assert shown["id"] == "-dash-0001"
    approved = scene.cli("requests", "approve", "--passphrase-file", str(passphrase_file), "--json", "--",
                         "-dash-0001", timeout=120)
    assert approved.returncode == 0, approved.stderr
    assert sorted(json.loads(approved.stdout)["clips"]) == sorted(scene.inside)


def test_requester_text_is_shown_literally(scene: Scene) -> None:
    sneaky = "[bold red]URGENT[/] [link=https://evil.example]click[/link]"
    scene.deliver(scene.request("REQ-markup-01", reason=sneaky))
    shown = scene.cli("requests", "show", "REQ-markup-01")
    assert shown.returncode == 0 and sneaky in shown.stdout


def test_approve_a_subset(scene: Scene, passphrase_file: Path) -> None:
    scene.deliver(scene.request("REQ-appr-0001"))
    res = scene.cli("requests", "approve", "REQ-appr-0001", "--clips", scene.inside[1],
                    "--passphrase-file", str(passphrase_file), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["clips"] == [scene.inside[1]]
    item = outbox.get_item(StateDir(scene.state), "REQ-appr-0001")
    assert item.status == "queued" and item.inbox == "police"
    assert json.loads(scene.cli("requests", "list", "--json").stdout) == []
    [approved] = kinds(scene.state, "request.approved")
    assert approved["data"]["clips"] == [scene.inside[1]]
    again = scene.cli("requests", "approve", "REQ-appr-0001", "--passphrase-file", str(passphrase_file))
    assert again.returncode == 5 and "already decided" in again.stderr


def test_approve_refuses_clips_outside_the_window_and_wrong_passphrase(scene: Scene, passphrase_file: Path,
                                                                      tmp_path: Path) -> None:
    scene.deliver(scene.request("REQ-appr-0002"))
    res = scene.cli("requests", "approve", "REQ-appr-0002", "--clips", f"{scene.inside[0]},{scene.outside}",
                    "--passphrase-file", str(passphrase_file))
    assert res.returncode == 2 and "not in the request's window" in res.stderr
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    res = scene.cli("requests", "approve", "REQ-appr-0002", "--passphrase-file", str(wrong))
    assert res.returncode == 4
    # Nothing left, nothing decided.
    assert not outbox.list_items(StateDir(scene.state))
    assert [r["id"] for r in json.loads(scene.cli("requests", "list", "--json").stdout)] == ["REQ-appr-0002"]
    assert not kinds(scene.state, "request.approved")
    res = scene.cli("requests", "approve", "REQ-appr-0002", "--passphrase-file", str(passphrase_file), "--json")
    assert res.returncode == 0, res.stderr
    assert sorted(json.loads(res.stdout)["clips"]) == sorted(scene.inside)  # default: every matching clip


def test_deny_is_silent_unless_notify(scene: Scene) -> None:
    scene.deliver(scene.request("REQ-deny-0001"))
    scene.deliver(scene.request("REQ-deny-0002"))
    assert scene.cli("requests", "deny", "REQ-deny-0001").returncode == 0
    declines = scene.state / "requests" / "declines"
    assert not declines.exists() or not list(declines.iterdir())
    res = scene.cli("requests", "deny", "REQ-deny-0002", "--notify")
    assert res.returncode == 0, res.stderr
    data = (declines / "REQ-deny-0002.bin").read_bytes()
    assert message_kind(data) == "decline" and decode_decline(data).request_id == "REQ-deny-0002"
    denied = kinds(scene.state, "request.denied")
    assert [(e["data"]["id"], e["data"]["notify"]) for e in denied] == [("REQ-deny-0001", False),
                                                                       ("REQ-deny-0002", True)]
    assert json.loads(scene.cli("requests", "list", "--json").stdout) == []
    assert not outbox.list_items(StateDir(scene.state))


def test_expired_requests_drop_out_when_listed(scene: Scene) -> None:
    scene.deliver(scene.request("REQ-soon-0001", expires_in=1.0))
    time.sleep(1.3)
    assert json.loads(scene.cli("requests", "list", "--json").stdout) == []
    [e] = kinds(scene.state, "request.expired")
    assert e["data"]["id"] == "REQ-soon-0001"


def _collector(broker: Broker, topic: str) -> tuple[mqtt.Client, list[bytes]]:
    got: list[bytes] = []
    ready = threading.Event()
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="investigator",
                    protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, ud, msg: got.append(bytes(msg.payload))
    c.on_subscribe = lambda *a: ready.set()
    c.connect(broker.host, broker.port, 30)
    c.loop_start()
    c.subscribe(topic, qos=1)
    assert ready.wait(5)
    return c, got


def test_send_now_publishes_release_and_decline(state_dir: Path, tmp_path: Path, broker: Broker,
                                                passphrase_file: Path) -> None:
    scene = Scene(state_dir, tmp_path, broker)
    c, got = _collector(broker, "consentcam/v1/inbox/police/#")
    try:
        scene.deliver(scene.request("REQ-send-0001"))
        scene.deliver(scene.request("REQ-send-0002"))
        res = scene.cli("requests", "approve", "REQ-send-0001", "--passphrase-file", str(passphrase_file),
                        "--send-now", "--json")
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert out["sent"] is True
        deadline = time.monotonic() + 10
        while len(got) < 1 + out["chunks"] and time.monotonic() < deadline:
            time.sleep(0.05)
        header = decode_header(got[0])
        assert header.request_id == "REQ-send-0001" and len(got) == 1 + header.chunks
        assert outbox.get_item(StateDir(state_dir), "REQ-send-0001").status == "sent"
        res = scene.cli("requests", "deny", "REQ-send-0002", "--notify", "--send-now")
        assert res.returncode == 0, res.stderr
        deadline = time.monotonic() + 10
        while len(got) < 2 + header.chunks and time.monotonic() < deadline:
            time.sleep(0.05)
        assert decode_decline(got[-1]).request_id == "REQ-send-0002"
        assert not (state_dir / "requests" / "declines" / "REQ-send-0002.bin").exists()
    finally:
        c.loop_stop()
        c.disconnect()


def test_send_now_without_broker_keeps_it_queued(state_dir: Path, tmp_path: Path, passphrase_file: Path) -> None:
    from tests.conftest import free_port

    scene = Scene(state_dir, tmp_path)
    scene.config_path.write_text("clock: {mode: synchronized}\n"
                                 f"mqtt: {{enabled: true, host: 127.0.0.1, port: {free_port()}}}\n")
    scene.deliver(scene.request("REQ-down-0001"))
    res = scene.cli("requests", "approve", "REQ-down-0001", "--passphrase-file", str(passphrase_file),
                    "--send-now", "--timeout", "2", timeout=90)
    assert res.returncode != 0 and "stays queued for the daemon" in res.stderr
    assert outbox.get_item(StateDir(state_dir), "REQ-down-0001").status == "queued"


def test_daemon_service_publishes_queued_release_and_decline(state_dir: Path, tmp_path: Path, broker: Broker,
                                                            passphrase_file: Path) -> None:
    from edge.mqtt_link import MqttLink
    from edge.protocol.service import ConsentService

    scene = Scene(state_dir, tmp_path, broker)
    scene.deliver(scene.request("REQ-queue-0001"))
    scene.deliver(scene.request("REQ-queue-0002"))
    res = scene.cli("requests", "approve", "REQ-queue-0001", "--passphrase-file", str(passphrase_file), "--json")
    assert res.returncode == 0, res.stderr
    chunks = json.loads(res.stdout)["chunks"]
    assert scene.cli("requests", "deny", "REQ-queue-0002", "--notify").returncode == 0
    c, got = _collector(broker, "consentcam/v1/inbox/police/#")
    st = StateDir(state_dir)
    config = load_config(scene.config_path)
    audit = AuditLog(st.audit, keys.load_device_key(st))
    link = MqttLink(config.mqtt, scene.info.device_id, min_backoff=0.1, max_backoff=0.5)
    service = ConsentService(config, st, link, audit, scene.info.device_id)
    link.start()
    try:
        assert link.wait_connected(30)
        service.start()
        deadline = time.monotonic() + 60  # generous: a loaded 2-core CI box fsyncs slowly
        while len(got) < chunks + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        kinds_seen = sorted(message_kind(m) for m in got)
        assert kinds_seen == sorted(["header", "decline"] + ["chunk"] * chunks)
        # The service marks the release sent and removes the decline once the broker acknowledged
        # them, which can come a moment after the subscriber already has the messages.
        decline = state_dir / "requests" / "declines" / "REQ-queue-0002.bin"
        while time.monotonic() < deadline and (decline.exists()
                                               or outbox.get_item(st, "REQ-queue-0001").status != "sent"):
            time.sleep(0.05)
        assert outbox.get_item(st, "REQ-queue-0001").status == "sent"
        assert not decline.exists()
    finally:
        service.stop()
        link.stop()
        c.loop_stop()
        c.disconnect()
    assert [e["data"]["request_id"] for e in kinds(state_dir, "release.sent")] == ["REQ-queue-0001"]
    assert [e["data"]["id"] for e in kinds(state_dir, "decline.sent")] == ["REQ-queue-0002"]
