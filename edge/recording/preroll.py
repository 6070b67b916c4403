"""Pre-roll: the last few seconds of ENCODED packets, in RAM only, always starting at a keyframe."""

from __future__ import annotations

from collections import deque

from edge.capture.frames import EncodedPacket


class PreRoll:
    def __init__(self, seconds: float, *, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._packets: deque[EncodedPacket] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def size(self) -> int:
        return self._bytes

    def push(self, pkt: EncodedPacket, *, keep: float) -> None:
        """Add a packet; forget whole GOPs older than `keep` seconds before this packet."""
        if not self._packets and not pkt.keyframe:
            return  # nothing decodes before the first keyframe
        self._packets.append(pkt)
        self._bytes += len(pkt.data)
        self._trim(pkt.time - keep)

    def _trim(self, horizon: float) -> None:
        # Drop the oldest GOP while the NEXT keyframe is still at or before the horizon (so the
        # ring always starts at the last keyframe at or before it), or while over the byte cap.
        while True:
            nxt = self._next_keyframe_index()
            if nxt is None:
                if self._bytes > self.max_bytes:
                    # One GOP larger than the cap (a camera that stopped sending keyframes): drop it
                    # all, or RAM grows without bound. The ring restarts at the next keyframe.
                    self.clear()
                return
            if self._packets[nxt].time <= horizon or self._bytes > self.max_bytes:
                for _ in range(nxt):
                    self._bytes -= len(self._packets.popleft().data)
            else:
                return

    def _next_keyframe_index(self) -> int | None:
        for i in range(1, len(self._packets)):
            if self._packets[i].keyframe:
                return i
        return None

    def since(self, start: float) -> list[EncodedPacket]:
        """Packets from the last keyframe at or before `start` (or the oldest keyframe held)."""
        pkts = list(self._packets)
        begin = 0
        for i, p in enumerate(pkts):
            if p.keyframe and p.time <= start:
                begin = i
        return pkts[begin:]

    def clear(self) -> None:
        self._packets.clear()
        self._bytes = 0
