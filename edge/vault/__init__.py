"""Encrypted clip storage: segments in the age format, device-signed seals, a SQLite index.

See docs/VAULT.md for the on-disk format, crash semantics and retention rules.
"""

from edge.vault.index import IndexCorruptError
from edge.vault.records import ClipCheck, ClipRecord
from edge.vault.vault import ClipBusyError, Vault
from edge.vault.writer import ClipWriter

__all__ = ["ClipBusyError", "ClipCheck", "ClipRecord", "ClipWriter", "IndexCorruptError", "Vault"]
