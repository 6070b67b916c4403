"""Why a camera URL did not open, in words an owner can act on.

FFmpeg reports a wrong password as "Server returned 401 Unauthorized" and a mistyped host name as
"Input/output error". Installing an IP camera mostly fails on exactly these (credentials, the
maker's stream path, the address), so each gets a sentence that says what to check. Messages never
contain the URL's password (edge.capture.opencv_source.without_credentials).
"""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

from edge.capture.opencv_source import ffmpeg_options, is_stream_url, without_credentials

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
_FFMPEG_ERRNO = re.compile(r"^\[Errno -?\d+\] ")


def has_credentials(url: str) -> bool:
    return "@" in urlsplit(url).netloc


def _host_port(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port or DEFAULT_PORTS.get(parts.scheme)


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def why_url_does_not_open(url: str, timeout: float = 4.0) -> str | None:
    """Open `url` with FFmpeg only to learn why it fails (None: it opens)."""
    import av

    try:
        av.open(url, options=ffmpeg_options(url), timeout=(timeout, timeout)).close()
    except (av.FFmpegError, UnicodeDecodeError, OSError) as exc:
        return open_failure(url, exc, timeout)
    return None


def open_failure(device: str, exc: BaseException, timeout: float) -> str:
    """Why PyAV could not open `device` (a file or a URL; `exc` its exception, `timeout` the open
    timeout in seconds), without the URL's password (url_failure names only the host)."""
    return url_failure(device, exc, timeout) if is_stream_url(device) else _plain(exc)


def _plain(exc: BaseException) -> str:
    return without_credentials(_FFMPEG_ERRNO.sub("", str(getattr(exc, "strerror", None) or exc)))


def url_failure(url: str, exc: BaseException, timeout: float) -> str:
    import av

    host, port = _host_port(url)
    parts = urlsplit(url)
    if "@" in parts.path + parts.query:
        return ("the URL has an \"@\" after its host; a user name or password with @ / : # ? or % in it must be "
                "percent-encoded (@ is %40, / is %2F, : is %3A)")
    if isinstance(exc, av.HTTPUnauthorizedError):
        if has_credentials(url):
            return ("the camera refused the user name or password in the URL (401 Unauthorized); check them, and "
                    "percent-encode @ : / # ? and % in them (@ is %40)")
        return ("the camera wants a user name and password (401 Unauthorized): put them in the URL, as in "
                "rtsp://USER:PASSWORD@host/path")
    if isinstance(exc, av.HTTPForbiddenError):
        return "the camera refused this user the stream (403 Forbidden); check the user's rights on the camera"
    if isinstance(exc, av.HTTPNotFoundError):
        return ("the camera has no stream at this path (404 Not Found); the path differs from maker to maker: see the "
                "camera's manual or its ONVIF stream address")
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing accepts connections at {host} port {port} (connection refused); check the address and port"
    if isinstance(exc, TimeoutError):
        return f"no answer from {host} within {timeout:g} s; is the camera on and reachable from here?"
    if isinstance(exc, OSError) and host and not _resolves(host):
        return f"cannot find the host {host!r} (the name does not resolve); check the address"
    if isinstance(exc, av.InvalidDataError):
        return (f"{host} took the connection but sent nothing that opens as video within {timeout:g} s (the "
                "wrong port or path, or a camera still starting?)")
    return _plain(exc)
