"""`consentcam demo`: the whole story on one machine, with nothing set up by hand.

1. a temporary work dir and a private mosquitto on a free loopback port;
2. a throwaway device (`consentcam init` with a generated passphrase file) and `consentcam run`
   as a real subprocess on the synthetic camera, played faster than real time, until a few clips
   are recorded;
3. a demo investigator (`consentcam-investigator keygen`), trusted by the owner (`trust add`),
   sends a signed request for the recorded window; the owner looks (`requests list/show`) and
   approves; the daemon publishes the release;
4. `consentcam-investigator receive` fetches and verifies it; the decrypted clips, the
   verification report and a contact sheet (frames from the received clips) go to the output dir.

Every child runs in its own session so Ctrl-C reaches only this process, which then stops them
in order (SIGTERM, wait, SIGKILL) in a finally block: nothing is left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge import clock
from edge.errors import ConsentcamError
from edge.loopback import free_port, stop_process, wait_for_port

DEMO_FPS = 10
DEMO_SPEED = 6.0  # synthetic scene played 6x faster than real time
CLIP_WAIT_LIMIT = 75.0  # seconds to wait for the clips
RELEASE_WAIT_LIMIT = 40.0
TERM_GRACE = 10.0
INVESTIGATOR = "demo-investigator"


class DemoError(ConsentcamError):
    exit_code = 1


@dataclass
class Step:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class Demo:
    out: Path
    work: Path
    want_clips: int
    as_json: bool
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    port: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.state = self.work / "device-state"
        self.config = self.work / "config.yaml"
        self.passphrase = self.work / "owner-passphrase"
        self.inv_dir = self.work / "investigator"
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    # -- output ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Step]:
        started = time.monotonic()
        record = Step(title, 0.0)
        with self.console.status(f"[bold]{title}[/bold] ..."):
            yield record
        record.seconds = round(time.monotonic() - started, 2)
        self.steps.append(record)
        detail = f" [dim]{record.detail}[/dim]" if record.detail else ""
        self.console.print(f"[green]✓[/green] {title} [dim]({record.seconds:.1f} s)[/dim]{detail}")

    def show(self, title: str, text: str) -> None:
        """The owner's view, printed exactly as the CLI printed it (no re-wrapping)."""
        from rich.text import Text

        self.console.rule(f"[bold cyan]{title}[/bold cyan]", align="left")
        self.console.print(Text(text.rstrip() or "(no output)"), soft_wrap=True)
        self.console.rule(style="dim")

    # -- processes ------------------------------------------------------------------------------

    def cli(self, *args: str, prog: str = "consentcam", timeout: float = 60, check: bool = True,
            state: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = _entry(prog)
        if prog == "consentcam" and state:
            cmd += ["--state-dir", str(self.state), "--config", str(self.config)]
        cmd += list(args)
        what = " ".join([prog, *args])
        env = _child_env()
        env["COLUMNS"] = str(max(self.console.width, 100))  # tables laid out for this terminal
        with INTERRUPTS.deferred():  # the child is tracked before a Ctrl-C can unwind us
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                    start_new_session=True)
            self.procs.append(("command", proc))
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(proc, 2.0)
            raise DemoError(f"`{what}` did not finish within {timeout:.0f} s") from None
        finally:
            if proc.poll() is not None:
                self.procs.remove(("command", proc))
        result = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
        if check and result.returncode != 0:
            raise DemoError(f"`{what}` failed (exit {result.returncode}): {_last_line(stderr)}")
        return result

    def spawn(self, name: str, cmd: Sequence[str]) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "ab") as log, INTERRUPTS.deferred():
            # Ctrl-C is held until the child is in self.procs: a KeyboardInterrupt raised inside
            # Popen() (after the fork) would otherwise leave an untracked child running.
            proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, env=_child_env(),
                                    start_new_session=True)
            self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        """SIGTERM, wait, SIGKILL: newest first (daemon before broker)."""
        for name, proc in reversed(self.procs):
            stop_process(proc, TERM_GRACE if name == "daemon" else 5.0)
        self.procs.clear()

    def alive(self, name: str) -> subprocess.Popen:
        for n, proc in self.procs:
            if n == name:
                if proc.poll() is not None:
                    raise DemoError(f"the {name} exited early (exit {proc.returncode}); its log: "
                                    f"{_tail(self.logs / f'{name}.log')}")
                return proc
        raise DemoError(f"the {name} is not running")

    # -- the story ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        self.console.print(f"[bold]consentcam demo[/bold]: work dir {self.work}, output {self.out}")
        with self.step("Starting a private MQTT broker") as s:
            self.start_broker()
            s.detail = f"mosquitto on 127.0.0.1:{self.port}"
        with self.step("Creating a throwaway device (owner key behind a generated passphrase)") as s:
            self.init_device()
            s.detail = f"device {self.device_id}"
        window_start = clock.now() - 60.0
        with self.step(f"Recording on the synthetic camera until {self.want_clips} clips are sealed") as s:
            self.start_daemon()
            clips = self.wait_for_clips()
            s.detail = (f"{len(clips)} clips, {sum(c.size for c in clips)} encrypted bytes (the scene plays "
                        f"{DEMO_SPEED:g}x faster than real time, so clip times run ahead of the clock)")
        self.summary["clips_recorded"] = [c.id for c in clips]
        self.protocol_round(window_start, clips)
        with self.step("Drawing a contact sheet from the received clips") as s:
            sheet = make_contact_sheet(sorted(self.out.glob("clips/*.ts")), self.out / "contact-sheet.png")
            s.detail = f"{sheet['frames']} frames from {sheet['clips']} clips"
        self.summary["contact_sheet"] = str(self.out / "contact-sheet.png")
        self.summary["seconds"] = round(time.monotonic() - t0, 1)
        self.summary["steps"] = [s.__dict__ for s in self.steps]
        self.summary["out"] = str(self.out)
        self.summary["work_dir"] = str(self.work)
        return self.summary

    def start_broker(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise DemoError("mosquitto is not installed: run scripts/bootstrap.sh (or apt-get install mosquitto)")
        broker_dir = self.work / "broker"
        broker_dir.mkdir()
        self.port = free_port()
        conf = broker_dir / "mosquitto.conf"
        conf.write_text("\n".join([
            "per_listener_settings false", "persistence false", f"listener {self.port} 127.0.0.1",
            "allow_anonymous true", "max_packet_size 1048576", "",
        ]))
        self.spawn("broker", [exe, "-c", str(conf)])
        _wait_port(self.port, 10.0)
        self.alive("broker")

    def init_device(self) -> None:
        self.passphrase.write_text(secrets.token_urlsafe(24) + "\n")
        self.passphrase.chmod(0o600)
        self.config.write_text(demo_config(self.port))
        self.cli("init", "--passphrase-file", str(self.passphrase))
        info = json.loads(self.cli("keys", "show", "--json").stdout)
        self.device_id = info["device_id"]
        self.summary["device_id"] = self.device_id

    def start_daemon(self) -> None:
        cmd = [*_entry("consentcam"), "--state-dir", str(self.state), "--config", str(self.config),
               "run", "--synthetic-speed", str(DEMO_SPEED)]
        self.spawn("daemon", cmd)

    def wait_for_clips(self) -> list[Any]:
        deadline = time.monotonic() + CLIP_WAIT_LIMIT
        clips: list[Any] = []
        while time.monotonic() < deadline:
            self.alive("daemon")
            clips = [c for c in _list_clips(self.state, self.config) if c.status == "complete"]
            if len(clips) >= self.want_clips:
                return clips
            time.sleep(0.5)
        raise DemoError(f"only {len(clips)} clips after {CLIP_WAIT_LIMIT:.0f} s; daemon log: "
                        f"{_tail(self.logs / 'daemon.log')}")

    def protocol_round(self, window_start: float, clips: list[Any]) -> None:
        inv = ["--home", str(self.inv_dir)]
        broker = ["--broker", f"127.0.0.1:{self.port}"]
        with self.step("Creating a demo investigator (signing key + age identity)") as s:
            self.cli(*inv, "keygen", "--name", "Demo Constabulary", "--inbox", INVESTIGATOR, "--organisation",
                     "Demo Police", "--contact", "desk@police.example", "--json", prog="consentcam-investigator")
            card = self.inv_dir / "card.json"
            s.detail = f"card {card.name}"
        with self.step("Owner trusts the investigator's card; the daemon reloads (SIGHUP)") as s:
            self.cli("trust", "add", INVESTIGATOR, str(card), "--max-window", "2h")
            self.reload_daemon()
            s.detail = "trust store reloaded"
        # The synthetic scene plays faster than real time, so clip times run ahead of the wall
        # clock: the window ends just after the newest clip (its start is what must not be future).
        window_end = max(c.end for c in clips) + 1.0
        with self.step("Investigator sends a signed request for the recorded window") as s:
            sent = json.loads(self.cli(*inv, "request", *broker, "--device", self.device_id,
                                       "--from", clock.iso(window_start), "--to", clock.iso(window_end),
                                       "--case", "DEMO-2026-0001", "--reason",
                                       "Parcel theft reported at the front door; footage of the porch requested.",
                                       "--expires", "1d", "--json", prog="consentcam-investigator").stdout)
            self.request_id = sent["id"]
            s.detail = f"request {self.request_id}, digest {sent['digest'][:16]}..."
        self.summary["request_id"] = self.request_id
        with self.step("The daemon verifies it and queues it for the owner") as s:
            self.wait_pending()
            s.detail = "pending (nothing was sent back to the requester)"
        self.show("Owner: consentcam requests list", self.cli("requests", "list").stdout)
        self.show(f"Owner: consentcam requests show {self.request_id}",
                  self.cli("requests", "show", "--", self.request_id).stdout)
        with self.step("Owner approves (passphrase unlocks the owner key; bundle encrypted to the requester)") as s:
            approved = json.loads(self.cli("requests", "approve", "--passphrase-file", str(self.passphrase), "--json",
                                           "--", self.request_id, timeout=120).stdout)
            s.detail = f"{len(approved.get('clips', []))} clips, {approved.get('bundle_size')} bytes in the outbox"
        self.summary["clips_released"] = approved.get("clips", [])
        with self.step("Daemon publishes the release; investigator receives and verifies it") as s:
            received = json.loads(self.cli(*inv, "receive", *broker, f"--request={self.request_id}",
                                           "--out", str(self.work / "received"), "--timeout",
                                           str(RELEASE_WAIT_LIMIT), "--json", prog="consentcam-investigator",
                                           timeout=RELEASE_WAIT_LIMIT + 30).stdout)
            releases = [r for r in received.get("releases", []) if r.get("status") == "verified"]
            if not releases:
                raise DemoError(f"no verified release arrived: {received}")
            self.collect_release(Path(releases[0]["path"]))
            s.detail = f"{len(list(self.out.glob('clips/*.ts')))} clips written to {self.out}"
        with self.step("Re-verifying the output folder offline (consentcam-investigator verify)") as s:
            report = json.loads(self.cli(*inv, "verify", str(self.out), "--json",
                                         prog="consentcam-investigator").stdout)
            (self.out / "verification-offline.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
            if report.get("ok") is not True:
                raise DemoError(f"offline verification did not pass: {report}")
            s.detail = f"verified {len(report.get('clips', []))} clips from {report.get('device_id')}"
        self.summary["verified"] = True
        self.summary["verification_report"] = str(self.out / "verification-report.json")
        self.summary["clips_received"] = sorted(p.name for p in self.out.glob("clips/*.ts"))

    def reload_daemon(self) -> None:
        proc = self.alive("daemon")
        log = self.logs / "daemon.log"
        before = log.read_text(errors="replace").count("trust store reloaded")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            if log.read_text(errors="replace").count("trust store reloaded") > before:
                return
            time.sleep(0.2)
        raise DemoError(f"the daemon did not reload its trust store; log: {_tail(log)}")

    def wait_pending(self) -> None:
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            self.alive("daemon")
            items = json.loads(self.cli("requests", "list", "--json").stdout)
            if any(i.get("id") == self.request_id for i in items):
                return
            time.sleep(0.5)
        raise DemoError(f"the request did not reach the owner's queue; daemon log: {_tail(self.logs / 'daemon.log')}")

    def collect_release(self, release: Path) -> None:
        """Move the verified release (clips, manifest, signature, report) to the top of --out."""
        for item in release.iterdir():
            shutil.move(str(item), str(self.out / item.name))


def demo_config(port: int) -> str:
    return f"""# consentcam demo device: synthetic camera, private broker, short clips.
device:
  name: demo-front-door
camera:
  source: synthetic
  width: 640
  height: 480
  fps: {DEMO_FPS}
  detect_width: 320
  detect_height: 240
  bitrate: 800000
  keyframe_interval: 1s
recording:
  pre_roll: 1s
  post_roll: 1s
  merge_gap: 1s
  max_clip: 30s
storage:
  segment_seconds: 1s
mqtt:
  enabled: true
  host: 127.0.0.1
  port: {port}
  keepalive: 10
clock:
  mode: synchronized
log:
  level: info
"""


# -- contact sheet -------------------------------------------------------------------------------

def make_contact_sheet(clips: Sequence[Path], out: Path, *, per_clip: int = 4, thumb: tuple[int, int] = (320, 240),
                       max_clips: int = 8) -> dict[str, int]:
    """A PNG grid: one row per clip, `per_clip` frames spread over it, labelled with the clip id."""
    import av
    import cv2
    import numpy as np

    rows = []
    used = 0
    for path in list(clips)[:max_clips]:
        frames = _sample_frames(av, path, per_clip)
        if not frames:
            continue
        tiles = []
        for i, (t, img) in enumerate(frames):
            tile = cv2.resize(img, thumb, interpolation=cv2.INTER_AREA)
            label = f"{path.stem[-14:]} +{t:.1f}s" if i == 0 else f"+{t:.1f}s"
            cv2.rectangle(tile, (0, 0), (thumb[0], 22), (0, 0, 0), -1)
            cv2.putText(tile, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        while len(tiles) < per_clip:
            tiles.append(np.zeros((thumb[1], thumb[0], 3), np.uint8))
        rows.append(np.hstack(tiles))
        used += len(frames)
    if not rows:
        raise DemoError("no decodable frames in the received clips")
    sheet = np.vstack(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet):
        raise DemoError(f"{out}: could not write the contact sheet")
    return {"clips": len(rows), "frames": used}


def _sample_frames(av: Any, path: Path, count: int) -> list[tuple[float, Any]]:
    decoded = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                decoded.append(frame)
    except av.FFmpegError:
        pass  # keep what decoded: a recovered clip may end mid-packet
    if not decoded:
        return []
    picks = sorted({round(i * (len(decoded) - 1) / max(count - 1, 1)) for i in range(count)})
    t0 = decoded[0].time or 0.0
    return [((decoded[i].time or 0.0) - t0, decoded[i].to_ndarray(format="bgr24")) for i in picks]


# -- helpers ---------------------------------------------------------------------------------------

def _entry(prog: str) -> list[str]:
    module = {"consentcam": "edge.cli.main", "consentcam-investigator": "edge.investigator.cli"}[prog]
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("CONSENTCAM_CONFIG", "CONSENTCAM_STATE_DIR", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(key, None)
    env["COLUMNS"] = "160"
    return env


def _list_clips(state: Path, config: Path) -> list[Any]:
    from edge.config import load_config
    from edge.keys import load_device_key
    from edge.state import StateDir
    from edge.vault import Vault

    sd = StateDir(state)
    vault = Vault.open(sd, load_config(config).storage, None, load_device_key(sd), None, recover=False)
    try:
        return list(vault.list_clips())
    finally:
        vault.close()


def _wait_port(port: int, timeout: float) -> None:
    if not wait_for_port(port, timeout):
        raise DemoError(f"the private broker did not start listening on 127.0.0.1:{port} within {timeout:.0f} s")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Interrupts:
    """SIGINT and SIGTERM become KeyboardInterrupt, except inside `deferred()` (starting a child
    and recording it), where they are held and raised as soon as the child is tracked."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending = False

    def handler(self, _signum: int, _frame: Any) -> None:
        if self.depth:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending:
                self.pending = False
                raise KeyboardInterrupt


INTERRUPTS = Interrupts()


def run_demo(*, out: str | None, clips: int, as_json: bool, keep_work: bool) -> int:
    if not 1 <= clips <= 10:
        raise DemoError(f"--clips {clips}: choose between 1 and 10")
    out_dir = Path(out) if out else Path.cwd() / f"demo-output-{time.strftime('%Y%m%d-%H%M%S')}"
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DemoError(f"{out_dir}: output folder exists and is not empty; choose another with --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="consentcam-demo-"))
    work.chmod(0o700)
    # SIGTERM (e.g. from a supervisor) cleans up exactly like Ctrl-C.
    previous = {sig: signal.signal(sig, INTERRUPTS.handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    demo = Demo(out_dir.resolve(), work, clips, as_json)
    try:
        summary = demo.run()
    finally:
        # A second Ctrl-C must not cut the cleanup short: ignore both until the children are gone.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            demo.stop_all()
            # The logs (no footage, keys or passphrases in them) help when something went wrong.
            shutil.copytree(work / "logs", out_dir / "logs", dirs_exist_ok=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if keep_work:
            demo.console.print(f"[dim]work dir kept: {work}[/dim]")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if as_json:
        json.dump(summary, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
    demo.console.print(f"\n[bold green]Done.[/bold green] Everything the investigator received is in "
                       f"[bold]{out_dir}[/bold]:\n  clips/*.ts (decrypted, playable), manifest.json + manifest.sig, "
                       f"verification-report.txt/.json, contact-sheet.png, logs/")
    return 0
