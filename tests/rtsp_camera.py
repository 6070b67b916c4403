"""A small RTSP camera for the tests: serves an H.264 or H.265 file the way IP cameras do, to FFmpeg's
real RTSP client on loopback.

RTSP 1.0 (OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN), RTP over the RTSP connection
("interleaved", what FFmpeg asks for first with `rtsp_flags=prefer_tcp`), payloads as RFC 6184 (H.264) and RFC 7798
(H.265) describe them: one NAL unit per RTP packet, or fragmentation units (FU-A; H.265 FU) for
larger ones, the marker bit on the last packet of each picture, a 90 kHz clock. The SDP carries the
parameter sets (sprop-parameter-sets; sprop-vps/sps/pps); with `in_band_parameter_sets=False` they
are left out of the stream itself, as some cameras do.
Pictures are sent at `speed` times real time, once per connection, then the connection is closed.

It can also be a camera that sends RTP over UDP only (`udp_only`: a SETUP asking for TCP gets
461 Unsupported Transport, then RTP goes to the client's UDP port on loopback). Like most cameras it
can ask for a user name and password (`credentials`; Digest in RFC 2069's
form or RFC 2617's with qop=auth, or Basic) and can hold its clients to the session timeout it announces
(`session_timeout`: a connection that sends no request for that long while playing is closed, as
strict cameras do to clients that never send keep-alives). Any path but /cam is 404 Not Found
(/private: 403 Forbidden).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av

MAX_PAYLOAD = 1400
REALM = "consentcam test camera"
_AUTH_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


@dataclass(frozen=True)
class Codec:
    name: str  # FFmpeg's
    rtp_name: str
    header: int  # bytes of a NAL unit header
    parameter_sets: tuple[int, ...]  # NAL unit types, in the order the SDP lists them

    def nal_type(self, nal: bytes) -> int:
        return nal[0] & 0x1F if self.header == 1 else (nal[0] >> 1) & 0x3F

    def fragment_header(self, nal: bytes, first: bool, last: bool) -> bytes:
        """The payload header and FU header of a fragment of `nal` (FU-A, RFC 6184; FU, RFC 7798)."""
        flags = (0x80 if first else 0) | (0x40 if last else 0)
        if self.header == 1:
            return bytes([(nal[0] & 0xE0) | 28, flags | (nal[0] & 0x1F)])
        return bytes([(nal[0] & 0x81) | (49 << 1), nal[1], flags | self.nal_type(nal)])

    def fmtp(self, sets: list[bytes]) -> str:
        b64 = [base64.b64encode(n).decode() for n in sets]
        if self.header == 1:
            return f"packetization-mode=1;profile-level-id={sets[0][1:4].hex()};sprop-parameter-sets={','.join(b64)}"
        return f"sprop-vps={b64[0]};sprop-sps={b64[1]};sprop-pps={b64[2]}"


CODECS = {"h264": Codec("h264", "H264", 1, (7, 8)), "hevc": Codec("hevc", "H265", 2, (32, 33, 34))}


@dataclass
class AccessUnit:
    pts: int  # 90 kHz
    nals: list[bytes]


def split_nals(data: bytes) -> list[bytes]:
    """NAL units of an Annex B access unit, without their start codes."""
    out, starts = [], []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    for k, s in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        nal = data[s:end]
        if k + 1 < len(starts) and nal.endswith(b"\x00"):
            nal = nal[:-1]  # the leading zero of a four-byte start code
        if nal:
            out.append(nal)
    return out


def read_access_units(path: Path) -> tuple[Codec, list[AccessUnit]]:
    """An Annex B file (MPEG-TS) as access units in decoding order, with their 90 kHz presentation
    times (what RTP carries)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = CODECS[stream.codec_context.name]
        scale = stream.time_base * 90_000
        units = [AccessUnit(round(p.pts * scale), split_nals(bytes(p))) for p in container.demux(stream) if p.size]
    first = units[0].pts
    return codec, [AccessUnit(u.pts - first, u.nals) for u in units]


def rtp_packets(codec: Codec, unit: AccessUnit, seq: int) -> tuple[list[bytes], int]:
    """RTP packets (single NAL units and fragmentation units) of one access unit; returns the next seq."""
    payloads: list[bytes] = []
    for nal in unit.nals:
        if len(nal) <= MAX_PAYLOAD:
            payloads.append(nal)
            continue
        body = nal[codec.header:]
        size = MAX_PAYLOAD - codec.header - 1
        chunks = [body[i:i + size] for i in range(0, len(body), size)]
        for n, chunk in enumerate(chunks):
            payloads.append(codec.fragment_header(nal, n == 0, n == len(chunks) - 1) + chunk)
    out = []
    for n, payload in enumerate(payloads):
        marker = 0x80 if n == len(payloads) - 1 else 0
        header = struct.pack("!BBHII", 0x80, marker | 96, seq & 0xFFFF, unit.pts & 0xFFFFFFFF, 0x5EC0C0A1)
        out.append(header + payload)
        seq += 1
    return out, seq


