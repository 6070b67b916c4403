"""Frame sources: picamera2 (Raspberry Pi), opencv (webcams, IP cameras, files), synthetic."""

from edge.capture.frames import PTS_HZ, Camera, CapturedFrame, EncodedPacket

__all__ = ["PTS_HZ", "Camera", "CapturedFrame", "EncodedPacket"]
