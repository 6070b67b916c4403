"""Exceptions that carry a clear, one-line message for the owner and a process exit code."""

from __future__ import annotations


class ConsentcamError(Exception):
    """Base class: the message is shown as one line on stderr; exit_code is the process status."""

    exit_code = 1


class ConfigError(ConsentcamError):
    exit_code = 78  # EX_CONFIG


class StateError(ConsentcamError):
    """The state directory is missing, incomplete or has wrong permissions."""

    exit_code = 3


class PassphraseError(ConsentcamError):
    """Wrong passphrase or unreadable owner key. Nothing was changed."""

    exit_code = 4


class NotFoundError(ConsentcamError):
    exit_code = 5


class IntegrityError(ConsentcamError):
    """Stored data failed an integrity check (tampered, truncated, swapped)."""

    exit_code = 6


class StorageFullError(ConsentcamError):
    exit_code = 7


class ProtocolError(ConsentcamError):
    """A message failed validation. Carries a short machine-readable reason for the audit log."""

    exit_code = 8

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