class RtspCamera:
    def __init__(self, video: Path, *, speed: float = 4.0, in_band_parameter_sets: bool = True,
                 sessions: int | None = None, silent_after: int | None = None,
                 credentials: tuple[str, str] | None = None, auth: str = "digest",
                 session_timeout: float | None = None, udp_only: bool = False,
                 hang_after: int | None = None) -> None:
        # sessions: how many connections are served; later ones are closed at once (a camera gone).
        # silent_after: connections after this many answer PLAY and then send nothing (a camera booting)
        # credentials: (user, password) every request must carry, by `auth`: "digest" (RFC 2069 form),
        # "digest-qop" (RFC 2617, qop=auth) or "basic"
        # session_timeout: announced in SETUP and enforced while playing (None: 60 s, not enforced)
        # udp_only: RTP over UDP to the client's ports only; a SETUP asking for TCP gets 461 (as old cameras)
        # hang_after: after this many pictures the camera stalls, its connection left open (a frozen camera)
        self.codec, self.units = read_access_units(video)
        codec = self.codec
        first = {codec.nal_type(n): n for n in self.units[0].nals}
        self.parameter_sets = [first[t] for t in codec.parameter_sets]
        if not in_band_parameter_sets:
            self.units = [AccessUnit(u.pts, [n for n in u.nals if codec.nal_type(n) not in codec.parameter_sets])
                          for u in self.units]
        self.speed = speed
        self.sessions = sessions
        self.silent_after = silent_after
        self.credentials, self.auth = credentials, auth
        self.session_timeout = session_timeout
        self.udp_only = udp_only
        self.hang_after = hang_after
        self.transports: list[str] = []  # "tcp" or "udp", per PLAY
        self._udp_to: tuple[str, int] | None = None
        self.nonce = secrets.token_hex(16)
        self.connections = 0
        self.requests: list[str] = []  # those that were answered, not refused
        self.refused = 0  # requests answered 401
        self.expired = 0  # connections closed for want of a keep-alive
        self.sent_units = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.url = f"rtsp://127.0.0.1:{self._server.getsockname()[1]}/cam"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                if self.sessions is not None and self.connections > self.sessions:
                    continue
                conn.settimeout(0.2)
                with contextlib.suppress(OSError):
                    self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        buf = b""
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            request, buf = self._read_request(conn, buf)
            if request is None:
                return
            method, headers = request
            cseq = headers.get("cseq", "0")
            if not self._authorized(method, headers):
                self.refused += 1
                challenge = {"digest": f'Digest realm="{REALM}", nonce="{self.nonce}"',
                             "digest-qop": f'Digest realm="{REALM}", nonce="{self.nonce}", qop="auth"',
                             "basic": f'Basic realm="{REALM}"'}[self.auth]
                conn.sendall(f"RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: {challenge}\r\n\r\n"
                             .encode())
                continue
            self.requests.append(method)
            if method == "DESCRIBE" and not headers[":uri"].endswith("/cam"):
                status = "403 Forbidden" if headers[":uri"].endswith("/private") else "404 Not Found"
                conn.sendall(f"RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n\r\n".encode())
                continue
            if method == "DESCRIBE":
                sdp = self._sdp().encode()
                self._reply(conn, cseq, f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n"
                                        f"Content-Length: {len(sdp)}\r\n", sdp)
            elif method == "SETUP":
                transport = self._transport(conn, headers.get("transport", ""))
                if transport is None:
                    conn.sendall(f"RTSP/1.0 461 Unsupported Transport\r\nCSeq: {cseq}\r\n\r\n".encode())
                    continue
                self._reply(conn, cseq, f"Transport: {transport}\r\n"
                                        f"Session: 5EC0C0A1;timeout={round(self.session_timeout or 60)}\r\n")
            elif method == "PLAY":
                self._reply(conn, cseq, f"Session: 5EC0C0A1\r\nRange: npt=0.000-\r\nRTP-Info: url={self.url}/track1;"
                                        "seq=0;rtptime=0\r\n")
                if self.silent_after is not None and self.connections > self.silent_after:
                    self._silent(conn)
                else:
                    self._stream(conn)
                return
            elif method == "TEARDOWN":
                self._reply(conn, cseq, "Session: 5EC0C0A1\r\n")
                return
            else:  # OPTIONS, GET_PARAMETER
                self._reply(conn, cseq, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\r\n")

    def _transport(self, conn: socket.socket, asked: str) -> str | None:
        """The Transport reply to a SETUP (None: 461). TCP: interleaved on this connection; UDP (only
        when udp_only): to the client's RTP port on its own address."""
        self._udp_to = None
        if "/TCP" in asked.upper():
            return None if self.udp_only else "RTP/AVP/TCP;unicast;interleaved=0-1"
        ports = re.search(r"client_port=(\d+)-(\d+)", asked)
        if not self.udp_only or ports is None:
            return None
        self._udp_to = (conn.getpeername()[0], int(ports[1]))
        return f"RTP/AVP;unicast;client_port={ports[1]}-{ports[2]};server_port=49170-49171"

    def _authorized(self, method: str, headers: dict[str, str]) -> bool:
        if self.credentials is None:
            return True
        user, password = self.credentials
        scheme, _, rest = headers.get("authorization", "").partition(" ")
        if self.auth == "basic":
            expected = base64.b64encode(f"{user}:{password}".encode()).decode()
            return scheme.lower() == "basic" and rest.strip() == expected
        fields = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _AUTH_FIELD.finditer(rest)}
        if scheme.lower() != "digest" or fields.get("username") != user or fields.get("nonce") != self.nonce:
            return False
        if fields.get("realm") != REALM or fields.get("uri") != headers.get(":uri"):
            return False
        if (self.auth == "digest-qop") != (fields.get("qop") == "auth"):
            return False  # RFC 2617's qop form exactly when it was offered, RFC 2069's otherwise

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1, ha2 = md5(f"{user}:{REALM}:{password}"), md5(f"{method}:{fields.get('uri', '')}")
        if fields.get("qop"):
            expected = md5(f"{ha1}:{self.nonce}:{fields.get('nc')}:{fields.get('cnonce')}:{fields['qop']}:{ha2}")
        else:
            expected = md5(f"{ha1}:{self.nonce}:{ha2}")
        return fields.get("response") == expected

    def _read_request(self, conn: socket.socket, buf: bytes) -> tuple[tuple[str, dict[str, str]] | None, bytes]:
        while b"\r\n\r\n" not in buf:
            if self._stop.is_set():
                return None, buf
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return None, buf
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(buf) < length:
            buf += conn.recv(4096)
        method, _, rest = lines[0].partition(" ")
        headers[":uri"] = rest.rsplit(" ", 1)[0]  # the request line's URL (never a real header name)
        return (method, headers), buf[length:]

    @staticmethod
    def _reply(conn: socket.socket, cseq: str, headers: str, body: bytes = b"") -> None:
        conn.sendall(f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{headers}\r\n".encode() + body)

    def _sdp(self) -> str:
        return ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=consentcam test camera\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                f"a=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 {self.codec.rtp_name}/90000\r\n"
                f"a=fmtp:96 {self.codec.fmtp(self.parameter_sets)}\r\na=control:track1\r\n")

    def _silent(self, conn: socket.socket) -> None:
        """Playing, in name only: nothing is sent until the client goes away."""
        while not self._stop.is_set():
            try:
                if not conn.recv(4096):
                    return
            except TimeoutError:
                continue

    def _stream(self, conn: socket.socket) -> None:
        """Every access unit at its time (divided by speed), then the camera goes away."""
        conn.setblocking(True)
        start = last_request = time.monotonic()
        seq, incoming = 0, b""
        self.transports.append("udp" if self._udp_to is not None else "tcp")
        with contextlib.ExitStack() as stack:
            udp = None
            if self._udp_to is not None:
                udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            self._send_units(conn, udp, start, last_request, seq, incoming)

    def _send_units(self, conn: socket.socket, udp: socket.socket | None, start: float, last_request: float,
                    seq: int, incoming: bytes) -> None:
        for unit in self.units:
            if self.hang_after is not None and self.sent_units >= self.hang_after:
                self._silent(conn)
                return
            delay = start + unit.pts / 90_000 / self.speed - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            incoming, answered = self._answer_while_playing(conn, incoming)
            if answered:
                last_request = time.monotonic()
            elif self.session_timeout is not None and time.monotonic() - last_request > self.session_timeout:
                self.expired += 1  # no keep-alive within the session timeout: the session is over
                return
            packets, seq = rtp_packets(self.codec, unit, seq)
            if udp is not None:
                for packet in packets:
                    udp.sendto(packet, self._udp_to)
            else:
                conn.sendall(b"".join(b"$\x00" + struct.pack("!H", len(p)) + p for p in packets))
            self.sent_units += 1

    def _answer_while_playing(self, conn: socket.socket, buf: bytes) -> tuple[bytes, int]:
        """Reads what the client sent without waiting: interleaved RTCP ("$" frames) is dropped,
        keep-alive requests are answered. Returns what is left unparsed and how many were answered."""
        with contextlib.suppress(BlockingIOError):
            buf += conn.recv(65536, socket.MSG_DONTWAIT)
        answered = 0
        while buf:
            if buf[:1] == b"$":
                if len(buf) < 4 or len(buf) < 4 + struct.unpack("!H", buf[2:4])[0]:
                    break
                buf = buf[4 + struct.unpack("!H", buf[2:4])[0]:]
                continue
            if b"\r\n\r\n" not in buf:
                break
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers = {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines[1:])}
            method, _, rest = lines[0].partition(" ")
            headers[":uri"] = rest.rsplit(" ", 1)[0]
            if not self._authorized(method, headers):
                self.refused += 1
                conn.sendall(f"RTSP/1.0 401 Unauthorized\r\nCSeq: {headers.get('cseq', '0')}\r\n\r\n".encode())
                continue
            self.requests.append(method)
            self._reply(conn, headers.get("cseq", "0"), "Session: 5EC0C0A1\r\n")
            answered += 1
        return buf, answered
