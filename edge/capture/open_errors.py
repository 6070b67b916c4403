"""Why a camera URL did not open, in words an owner can act on.

FFmpeg reports a wrong password as "Server returned 401 Unauthorized" and a mistyped host name as
"Input/output error". Installing an IP camera mostly fails on exactly these (credentials, the
maker's stream path, the address), so each gets a sentence that says what to check. Messages never
contain the URL's password (edge.redact.without_credentials).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from edge.capture.opencv_source import CameraOpenError, ffmpeg_options, is_stream_url
from edge.redact import without_credentials

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
_FFMPEG_ERRNO = re.compile(r"^\[Errno -?\d+\] ")
_ROUGH_URL = re.compile(r"^([^:/]*)://([^/?#]*)(.*)$", re.DOTALL)


@dataclass(frozen=True)
class UrlParts:
    host: str
    port: int | None
    credentials: bool
    after_host: str  # path, query and fragment


def _parts(url: str) -> UrlParts:
    """A URL's parts, also for one that urlsplit refuses (a raw "[" or "]" in a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        scheme, netloc, after = _ROUGH_URL.match(url).groups()  # type: ignore[union-attr]
        hostport = netloc.rpartition("@")[2]
        host, _, port_text = hostport.rpartition(":") if hostport.count(":") == 1 else (hostport, "", "")
        port = int(port_text) if port_text.isdigit() else None
    else:
        scheme, netloc, after = parts.scheme, parts.netloc, parts.path + parts.query + parts.fragment
        host = parts.hostname or ""
        try:
            port = parts.port
        except ValueError:  # "user:pass" read as a host and port, when a raw "#" cut the URL short
            port = None
    return UrlParts(host, port or DEFAULT_PORTS.get(scheme), "@" in netloc, after)


# What the resolver said of a stream URL's host name (check_host, _lookup_problem).
NO_SUCH_HOST = "no such host"
NO_DNS_ANSWER = "no DNS answer"
# The resolver's "try again later": no DNS server could be reached, or none answered in time.
_TEMPORARY = {socket.EAI_AGAIN}


def check_host(device: str, wait: float) -> None:
    """Before FFmpeg is given a stream URL: CameraOpenError when its host name does not resolve within
    `wait` s. FFmpeg's own lookup cannot be interrupted by its timeouts: with a DNS server that never
    answers it takes 10 s or more (the resolver tries twice, 5 s each), past a reconnect's attempts
    and a stop's budget. An address in the URL is not looked up."""
    parts = _parts(device)
    host = parts.host
    if not host or _is_address(host) or "@" in parts.after_host:  # "@" after the host: not its real name
        return
    problem = _lookup_problem(host, wait)
    if problem is not None:
        raise CameraOpenError(f"{without_credentials(device)}: cannot open as a video source: "
                              f"{_LOOKUP_FAILURES[problem].format(host=host)}")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_LOOKUP_FAILURES = {
    NO_SUCH_HOST: "cannot find the host {host!r} (the name does not resolve); check the address",
    NO_DNS_ANSWER: ("cannot look up the host {host!r}: no DNS server answered; check this machine's network, or "
                    "put the camera's IP address in the URL"),
}


def _lookup_problem(host: str, wait: float) -> str | None:
    """NO_SUCH_HOST when the resolver says the name does not exist, NO_DNS_ANSWER when it could not
    ask (no DNS server reachable: the router rebooting, this machine off the network) or had no
    answer within `wait` s; None when the name resolves."""
    answer: list[str | None] = []

    def ask() -> None:
        try:
            socket.getaddrinfo(host, None)
            answer.append(None)
        except socket.gaierror as exc:
            answer.append(NO_DNS_ANSWER if exc.errno in _TEMPORARY else NO_SUCH_HOST)
        except (OSError, UnicodeError):  # UnicodeError: not a valid host name at all
            answer.append(NO_SUCH_HOST)

    worker = threading.Thread(target=ask, name="resolve", daemon=True)
    worker.start()
    worker.join(wait)  # a lookup still going on then is left to end by itself
    return answer[0] if answer else NO_DNS_ANSWER


def open_container(device: str, timeouts: tuple[float, float]) -> Any:
    """PyAV's container for a file or stream URL, opened with our input options (ffmpeg_options);
    CameraOpenError saying why when it does not open."""
    import av

    if is_stream_url(device):
        check_host(device, timeouts[0])
    try:
        return av.open(device, options=ffmpeg_options(device), timeout=timeouts)
    except (av.FFmpegError, UnicodeDecodeError, OSError) as exc:
        raise CameraOpenError(f"{without_credentials(device)}: cannot open as a video source: "
                              f"{open_failure(device, exc, timeouts[0])}") from None


def open_failure(device: str, exc: BaseException, timeout: float) -> str:
    """Why PyAV could not open `device` (a file or a URL; `exc` its exception, `timeout` the open
    timeout in seconds), without the URL's password (_url_failure names only the host)."""
    if not is_stream_url(device):
        return _plain(exc)
    try:
        return _url_failure(device, exc, timeout)
    except Exception:  # a reason must never turn into another error
        return _plain(exc)


def _plain(exc: BaseException) -> str:
    return without_credentials(_FFMPEG_ERRNO.sub("", str(getattr(exc, "strerror", None) or exc)))


def _url_failure(url: str, exc: BaseException, timeout: float) -> str:
    import av

    parts = _parts(url)
    host, port = parts.host, parts.port
    if "@" in parts.after_host:
        return ("the URL has an \"@\" after its host; a user name or password with / # ? or % in it must be "
                "percent-encoded (/ is %2F, # is %23, ? is %3F, % is %25, @ is %40)")
    if isinstance(exc, av.HTTPUnauthorizedError):
        if parts.credentials:
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
    if isinstance(exc, (TimeoutError, av.ExitError)):  # ExitError: PyAV's open timeout interrupted FFmpeg
        return f"no answer from {host} within {timeout:.2g} s; is the camera on and reachable from here?"
    if isinstance(exc, av.InvalidDataError):
        return (f"{host} took the connection but sent nothing that opens as video within {timeout:.2g} s (the "
                "wrong port or path, or a camera still starting?)")
    return _plain(exc)
