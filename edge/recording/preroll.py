"""Pre-roll: the last few seconds of ENCODED packets, in RAM only, always starting at a keyframe."""

from __future__ import annotations

import dataclasses
from collections import deque

from edge.capture.frames import EncodedPacket


class PreRoll:
    # Packets are small objects with their own overhead: a static scene gives P-frames of a few
    # dozen bytes, so bytes alone do not bound RAM. 10 000 is minutes of video at camera rates,
    # far more than any pre-roll needs.
    MAX_PACKETS = 10_000

    def __init__(self, seconds: float, *, max_bytes: int = 64 * 1024 * 1024, max_packets: int = MAX_PACKETS) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.max_packets = max_packets
        self._packets: deque[EncodedPacket] = deque()
        self._bytes = 0
        # Absolute positions (push counter) of the keyframes in the ring, so finding the next
        # keyframe is O(1) however long a GOP is.
        self._first = 0  # absolute position of self._packets[0]
        self._keyframes: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def size(self) -> int:
        return self._bytes

    def push(self, pkt: EncodedPacket, *, keep: float) -> None:
        """Add a packet; forget whole GOPs older than `keep` seconds before this packet."""
        if not self._packets and not pkt.keyframe:
            return  # nothing decodes before the first keyframe
        if pkt.keyframe:
            self._keyframes.append(self._first + len(self._packets))
        self._packets.append(pkt)
        self._bytes += len(pkt.data)
        self._trim(pkt.time - keep)

    def shift(self, step: float) -> None:
        """The wall clock was stepped (the recorder sees it in its frames' times): move the held
        packets' times by the same step. Otherwise a pre-roll counted back from an event after a
        step back would start anywhere in what was held before it, and nothing held would be
        forgotten until the clock caught up again."""
        self._packets = deque(dataclasses.replace(p, time=p.time + step) for p in self._packets)

    def _over_cap(self) -> bool:
        return self._bytes > self.max_bytes or len(self._packets) > self.max_packets

    def _trim(self, horizon: float) -> None:
        # Drop the oldest GOP while the NEXT keyframe is still at or before the horizon (so the
        # ring always starts at the last keyframe at or before it), or while over a cap.
        while True:
            nxt = self._next_keyframe_index()
            if nxt is None:
                if self._over_cap():
                    # One GOP larger than a cap (a camera that stopped sending keyframes): drop it
                    # all, or RAM grows without bound. The ring restarts at the next keyframe.
                    self.clear()
                return
            if self._packets[nxt].time <= horizon or self._over_cap():
                for _ in range(nxt):
                    self._bytes -= len(self._packets.popleft().data)
                self._first += nxt
                self._keyframes.popleft()
            else:
                return

    def _next_keyframe_index(self) -> int | None:
        return self._keyframes[1] - self._first if len(self._keyframes) > 1 else None

    def since(self, start: float) -> list[EncodedPacket]:
        """Packets from the last keyframe at or before `start` (or the oldest keyframe held)."""
        pkts = list(self._packets)
        begin = 0
        for i, p in enumerate(pkts):
            if p.keyframe and p.time <= start:
                begin = i
        return pkts[begin:]

    def clear(self) -> None:
        self._first += len(self._packets)
        self._packets.clear()
        self._keyframes.clear()
        self._bytes = 0
