#!/usr/bin/env python3
"""Protocol benchmark (prints JSON).

1. Signed requests verified and queued per second (the device side's Verifier + PendingQueue,
   via bench/protocol_intake.py): target >= 2,000/s.
2. A 100 MB approved release, from the owner's approval to verified files at the investigator,
   through a real local mosquitto: `consentcam requests approve --send-now` and
   `consentcam-investigator receive` as real processes. Side by side, in the same run and through
   the same broker, the baseline: the standard `age` encrypting the same plaintext to the same
   recipient, then `mosquitto_pub` sending the ciphertext in the same chunk size (QoS 1) to a
   `mosquitto_sub` that receives every chunk. Target: within 3x the baseline.

    .venv/bin/python bench/protocol.py [--mb 100] [--n 3000] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import protocol_intake  # noqa: E402

from edge import keys  # noqa: E402
from edge.audit import AuditLog  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.investigator.home import Home  # noqa: E402
from edge.mqtt_link import MqttLink  # noqa: E402
from edge.protocol.pending import PendingQueue  # noqa: E402
from edge.protocol.release import build_release, max_chunk_payload, publish_release  # noqa: E402
from edge.protocol.verifier import Verifier  # noqa: E402
from edge.state import StateDir  # noqa: E402
from edge.vault import Vault  # noqa: E402
from tests.conftest import start_broker  # noqa: E402

PASSPHRASE = "bench passphrase"
MAX_MESSAGE = 1024 * 1024  # 1 MiB messages: few round trips for 100 MB
CHUNK = 1024 * 1024


def _cli(prog: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    module = {"consentcam": "edge.cli.main", "inv": "edge.investigator.cli"}[prog]
    cmd = [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{prog} {' '.join(args[:4])}... failed: {proc.stderr.strip()[-800:]}")
    return proc


def _spawn(prog: str, *args: str) -> subprocess.Popen:
    module = {"consentcam": "edge.cli.main", "inv": "edge.investigator.cli"}[prog]
    cmd = [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def release_bench(work: Path, megabytes: int, rounds: int = 3) -> dict:
    broker = start_broker(work / "broker", f"max_packet_size {MAX_MESSAGE + 64 * 1024}\nmax_queued_messages 10000\n")
    try:
        return _release_bench(work, megabytes, broker.port, rounds)
    finally:
        broker.stop()


def _release_bench(work: Path, megabytes: int, port: int, rounds: int) -> dict:
    state, home = work / "state", work / "inv"
    pp = work / "passphrase"
    pp.write_text(PASSPHRASE + "\n")
    config = work / "config.yaml"
    config.write_text(
        f"mqtt:\n  enabled: true\n  host: 127.0.0.1\n  port: {port}\n  max_message_bytes: {MAX_MESSAGE}\n"
        f"release:\n  chunk_bytes: {CHUNK}\n"
        "storage:\n  segment_max_bytes: 4MiB\n"
        "clock:\n  mode: synchronized\n"
    )
    dev = ["--state-dir", str(state), "--config", str(config)]
    _cli("consentcam", *dev, "init", "--passphrase-file", str(pp))
    video = work / "random.ts"
    with open(video, "wb") as fh:
        for _ in range(megabytes):
            fh.write(os.urandom(1024 * 1024))
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1800))
    _cli("consentcam", *dev, "clips", "import", str(video), "--start", start)
    clip_id = json.loads(_cli("consentcam", *dev, "clips", "list", "--json").stdout)[0]["id"]
    inv = ["--home", str(home)]
    _cli("inv", *inv, "keygen", "--name", "Bench", "--inbox", "bench")
    _cli("consentcam", *dev, "trust", "add", "bench", str(home / "card.json"))
    st = StateDir(state)
    info = keys.load_device_info(st)
    cfg = load_config(config)
    audit = AuditLog(st.audit, keys.load_device_key(st))
    verifier = Verifier.for_state(cfg, st, audit, info.device_id)

    def pending_request() -> str:
        sent = json.loads(_cli("inv", *inv, "request", "--broker", f"127.0.0.1:{port}", "--device",
                               info.device_id, "--from=-1h", "--to", "now", "--case", "BENCH", "--reason",
                               "benchmark", "--json").stdout)
        # The device's real intake (Verifier + pending queue) takes the exact bytes that were sent.
        outcome = verifier.process(Home(home).load_request(sent["id"]).raw,
                                   f"consentcam/v1/device/{info.device_id}/request")
        if not outcome.accepted:
            raise RuntimeError(f"bench request refused: {outcome}")
        return str(sent["id"])

    def receive(request_id: str, out: Path) -> subprocess.Popen:
        return _spawn("inv", *inv, "receive", "--broker", f"127.0.0.1:{port}", "--request", request_id, "--out",
                      str(out), "--timeout", "600", "--json")

    def finish(proc: subprocess.Popen) -> Path:
        stdout, stderr = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"receive failed: {stderr.strip()[-800:]}")
        return Path(json.loads(stdout)["releases"][0]["path"]) / "clips" / f"{clip_id}.ts"

    # (a) The owner's command as shipped: `requests approve --send-now` (a new process that unlocks
    #     the owner key with its passphrase, scrypt), with the investigator's `receive` started at
    #     the same moment. Includes both processes' start-up and the passphrase KDF.
    rid = pending_request()
    t0 = time.perf_counter()
    proc = receive(rid, work / "received-cli")
    approve = _cli("consentcam", *dev, "requests", "approve", rid, "--clips", clip_id, "--passphrase-file",
                   str(pp), "--send-now", "--timeout", "120", "--json")
    got = finish(proc)
    cli_seconds = time.perf_counter() - t0
    cli_identical = _same(got, video)
    approved = json.loads(approve.stdout)
    t = time.perf_counter()
    identity = keys.unlock_owner_identity(st, PASSPHRASE)
    kdf_seconds = time.perf_counter() - t

    # (b) Approval to verified files, the release path itself: the owner key is already unlocked
    #     (the passphrase prompt is before the decision); build_release + publish_release through
    #     the device's real MqttLink, the investigator's `receive` already waiting in its process.
    link = MqttLink(cfg.mqtt, f"{info.device_id}-bench")
    link.start()
    if not link.wait_connected(15):
        raise RuntimeError("device link did not connect")
    vault = Vault.open(st, cfg.storage, keys.load_owner_recipient(st), keys.load_device_key(st), audit)
    queue = PendingQueue(st.requests)
    runs, baselines = [], []
    try:
        for n in range(rounds):
            rid2 = pending_request()
            proc = receive(rid2, work / f"received-{n}")
            time.sleep(2.0)  # let the receiver start and subscribe (not counted)
            t0 = time.perf_counter()
            item = build_release(st, vault, identity, queue.get(rid2).request, [clip_id], keys.load_device_key(st),
                                 max_chunk_payload(CHUNK, MAX_MESSAGE), audit=audit)
            t_built = time.perf_counter()
            publish_release(link, item, cfg.mqtt.topic_root, 60, audit=audit)
            t_sent = time.perf_counter()
            got = finish(proc)
            t1 = time.perf_counter()
            runs.append({"seconds": round(t1 - t0, 3), "build": round(t_built - t0, 3),
                         "publish": round(t_sent - t_built, 3), "receive_tail": round(t1 - t_sent, 3),
                         "identical": _same(got, video)})
            shutil.rmtree(work / f"received-{n}", ignore_errors=True)
            # The baseline runs right after each round, so both see the same machine load.
            baselines.append(_baseline(work / f"baseline-{n}", video, Home(home), port,
                                       max_chunk_payload(CHUNK, MAX_MESSAGE)))
    finally:
        link.stop()
    ours = statistics.median(r["seconds"] for r in runs)
    base_send = statistics.median(b["seconds_encrypt_and_send"] for b in baselines)
    base_full = statistics.median(b["seconds_encrypt_send_decrypt"] for b in baselines)
    return {
        "plaintext_bytes": video.stat().st_size,
        "bundle_bytes": item.bundle_size,
        "chunks": item.chunks,
        "chunk_payload_bytes": item.chunk_size,
        "rounds": rounds,
        "seconds_approval_to_verified_files_median": round(ours, 3),
        "mb_per_second": round(megabytes / ours, 1),
        "received_identical": all(r["identical"] for r in runs),
        "runs": runs,
        "cli_round": {
            "seconds_approve_cli_to_verified_files": round(cli_seconds, 3),
            "seconds_owner_passphrase_kdf_included": round(kdf_seconds, 3),
            "bundle_bytes": approved["bundle_size"],
            "received_identical": cli_identical,
        },
        "baseline_seconds_encrypt_and_send_median": round(base_send, 3),
        "baseline_seconds_encrypt_send_decrypt_median": round(base_full, 3),
        "baselines": baselines,
        "ratio_vs_baseline": round(ours / base_send, 2),
        "ratio_vs_baseline_with_decrypt": round(ours / base_full, 2),
        "ratio_cli_round_vs_baseline": round(cli_seconds / base_send, 2),
        "target_ratio": 3.0,
    }


def _same(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _baseline(base: Path, plaintext: Path, home: Home, port: int, chunk: int) -> dict:
    """age -r RECIPIENT, then mosquitto_pub -f per chunk (QoS 1) to a mosquitto_sub counting them."""
    base.mkdir()
    recipient = home.card().recipient
    cipher = base / "bundle.age"
    chunks_dir = base / "chunks"
    chunks_dir.mkdir()
    t0 = time.perf_counter()
    subprocess.run(["age", "-r", recipient, "-o", str(cipher), str(plaintext)], check=True, timeout=300)
    t_enc = time.perf_counter()
    # split into chunk files (part of the baseline's cost: mosquitto_pub -f sends whole files)
    paths = []
    with open(cipher, "rb") as fh:
        i = 0
        while piece := fh.read(chunk):
            p = chunks_dir / f"{i:06d}"
            p.write_bytes(piece)
            paths.append(p)
            i += 1
    topic = "baseline/inbox/bench/x"
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "1",
                            "-C", str(len(paths)), "-N"], stdout=subprocess.PIPE)
    time.sleep(0.5)  # let the subscription land (not counted)
    t_pub0 = time.perf_counter()
    for p in paths:
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "1", "-f", str(p)],
                       check=True, timeout=60)
    received, _ = sub.communicate(timeout=300)
    t_pub1 = time.perf_counter()
    (base / "received.age").write_bytes(received)
    t_dec0 = time.perf_counter()
    identity = base / "id.txt"
    shutil.copy(home.identity_path, identity)
    subprocess.run(["age", "-d", "-i", str(identity), "-o", str(base / "received.bin"), str(base / "received.age")],
                   check=True, timeout=300)
    t_dec1 = time.perf_counter()
    ok = received == cipher.read_bytes()
    shutil.rmtree(base, ignore_errors=True)
    send = (t_enc - t0) + (t_pub1 - t_pub0) + (t_pub0 - t_enc - 0.5)
    return {
        "seconds_age_encrypt": round(t_enc - t0, 3),
        "seconds_mosquitto_pub_all_chunks_received": round(t_pub1 - t_pub0, 3),
        "seconds_age_decrypt": round(t_dec1 - t_dec0, 3),
        "seconds_encrypt_and_send": round(send, 3),
        "seconds_encrypt_send_decrypt": round(send + (t_dec1 - t_dec0), 3),
        "chunks": len(paths),
        "received_identical": ok,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="signed requests for the intake measurement")
    ap.add_argument("--mb", type=int, default=100, help="release size in MB (random bytes)")
    ap.add_argument("--rounds", type=int, default=3, help="release rounds (median reported; machine noise)")
    ap.add_argument("--dir", type=Path, default=None, help="work directory parent (default: $TMPDIR)")
    args = ap.parse_args()
    intake = protocol_intake.measure(args.n, directory=args.dir)
    intake_one = protocol_intake.measure(args.n, batch=1, directory=args.dir)
    with tempfile.TemporaryDirectory(prefix="cc-bench-protocol-", dir=args.dir) as tmp:
        release = release_bench(Path(tmp), args.mb, args.rounds)
    result = {
        "benchmark": "protocol",
        "requests_verified_and_queued_per_second": intake["per_second"],
        "requests_verified_and_queued_per_second_one_at_a_time": intake_one["per_second"],
        "requests_target_per_second": 2000,
        "intake": intake,
        "release": release,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
