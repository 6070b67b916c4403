"""`consentcam run`, `consentcam status` and `consentcam demo`.

Exit codes of `status`: 0 the daemon is running, 3 it is not running (no status file, a stale
one, or the process is gone). Exit codes of `run`: 0 clean stop (SIGTERM/SIGINT), 1 failure.
"""

from __future__ import annotations

import argparse
import shutil
from typing import Any

from edge.cli.common import Context, add_json_option, console, emit_json, print_table
from edge.errors import ConsentcamError
from edge.logs import setup_logging

EXIT_NOT_RUNNING = 3

# The handlers import the daemon, the vault and the keys when they run: parsing stays light (see main.py).


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the daemon (record, answer requests)", description=cmd_run.__doc__)
    run.add_argument("--synthetic-speed", type=float, default=1.0, metavar="FACTOR",
                     help="synthetic camera only: play the scene FACTOR times faster than real time "
                          "(0 = as fast as possible; for demos and tests)")
    run.set_defaults(handler=cmd_run)

    st = sub.add_parser("status", help="is the daemon running, and what is it doing",
                        description=cmd_status.__doc__)
    add_json_option(st)
    st.set_defaults(handler=cmd_status)

    demo = sub.add_parser("demo", help="see everything work: synthetic camera, private broker, a request, a release",
                          description=cmd_demo.__doc__)
    demo.add_argument("--out", metavar="DIR", help="output folder (default ./demo-output-<timestamp>)")
    demo.add_argument("--clips", type=int, default=3, metavar="N", help="clips to record before the request (1-10)")
    demo.add_argument("--keep-work", action="store_true", help="keep the temporary work directory (debugging)")
    add_json_option(demo)
    demo.set_defaults(handler=cmd_demo)


def cmd_run(ctx: Context) -> int:
    """Record motion clips into the encrypted vault and, when MQTT is enabled, take requests and
    deliver the releases the owner approved. Stops cleanly on SIGTERM/SIGINT; SIGHUP reloads the
    trust store and retention settings."""
    from edge.daemon.runner import Daemon

    config = ctx.config
    setup_logging("debug" if ctx.args.verbose else config.log.level, config.log.format)
    if ctx.args.synthetic_speed < 0 or ctx.args.synthetic_speed > 100:
        raise ConsentcamError(f"--synthetic-speed {ctx.args.synthetic_speed}: must be between 0 and 100")
    daemon = Daemon(ctx.state, config, ctx.config_path if ctx.config_path.exists() else None,
                    speed=ctx.args.synthetic_speed)
    return daemon.run()


def cmd_status(ctx: Context) -> int:
    """Show whether the daemon is running, what it is doing, and what is stored. Exit status 0
    when running, 3 when not."""
    from edge.daemon.status import read_status

    ctx.state.require_initialised()
    reading = read_status(ctx.state)
    stored = _stored(ctx)
    out: dict[str, Any] = {"running": reading.running, "reason": reading.reason, "daemon": reading.data,
                           **stored}
    if ctx.json:
        emit_json(out)
    else:
        _print_status(out)
    return 0 if reading.running else EXIT_NOT_RUNNING


def _stored(ctx: Context) -> dict[str, Any]:
    from edge.daemon.parts import count_pending

    out: dict[str, Any] = {"clips": None, "bytes_stored": None, "pending_requests": count_pending(ctx.state)}
    try:
        out["free_bytes"] = shutil.disk_usage(ctx.state.root).free
    except OSError:
        out["free_bytes"] = None
    try:
        from edge import clock
        from edge.keys import load_device_key
        from edge.vault import Vault

        vault = Vault.open(ctx.state, ctx.config.storage, None, load_device_key(ctx.state), None, recover=False)
        try:
            clips = vault.list_clips()
        finally:
            vault.close()
        out["clips"] = len(clips)
        out["bytes_stored"] = sum(c.size for c in clips)
        out["clips_recovered"] = sum(1 for c in clips if c.status == "recovered")
        out["newest_clip"] = clock.iso(max(c.end for c in clips)) if clips else None
    except ConsentcamError as exc:
        out["vault_error"] = str(exc)
    return out


def _camera_line(cam: dict[str, Any]) -> str:
    """e.g. `opencv-copy 1920x1080 @ 25 fps, detector at 10 fps (configured)`: the name says how it
    records (-copy: the camera's own H.264/H.265, -dual: the same with a substream for the detector);
    an H.265 recording says so."""
    text = str(cam.get("name") or cam.get("source"))
    if cam.get("width") and cam.get("height"):
        text += f" {cam['width']}x{cam['height']}"
    if cam.get("fps"):
        text += f" @ {cam['fps']:g} fps"
    if cam.get("codec") == "hevc":
        text += " H.265"
    if cam.get("detect_fps") and cam.get("detect_fps") != cam.get("fps"):
        text += f", detector at {cam['detect_fps']:g} fps"
    return f"{text} ({cam.get('reason')})"


def _print_status(out: dict[str, Any]) -> None:
    d = out["daemon"]
    con = console()
    if out["running"]:
        con.print(f"[bold green]running[/bold green] (pid {d.get('pid')}, since {d.get('started_iso')})")
    else:
        con.print(f"[bold red]not running[/bold red]: {out['reason']}")
    rows: list[list[Any]] = []
    if d:
        cam = d.get("camera") or {}
        broker = d.get("broker") or {}
        clk = d.get("clock") or {}
        rows += [
            ["camera", _camera_line(cam) if cam else "-"],
            ["recording", d.get("recording")],
            ["current clip", d.get("current_clip") or "-"],
            ["motion", "yes" if d.get("motion_active") else "no"],
            ["frames / fps", f"{d.get('frames_processed')} / {d.get('fps')}"],
            ["dropped detection frames", d.get("dropped_detection_frames")],
            ["broker", (f"{broker.get('state')}" + (f" ({broker['last_error']})" if broker.get("last_error") and
                                                   not broker.get("connected") else ""))
             if broker.get("enabled") else "disabled"],
            ["clock", "synchronised" if clk.get("synced") else "NOT synchronised (expiry not judged)"],
            ["last error", d.get("last_error") or "-"],
            ["status updated", d.get("updated_iso")],
        ]
    rows += [
        ["clips stored", out.get("clips")],
        ["bytes stored", _size(out.get("bytes_stored"))],
        ["free space", _size(out.get("free_bytes"))],
        ["pending requests", out.get("pending_requests")],
    ]
    if out.get("vault_error"):
        rows.append(["vault", out["vault_error"]])
    print_table(None, ["what", "value"], rows)


def _size(n: int | None) -> str:
    from edge.units import format_size

    return "-" if n is None else format_size(int(n))


def cmd_demo(ctx: Context) -> int:
    """Run the whole story on this machine with nothing set up: a private broker, a throwaway
    device on the synthetic camera, a demo investigator's signed request, the owner's approval,
    and the verified release. Leaves decrypted clips, a report and a contact sheet in --out."""
    from edge.daemon.demo import run_demo

    return run_demo(out=ctx.args.out, clips=ctx.args.clips, as_json=ctx.json, keep_work=ctx.args.keep_work)
