"""Keeping camera passwords out of messages, logs and the status file.

Camera URLs carry the camera's password (rtsp://user:password@host/...), and messages end up in
the journal and the status file. `without_credentials(text)` hides every URL's user:password part,
and password-like query values (`...cgi?user=admin&pwd=...`). A password typed raw with quotes or
spaces in it defeats any pattern, so the credentials of camera URLs are also remembered
(`remember_credentials`, called with camera.device when the config is loaded, and with every URL a
source opens) and hidden wherever they appear before an "@" later, e.g. quoted inside FFmpeg's own
messages. Light on purpose: the log formatters use it on every line.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote

_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
# Up to the URL's last "@": a password typed with a raw "@" or "/" in it must not half survive (a
# path with an "@" in it is hidden as well; safe, if less helpful).
_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^\s'\"]+@")
_QUERY_SECRET = re.compile(r"([?&](?:password|passwd|pwd|pass)=)[^&\s'\"]*", re.IGNORECASE)
_known: set[str] = set()  # "user:password" parts of camera URLs, raw and percent-decoded
_longest_first: tuple[str, ...] = ()  # _known, sorted once per addition, not on every log line
_lock = threading.Lock()


def remember_credentials(url: str) -> None:
    """If `url` is a whole URL with a user:password part (nothing but a host and path after its last
    "@"), remember that part, whatever characters it holds."""
    scheme = _SCHEME.match(url)
    at = url.rfind("@")
    if scheme is None or at <= scheme.end() or any(c.isspace() for c in url[at:]):
        return
    secret = url[scheme.end():at]
    if ":" not in secret or secret.endswith(":"):
        return  # a user name alone is not secret, and hiding it everywhere would garble messages
    global _longest_first
    with _lock:
        if {secret, unquote(secret)} <= _known:
            return
        _known.update({secret, unquote(secret)})
        _longest_first = tuple(sorted(_known, key=len, reverse=True))


def without_credentials(text: str) -> str:
    """`text` with the user:password of any URL in it, and password= query values, replaced by ***."""
    remember_credentials(text)
    for secret in _longest_first:  # a tuple, replaced whole: safe to read without the lock
        text = text.replace(secret + "@", "***@")
    text = _CREDENTIALS.sub(r"\1***@", text)
    return _QUERY_SECRET.sub(r"\1***", text)
