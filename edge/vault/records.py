"""What the vault hands out: one clip's metadata (ClipRecord) and one clip's check result (ClipCheck)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge import clock

STATUS_RECORDING = "recording"
STATUS_COMPLETE = "complete"
STATUS_RECOVERED = "recovered"
FINISHED = (STATUS_COMPLETE, STATUS_RECOVERED)


@dataclass(frozen=True)
class ClipRecord:
    id: str
    camera: str
    start: float
    end: float
    duration: float
    size: int  # ciphertext bytes on disk (segments)
    plaintext_size: int
    segments: int
    codec: str
    container: str
    digest: str  # SHA-256 hex binding all segment digests in order ("" while recording)
    motion_score: float
    held: bool
    clock_synced: bool
    status: str  # "complete" | "recovered" ("recording" only in listings that ask for it)
    extra: dict[str, Any] = field(default_factory=dict)
    hold_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["extra"] = dict(self.extra)
        out["start_iso"] = clock.iso(self.start)
        out["end_iso"] = clock.iso(self.end)
        return out


# Short codes for what can be wrong with a clip (the first word of each problem line).
PROBLEM_KINDS = ("tampered", "truncated", "missing", "extra", "reordered", "swapped", "bad-seal", "index")


@dataclass
class ClipCheck:
    clip_id: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)  # "<kind>: <what is wrong>"

    def fail(self, kind: str, message: str) -> None:
        self.ok = False
        self.problems.append(f"{kind}: {message}")

    @property
    def kinds(self) -> list[str]:
        return [p.split(":", 1)[0] for p in self.problems]

    def to_dict(self) -> dict[str, Any]:
        return {"clip_id": self.clip_id, "ok": self.ok, "problems": list(self.problems), "kinds": self.kinds}
