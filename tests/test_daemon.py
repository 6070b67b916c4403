"""`consentcam run` as a real subprocess against a real mosquitto: systemd notifications, status,
signals, broker outages, garbage floods, trust reload, crash recovery, full disk, no plaintext."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import av
import paho.mqtt.client as mqtt
import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import clock
from edge.protocol.request import RequestBody, Requester, encode_request
from edge.signing import encode_public
from tests.conftest import PASSPHRASE, run_cli
from tests.daemon_helpers import DaemonProc, NotifySocket, clips_json, wait_for, write_config

WINDOW = 4096


def _device_id(state: Path) -> str:
    return json.loads((state / "device.json").read_text())["device_id"]


def _frames(d: DaemonProc) -> int:
    return int(d.daemon_status().get("frames_processed") or 0)


def _advancing(d: DaemonProc, seconds: float = 3.0) -> bool:
    """Frames keep being processed over the next few seconds (the status file is rewritten every 2 s)."""
    before = _frames(d)
    deadline = time.monotonic() + seconds + 3.0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if _frames(d) > before + 5:
            return True
    return False


def _connected(d: DaemonProc) -> bool:
    return bool((d.daemon_status().get("broker") or {}).get("connected"))


def _flood(port: int, topic: str, count: int) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flooder", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        payloads = [os.urandom(n) for n in (0, 1, 85, 200, 5000, 20000)] + [b"CCRQ\x01" + b"\x00" * 200]
        infos = [client.publish(topic, payloads[i % len(payloads)], qos=i % 2) for i in range(count)]
        for info in infos[-10:]:
            info.wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def _send_request(port: int, device_id: str, key: Ed25519PrivateKey, request_id: str) -> None:
    now = time.time()
    body = RequestBody(id=request_id, issued=clock.iso(now - 5), expires=clock.iso(now + 3600), audience=device_id,
                       window_start=clock.iso(now - 600), window_end=clock.iso(now), case="CASE-42",
                       reason="daemon test", requester=Requester("Test", "Test Org", "test@example.org"),
                       recipient=str(pyrage.x25519.Identity.generate().to_public()), inbox="tester")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"req-{request_id}", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(f"consentcam/v1/device/{device_id}/request", encode_request(body, key), qos=1) \
            .wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def _decodes(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _plaintext_leaks(clip: Path, root: Path) -> list[str]:
    """4 KiB windows of the exported clip that appear in any file under root."""
    data = clip.read_bytes()
    windows = {data[i:i + WINDOW] for i in range(0, max(len(data) - WINDOW, 1), WINDOW)}
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            blob = path.read_bytes()
            if any(w in blob for w in windows if len(w) == WINDOW):
                hits.append(str(path.relative_to(root)))
    return hits


def test_status_when_never_run(state_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    res = run_cli("status", "--json", state=state_dir, config=config)
    assert res.returncode == 3, res.stderr
    data = json.loads(res.stdout)
    assert data["running"] is False and data["clips"] == 0 and data["pending_requests"] == 0
    res = run_cli("status", state=state_dir, config=config)
    assert res.returncode == 3 and "not running" in res.stdout


def test_run_rejects_bad_speed_with_one_line(state_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    res = run_cli("run", "--synthetic-speed", "-1", state=state_dir, config=config)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == ["consentcam: --synthetic-speed -1.0: must be between 0 and 100"]


def test_run_on_uninitialised_state_is_a_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    res = run_cli("run", state=tmp_path / "nothing", config=config)
    assert res.returncode == 3
    assert "not a consentcam state directory" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_daemon_lifecycle_against_real_broker(state_dir: Path, tmp_path: Path, broker) -> None:
    """One daemon run, many checks (the synthetic scene takes a while to produce events)."""
    config = write_config(tmp_path / "c.yaml", port=broker.port)
    notify = NotifySocket()
    d = DaemonProc(state_dir, config, tmp_path / "daemon.log", notify=notify, watchdog_usec=2_000_000, speed=2.0)
    try:
        # systemd: READY=1 after the first frame, then watchdog pings from the frame loop.
        msgs = notify.collect(lambda m: "READY=1" in m and m.count("WATCHDOG=1") >= 2, timeout=40)
        assert "READY=1" in msgs, f"no READY=1 in {msgs[:10]}; log: {d.log_tail()}"
        assert msgs.count("WATCHDOG=1") >= 2, msgs[:20]
        assert any(m.startswith("STATUS=") for m in msgs)

        # status --json: running, recording state, broker connected.
        wait_for(lambda: _connected(d), 20, "broker connected in status")
        rc, st = d.status()
        assert rc == 0 and st["running"] is True, st
        daemon = st["daemon"]
        assert daemon["pid"] == d.pid
        assert daemon["camera"]["source"] == "synthetic"
        assert daemon["recording"] in ("idle", "recording")
        assert daemon["clock"]["synced"] is True
        assert st["free_bytes"] > 0

        # A flood of garbage at the device topic does not stop recording.
        topic = f"consentcam/v1/device/{_device_id(state_dir)}/request"
        _flood(broker.port, topic, 2000)
        assert d.proc.poll() is None

        def _seen() -> int:
            req = ((d.daemon_status().get("broker") or {}).get("requests")) or {}
            return sum(int(req.get(k) or 0) for k in ("received", "dropped", "oversized"))
        wait_for(lambda: _seen() >= 1000, 20, "the flood to reach the daemon's intake")
        assert _advancing(d), f"frames stopped after the flood; log: {d.log_tail()}"

        # Broker killed mid-run: recording continues; the link reconnects when it is back.
        broker.stop()
        wait_for(lambda: not _connected(d), 20, "status to show the broker disconnected")
        assert _advancing(d), "recording stalled while the broker was down"
        broker.start()
        wait_for(lambda: _connected(d), 45, "reconnection after the broker came back")
        assert _advancing(d), f"recording stalled after the reconnect; log: {d.log_tail()}"

        # SIGHUP: a trust change made with the CLI counts only after the reload, and a config
        # change is picked up and logged (key names, never values).
        key = Ed25519PrivateKey.generate()
        device_id = _device_id(state_dir)
        _send_request(broker.port, device_id, key, "before-trust-0001")
        res = run_cli("trust", "add", "tester", encode_public(key.public_key()), state=state_dir, config=config)
        assert res.returncode == 0, res.stderr
        write_config(config, port=broker.port, extra="storage:\n  retention:\n    max_age: 7d\n    min_free: 1MB\n")
        time.sleep(1.0)
        assert d.daemon_status().get("pending_requests") == 0
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any(x.get("msg") == "reloaded" for x in d.log_lines()), 15, "the reload log line")
        reload_line = next(x for x in d.log_lines() if x.get("msg") == "reloaded")
        assert "storage.retention.max_age" in reload_line["changed"]
        assert "7d" not in json.dumps(reload_line) and "604800" not in json.dumps(reload_line)
        _send_request(broker.port, device_id, key, "after-trust-0001")
        wait_for(lambda: d.daemon_status().get("pending_requests") == 1, 20, "the trusted request to be pending")
        assert d.proc.poll() is None

        # SIGTERM in the middle of a clip: exit 0 quickly, the clip is complete and decodes.
        st = wait_for(lambda: d.daemon_status().get("current_clip") and d.daemon_status(), 60, "a clip in progress")
        clip_id = st["current_clip"]
        started = time.monotonic()
        assert d.stop(signal.SIGTERM, timeout=15) == 0, d.log_tail()
        assert time.monotonic() - started < 15
        assert "frame loop did not stop" not in d.log.read_text()  # it saw the stop: the camera was left alone
        assert "STOPPING=1" in notify.collect(lambda m: "STOPPING=1" in m, timeout=3)
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        notify.close()

    clips = {c["id"]: c for c in clips_json(state_dir, config)}
    assert clip_id in clips, f"{clip_id} not in {list(clips)}"
    assert clips[clip_id]["status"] == "complete"
    out = tmp_path / "clip.ts"
    pw = tmp_path / "pw"
    pw.write_text(PASSPHRASE + "\n")
    res = run_cli("clips", "export", clip_id, "--out", str(out), "--passphrase-file", str(pw), state=state_dir,
                  config=config)
    assert res.returncode == 0, res.stderr
    assert _decodes(out) > 5
    # After a run: no 4 KiB window of the plaintext footage anywhere under the state dir.
    assert _plaintext_leaks(out, state_dir) == []
    # Nor in the daemon's log, which also never carries a passphrase or a private key.
    log_text = (tmp_path / "daemon.log").read_bytes()
    data = out.read_bytes()
    assert not any(data[i:i + WINDOW] in log_text for i in range(0, len(data) - WINDOW, WINDOW))
    assert PASSPHRASE.encode() not in log_text and b"PRIVATE KEY" not in log_text and b"AGE-SECRET-KEY" not in log_text
    # And status now says it is not running (exit 3).
    rc, st = d.status()
    assert rc == 3 and st["running"] is False


def test_kill9_mid_clip_is_recovered_on_next_start_and_clock_state_is_honest(state_dir: Path,
                                                                             tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    config.write_text(config.read_text().replace("mode: synchronized", "mode: unsynchronized"))
    d = DaemonProc(state_dir, config, tmp_path / "d1.log", speed=2.0)
    try:
        st = wait_for(lambda: d.daemon_status().get("current_clip") and d.daemon_status(), 60, "a clip in progress")
        assert st["clock"]["synced"] is False
        clip_id = st["current_clip"]
        time.sleep(1.5)  # let at least one segment be sealed
        d.proc.kill()
        d.proc.wait(10)
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    d2 = DaemonProc(state_dir, config, tmp_path / "d2.log", speed=2.0)
    try:
        wait_for(lambda: d2.daemon_status().get("pid") == d2.pid, 30, "the second daemon's status")
        clips = {c["id"]: c for c in clips_json(state_dir, config)}
        assert clip_id in clips and clips[clip_id]["status"] == "recovered", clips.get(clip_id)
        assert clips[clip_id]["clock_synced"] is False
        # A broken config on SIGHUP is refused; the daemon keeps recording with the old settings.
        good = config.read_text()
        config.write_text(good + "camera:\n  fps: [not, a, number\n")
        d2.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("reload failed" in x.get("msg", "") for x in d2.log_lines()), 15, "a refused reload")
        assert d2.proc.poll() is None and _advancing(d2)
        # The owner says the clock is good now (SIGHUP): the daemon re-checks and says so.
        config.write_text(good.replace("mode: unsynchronized", "mode: synchronized"))
        d2.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: (d2.daemon_status().get("clock") or {}).get("synced") is True, 15, "clock synced in status")
        assert any("clock is now synchronised" in x.get("msg", "") for x in d2.log_lines())
        assert d2.stop() == 0
    finally:
        if d2.proc.poll() is None:
            d2.proc.kill()


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 24 MiB tmpfs (root only): a real filesystem that really fills up."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test (needs root): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_does_not_stop_the_daemon(state_dir: Path, tmp_path: Path, tiny_disk: Path) -> None:
    import shutil

    state = tiny_disk / "state"
    shutil.copytree(state_dir, state)
    config = write_config(tmp_path / "c.yaml", min_free="1MB", bitrate=2_000_000)
    d = DaemonProc(state, config, tmp_path / "d.log", speed=3.0)
    try:
        wait_for(lambda: d.daemon_status().get("frames_processed"), 30, "frames")
        # Fill every remaining byte with ballast.
        ballast = tiny_disk / "ballast"
        with open(ballast, "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        assert shutil.disk_usage(tiny_disk).free < 65536
        time.sleep(4)
        assert d.proc.poll() is None, f"daemon died on a full disk: {d.log_tail()}"
        assert any("full" in x.get("msg", "") or "No space" in str(x.get("error", "")) for x in d.log_lines()), \
            "the disk never filled up for the daemon"
        ballast.unlink()
        before = _frames(d)
        wait_for(lambda: _frames(d) > before + 10, 20, "frames after space came back")
        assert d.stop() == 0, d.log_tail()
    finally:
        if d.proc.poll() is None:
            d.proc.kill()


def test_auto_camera_falls_back_loudly_and_home_assistant_is_announced(state_dir: Path, tmp_path: Path,
                                                                        broker) -> None:
    extra = "home_assistant:\n  enabled: true\n"
    config = write_config(tmp_path / "c.yaml", port=broker.port, extra=extra)
    text = config.read_text().replace("  source: synthetic\n", "  source: auto\n  device: /dev/video-missing\n")
    config.write_text(text)
    seen: dict[str, bytes] = {}
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha-watcher", protocol=mqtt.MQTTv5)
    watcher.on_message = lambda _c, _u, m: seen.__setitem__(m.topic, m.payload)
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe([("homeassistant/#", 1), ("consentcam/v1/ha/#", 1)])
    watcher.loop_start()
    d = DaemonProc(state_dir, config, tmp_path / "d.log", speed=2.0)
    device_id = _device_id(state_dir)
    availability = f"consentcam/v1/ha/{device_id}/availability"
    try:
        st = wait_for(lambda: d.daemon_status().get("ready") and d.daemon_status(), 30, "the daemon to be ready")
        assert st["camera"]["requested"] == "auto" and st["camera"]["source"] == "synthetic"
        assert "SYNTHETIC" in st["camera"]["reason"]
        assert any(x.get("level") == "warning" and "SYNTHETIC" in x.get("msg", "") for x in d.log_lines())
        wait_for(lambda: seen.get(availability) == b"online", 20, "Home Assistant availability online")
        assert any(t.startswith("homeassistant/") and t.endswith("/config") for t in seen)
        assert d.stop() == 0
        wait_for(lambda: seen.get(availability) == b"offline", 10, "availability offline after a clean stop")
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        watcher.loop_stop()
        watcher.disconnect()
    # Nothing Home Assistant received names a clip (states are ON/OFF and a count only).
    blob = b" ".join(seen.values()).decode(errors="replace")
    for clip in clips_json(state_dir, config):
        assert clip["id"] not in blob
    assert {v for t, v in seen.items() if t.endswith(("/motion", "/recording"))} <= {b"ON", b"OFF"}


def test_status_judges_staleness_and_dead_processes(state_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    run_dir = state_dir / "run"
    run_dir.mkdir(mode=0o700, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    cases = [
        ({"running": True, "pid": os.getpid(), "updated": time.time()}, 0, "running"),
        ({"running": True, "pid": os.getpid(), "updated": time.time() - 60}, 3, "stale"),
        ({"running": True, "pid": dead.pid, "updated": time.time()}, 3, "is gone"),
        ({"running": False, "pid": os.getpid(), "updated": time.time()}, 3, "stopped"),
    ]
    for data, code, reason in cases:
        (run_dir / "status.json").write_text(json.dumps(data))
        res = run_cli("status", "--json", state=state_dir, config=config)
        assert res.returncode == code, (data, res.stdout, res.stderr)
        assert reason in json.loads(res.stdout)["reason"]
    (run_dir / "status.json").write_text("{not json")
    res = run_cli("status", "--json", state=state_dir, config=config)
    assert res.returncode == 3 and "unreadable status file" in json.loads(res.stdout)["reason"]
