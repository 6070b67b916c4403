"""`consentcam camera check`: open the camera the way the daemon would and say what it delivers."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from edge.cli.common import Context, add_json_option, console, emit_json
from edge.errors import ConsentcamError

# Handlers import the capture stack when they run: parsing stays light (see main.py).

HOW_RECORDED = {
    "opencv-copy": "the camera's own {codec}, as it arrives (not re-encoded)",
    "opencv-dual": "the main stream's own {codec}, as it arrives; the detector reads the substream",
    "picamera2": "H.264 from the Pi's hardware encoder",
    "picamera2-software": "H.264 from libx264 on this Pi, in the camera thread (no hardware encoder)",
    "opencv": "re-encoded to H.264 by this machine (libx264)",
    "synthetic": "the SYNTHETIC test scene, encoded by this machine",
}


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("camera", help="check the camera: does it open, what does it send, what will be recorded",
                       description="Camera tools for installing and troubleshooting.")
    csub = c.add_subparsers(dest="camera_command", metavar="SUBCOMMAND", required=True)
    k = csub.add_parser("check", help="open the configured camera as the daemon would, read it for a few seconds "
                                      "and report what it delivers (nothing is recorded)",
                        description="Opens the configured camera (or --device) exactly as `consentcam run` would, "
                                    "reads it for --seconds without recording anything, and reports how it would be "
                                    "recorded, its size, frame rate, bit rate and keyframe interval, what the "
                                    "detector gets and what reading it costs this machine, with advice. Exit 0: "
                                    "frames arrived for the whole check; 1: the camera did not open, sent nothing, "
                                    "stopped or failed during the check, or only the synthetic scene was found; 2: "
                                    "a bad argument; 78: the config is invalid.")
    k.add_argument("--device", metavar="DEVICE",
                   help="check this device, file or URL instead of camera.device (implies camera.source opencv)")
    k.add_argument("--detect-device", metavar="URL",
                   help="with it, a substream for the detector (as camera.detect_device)")
    k.add_argument("--seconds", type=_seconds, default=5.0,
                   help="how long to read the camera (default 5; one silent for 6 s after its first frame is "
                        "given up on)")
    add_json_option(k)
    k.set_defaults(handler=cmd_check)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0 and at most 600")
    return value


def cmd_check(ctx: Context) -> int:
    from edge.capture import choose_source
    from edge.capture.check import measure
    from edge.daemon.parts import open_camera

    args = ctx.args
    config = _with_overrides(ctx.config, args.device, args.detect_device)
    source, reason = choose_source(config)  # here, not in open_camera: `auto` must not fall back to the scene
    if source == "synthetic" and config.camera.source == "auto":
        return _failed(ctx, f"no camera found ({reason})")
    config = dataclasses.replace(config, camera=dataclasses.replace(config.camera, source=source))
    try:
        camera, choice = open_camera(config)
    except ConsentcamError as exc:
        return _failed(ctx, str(exc))
    choice.requested = "opencv" if args.device else ctx.config.camera.source
    choice.reason = reason
    live = _live(config, choice)
    measured = measure(camera, args.seconds, choice.fps, live=live)
    report = _report(config, camera, choice, measured, live)
    description = report["camera"]["description"]
    if measured.error is not None:
        return _failed(ctx, f"{description}: failed after {measured.frames} frames: {measured.error}", report)
    if measured.frames == 0:
        return _failed(ctx, f"{description}: opened, but sent no frame in {measured.seconds:.0f} s (an H.264/H.265 "
                            "stream shows nothing before its first keyframe: a very long keyframe interval looks "
                            "like this too)", report)
    if live and measured.ended:
        return _failed(ctx, f"{description}: stopped sending after {measured.frames} frames "
                            f"({measured.seconds:.1f} s)", report)
    if ctx.json:
        emit_json(report)
    else:
        _print(report)
    return 0


def _with_overrides(config: Any, device: str | None, detect_device: str | None) -> Any:
    cam = config.camera
    if device:
        cam = dataclasses.replace(cam, source="opencv", device=device)
    if detect_device:
        cam = dataclasses.replace(cam, detect_device=detect_device)
    return dataclasses.replace(config, camera=cam)


def _live(config: Any, choice: Any) -> bool:
    from edge.capture.opencv_source import is_stream_url

    device = config.camera.device
    return choice.source == "picamera2" or (choice.source == "opencv" and
                                            (device.startswith("/dev/") or is_stream_url(device)))


def _report(config: Any, camera: Any, choice: Any, m: Any, live: bool) -> dict[str, Any]:
    from edge.capture import CODEC_NAMES
    from edge.capture.check import advice
    from edge.cli.daemon_cmd import _camera_line

    cam = config.camera
    name = getattr(camera, "name", choice.source)
    copied = name in ("opencv-copy", "opencv-dual")
    detector: dict[str, Any] = {"size": [cam.detect_width, cam.detect_height], "fps": choice.detect_fps}
    if name == "opencv-dual":
        detector.update(source=camera.detect_shown, source_size=list(camera.detect_source_size))
    info = choice.to_dict() | {"name": name}
    return {
        "ok": m.frames > 0,
        "camera": info | {"description": _camera_line(info)},
        "recorded_as": HOW_RECORDED.get(_how(name, camera), name).format(codec=CODEC_NAMES.get(choice.codec,
                                                                                              choice.codec)),
        "detector": detector,
        "measured": {
            "seconds": round(m.seconds, 2), "frames": m.frames, "pictures_decoded": m.pictures,
            "first_frame_s": None if m.first_frame_s is None else round(m.first_frame_s, 3),
            "arrival_fps": round(m.arrival_fps, 2) if live else None,  # a file is read as fast as it decodes
            "stream_seconds": round(m.stream_seconds, 2), "packets": m.packets,
            "bitrate_kbps": round(m.bitrate_kbps, 1),
            "keyframe_interval_s": None if m.keyframe_interval_s is None else round(m.keyframe_interval_s, 2),
            "cpu_ms_per_frame": round(m.cpu_ms_per_frame, 2),
        },
        "advice": advice(m, fps=choice.fps, detect_fps=choice.detect_fps, live=live, keyframes_from_camera=copied,
                         rate_from_camera=getattr(camera, "timed_by_camera", True)),
    }


def _how(name: str, camera: Any) -> str:
    if name == "picamera2" and not getattr(camera, "hardware_encoder", True):
        return "picamera2-software"
    return name


def _failed(ctx: Context, reason: str, report: dict[str, Any] | None = None) -> int:
    """Exit 1 with the reason; with --json, {"ok": false, "error": ...} and whatever was measured."""
    if ctx.json:
        emit_json((report or {}) | {"ok": False, "error": reason})
    else:
        console().print(f"[bold red]camera check failed[/bold red]: {reason}")
    return 1


def _print(report: dict[str, Any]) -> None:
    m, det = report["measured"], report["detector"]
    detector = f"{det['size'][0]}x{det['size'][1]} grey at {det['fps']:g} fps"
    if det.get("source"):
        detector += f", from {det['source']} ({det['source_size'][0]}x{det['source_size'][1]})"
    rows = [
        ["camera", report["camera"]["description"]],
        ["recorded as", report["recorded_as"]],
        ["detector", detector],
        ["first frame after", f"{m['first_frame_s']} s"],
        ["frames", (f"{m['frames']} in {m['seconds']} s ({m['arrival_fps']} per second)" if m["arrival_fps"] is not None
                    else f"{m['frames']} ({m['stream_seconds']} s of the file)")
                   + ("" if m["pictures_decoded"] == m["frames"] else f", {m['pictures_decoded']} decoded")],
        ["bit rate", f"{m['bitrate_kbps']:.0f} kbit/s"],
        ["keyframes", "fewer than two arrived" if m["keyframe_interval_s"] is None
                      else f"every {m['keyframe_interval_s']} s"],
        ["CPU", f"{m['cpu_ms_per_frame']} ms per frame"],
    ]
    from rich.table import Table

    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 2, 0, 0))
    for label, value in rows:
        table.add_row(f"[bold]{label}[/bold]", value)
    con = console()
    con.print(table)
    if not report["advice"]:
        con.print("[bold green]looks good[/bold green]")
    for note in report["advice"]:
        con.print(f"[bold yellow]advice[/bold yellow]: {note}")
