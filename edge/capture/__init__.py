"""Frame sources: picamera2 (Raspberry Pi), opencv (webcams, IP cameras, files), synthetic.

`open_camera(config)` builds the configured source; `choose_source(config)` says which one `auto`
picks on this machine and why. picamera2 is only imported inside its adapter.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.capture.frames import PTS_HZ, Camera, CapturedFrame, EncodedPacket
from edge.config import Config

__all__ = ["PTS_HZ", "Camera", "CapturedFrame", "EncodedPacket", "choose_source", "open_camera"]

log = logging.getLogger("consentcam.capture")

SYNTHETIC_SCENE_SECONDS = 600.0
CODEC_NAMES = {"h264": "H.264", "hevc": "H.265"}


def choose_source(config: Config) -> tuple[str, str]:
    """(source, reason). `auto`: picamera2 with a camera, else the opencv device if it delivers a
    frame, else the synthetic scene (the caller decides whether that is acceptable)."""
    requested = config.camera.source
    if requested != "auto":
        return requested, "configured"
    from edge.capture.opencv_source import device_problem
    from edge.capture.picamera2_source import picamera2_available
    from edge.redact import without_credentials

    ok, why = picamera2_available()
    if ok:
        return "picamera2", f"auto: {why}"
    device = config.camera.device
    problem = device_problem(device)
    if problem is None:
        return "opencv", f"auto: {why}; {without_credentials(device)} delivers frames"
    reason = f"auto: {why}; {problem}; using the SYNTHETIC test scene"
    log.warning("no camera found (%s)", reason)
    return "synthetic", reason


def privacy_mask(config: Config) -> Any:
    from edge.capture.masks import rasterise

    cam = config.camera
    if not config.recording.privacy_masks:
        return None
    return rasterise(config.recording.privacy_masks, cam.width - cam.width % 2, cam.height - cam.height % 2)


def open_camera(config: Config, source: str | None = None, *, time_origin: float | None = None,
                realtime: bool = False, loop: bool | None = None) -> Any:
    """Open a frame source. `source` overrides config.camera.source (e.g. the result of choose_source)."""
    cam = config.camera
    source = source or cam.source
    if source == "auto":
        source, _ = choose_source(config)
    main, detect = (cam.width, cam.height), (cam.detect_width, cam.detect_height)
    mask = privacy_mask(config)
    if source == "picamera2":
        from edge.capture.picamera2_source import PiCamera

        return PiCamera(main_size=main, detect_size=detect, fps=cam.fps, bitrate=cam.bitrate,
                        keyframe_interval=cam.keyframe_interval, privacy_mask=mask)
    if source == "opencv":
        from edge.capture.opencv_source import OpenCVCamera

        copying = _stream_copy(config, mask, time_origin=time_origin, loop=loop)
        if copying is not None:
            return copying
        return OpenCVCamera(cam.device, main_size=main, detect_size=detect, fps=cam.fps, bitrate=cam.bitrate,
                            keyframe_interval=cam.keyframe_interval, privacy_mask=mask,
                            loop=cam.loop_file if loop is None else loop, time_origin=time_origin)
    from edge.capture.synthetic import SyntheticCamera, SyntheticScene

    scene = SyntheticScene(cam.synthetic_seed, "mixed", SYNTHETIC_SCENE_SECONDS, cam.fps)
    return SyntheticCamera(scene, main_size=main, detect_size=detect, bitrate=cam.bitrate,
                           keyframe_interval=cam.keyframe_interval, privacy_mask=mask, realtime=realtime,
                           start_time=time_origin, loop=True if loop is None else loop)


def _stream_copy(config: Config, mask: Any, *, time_origin: float | None, loop: bool | None) -> Any:
    """The source's own H.264 or H.265, recorded as it is (edge.capture.stream_copy), when `camera.record`
    allows it; None: decode and re-encode. `copy` that cannot be honoured is an error, not a
    silent re-encode: the owner asked for the camera's own footage."""
    from edge.capture.opencv_source import CameraOpenError
    from edge.capture.stream_copy import NotCopyable, StreamCopyCamera

    cam = config.camera
    if cam.detect_device:
        return _dual_stream(config, mask)
    if cam.record == "encode":
        return None
    why_not = None
    if cam.device.startswith("/dev/"):
        why_not = f"{cam.device} is a webcam (raw pictures, nothing encoded to keep)"
    elif mask is not None:
        why_not = "recording.privacy_masks must be drawn into the pictures, which means re-encoding them"
    if why_not is None:
        try:
            camera = StreamCopyCamera(cam.device, detect_size=(cam.detect_width, cam.detect_height), fps=cam.fps,
                                      loop=cam.loop_file if loop is None else loop, time_origin=time_origin)
        except NotCopyable as exc:
            why_not = str(exc)
        else:
            log.info("recording the source's own %s as it arrives (%dx%d, %.3g fps; no re-encoding)",
                     CODEC_NAMES.get(camera.codec, camera.codec), camera.width, camera.height, camera.fps)
            return camera
    if cam.record == "copy":
        raise CameraOpenError(f"camera.record: copy is not possible: {why_not}; use auto or encode")
    log.info("recording by re-encoding: %s", why_not)
    return None


def _dual_stream(config: Config, mask: Any) -> Any:
    """Main stream copied, substream decoded for the detector (edge.capture.dual_stream)."""
    from edge.capture.dual_stream import DualStreamCamera
    from edge.capture.opencv_source import CameraOpenError
    from edge.capture.stream_copy import NotCopyable

    cam = config.camera
    if cam.record == "encode":
        raise CameraOpenError("camera.detect_device needs camera.record auto or copy: with it, the main stream is "
                              "recorded as it arrives and never decoded")
    if mask is not None:
        raise CameraOpenError("camera.detect_device cannot be used with recording.privacy_masks: a mask must be drawn "
                              "into the main stream's pictures, which means decoding and re-encoding it")
    try:
        camera = DualStreamCamera(cam.device, cam.detect_device, detect_size=(cam.detect_width, cam.detect_height),
                                  fps=cam.fps)
    except NotCopyable as exc:
        raise CameraOpenError(f"camera.detect_device: the main stream must be H.264 or H.265: {exc}") from exc
    log.info("recording the main stream's own %s as it arrives (%dx%d, %.3g fps), detecting on %s (%dx%d)",
             CODEC_NAMES.get(camera.codec, camera.codec), camera.width, camera.height, camera.fps,
             camera.detect_shown, *camera.detect_source_size)
    return camera
