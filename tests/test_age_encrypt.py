"""edge.vault.age_encrypt writes standard age files: the real `age` CLI and pyrage both open them."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pyrage
import pytest

from edge.vault import age_encrypt
from edge.vault.age_encrypt import CHUNK, RecipientFormatError, encrypt, recipient_key

AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")
# Every place the STREAM chunking can go wrong: empty, tiny, one byte either side of each chunk boundary.
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 2 * CHUNK + 1, 5 * CHUNK + 12345]


@pytest.fixture(scope="module")
def identity() -> pyrage.x25519.Identity:
    return pyrage.x25519.Identity.generate()


@pytest.mark.skipif(AGE is None, reason="the age CLI is not installed")
@pytest.mark.parametrize("size", SIZES)
def test_the_age_cli_and_pyrage_decrypt_every_chunk_boundary(size: int, identity: pyrage.x25519.Identity,
                                                             tmp_path: Path) -> None:
    plain = os.urandom(size)
    sealed = bytes(encrypt(plain, recipient_key(str(identity.to_public()))))
    assert pyrage.decrypt(sealed, [identity]) == plain
    (tmp_path / "id.txt").write_text(f"{identity}\n")
    proc = subprocess.run([AGE, "-d", "-i", str(tmp_path / "id.txt")], input=sealed, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == plain


def test_ciphertext_size_is_the_age_formula(identity: pyrage.x25519.Identity) -> None:
    key = recipient_key(str(identity.to_public()))
    for size in SIZES:
        sealed = encrypt(os.urandom(size), key)
        header_end = sealed.index(b"\n---") + 1
        header_len = sealed.index(b"\n", header_end) + 1
        chunks = max(1, -(-size // CHUNK))
        assert len(sealed) == header_len + 16 + size + 16 * chunks


def test_header_follows_the_age_v1_grammar(identity: pyrage.x25519.Identity) -> None:
    sealed = encrypt(b"footage", recipient_key(str(identity.to_public())))
    lines = bytes(sealed).split(b"\n")
    assert lines[0] == b"age-encryption.org/v1"
    tag, kind, share = lines[1].split(b" ")
    assert (tag, kind) == (b"->", b"X25519")
    for encoded, raw_len in ((share, 32), (lines[2], 32)):
        assert len(encoded) == 43 and b"=" not in encoded  # canonical unpadded base64
        assert len(base64.b64decode(encoded + b"=")) == raw_len
    assert lines[3].startswith(b"--- ") and len(lines[3]) == 4 + 43


def test_every_file_has_fresh_keys_and_nonce(identity: pyrage.x25519.Identity) -> None:
    """Same plaintext twice: a new ephemeral share, a new payload nonce and a different payload."""
    key = recipient_key(str(identity.to_public()))
    a, b = (bytes(encrypt(b"\x00" * 1000, key)) for _ in range(2))
    header_a, header_b = a[: a.index(b"\n---")], b[: b.index(b"\n---")]
    assert header_a.split(b"\n")[1] != header_b.split(b"\n")[1]
    body_a, body_b = a[a.index(b"\n", a.index(b"\n---") + 1) + 1 :], b[b.index(b"\n", b.index(b"\n---") + 1) + 1 :]
    assert body_a[:16] != body_b[:16]
    assert body_a[16:] != body_b[16:]


def test_tampering_is_detected_by_the_reader(identity: pyrage.x25519.Identity) -> None:
    sealed = encrypt(os.urandom(3 * CHUNK), recipient_key(str(identity.to_public())))
    sealed[-CHUNK] ^= 0x01
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(bytes(sealed), [identity])
    truncated = encrypt(os.urandom(3 * CHUNK), recipient_key(str(identity.to_public())))[: -CHUNK - 16]
    with pytest.raises(pyrage.DecryptError):  # the last-chunk flag makes truncation at a chunk boundary visible
        pyrage.decrypt(bytes(truncated), [identity])


def test_a_memoryview_over_a_bytearray_is_accepted(identity: pyrage.x25519.Identity) -> None:
    plain = bytearray(os.urandom(CHUNK + 7))
    sealed = encrypt(memoryview(plain), recipient_key(str(identity.to_public())))
    assert pyrage.decrypt(bytes(sealed), [identity]) == plain


@pytest.mark.skipif(AGE_KEYGEN is None, reason="age-keygen is not installed")
def test_recipient_key_matches_age_keygen(tmp_path: Path) -> None:
    """The 32 bytes we decode are the key age-keygen derived: a file to that recipient opens with its identity."""
    subprocess.run([AGE_KEYGEN, "-o", str(tmp_path / "k.txt")], check=True, capture_output=True, timeout=30)
    recipient = subprocess.run([AGE_KEYGEN, "-y", str(tmp_path / "k.txt")], check=True, capture_output=True,
                               text=True, timeout=30).stdout.strip()
    ident = pyrage.x25519.Identity.from_str((tmp_path / "k.txt").read_text().splitlines()[-1])
    assert pyrage.decrypt(bytes(encrypt(b"hello", recipient_key(recipient))), [ident]) == b"hello"
    assert recipient_key(recipient.upper()) == recipient_key(recipient)


@pytest.mark.parametrize("text, why", [
    ("", "not an age X25519 recipient"),
    ("age1", "not an age X25519 recipient"),
    ("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", "not an age X25519 recipient"),
    ("age1bB3d", "mixed-case"),
    ("age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqb", "invalid Bech32 character"),
])
def test_malformed_recipients_are_refused(text: str, why: str) -> None:
    with pytest.raises(RecipientFormatError, match=why):
        recipient_key(text)


def test_a_single_changed_character_fails_the_checksum(identity: pyrage.x25519.Identity) -> None:
    text = str(identity.to_public())
    flipped = text[:10] + ("q" if text[10] != "q" else "p") + text[11:]
    with pytest.raises(RecipientFormatError, match="checksum"):
        recipient_key(flipped)


def test_a_recipient_of_the_wrong_length_is_refused() -> None:
    """A valid Bech32 string under the age prefix that holds 20 bytes, not 32."""
    five_bit = []
    acc = bits = 0
    for byte in bytes(20):
        acc, bits = acc << 8 | byte, bits + 8
        while bits >= 5:
            bits -= 5
            five_bit.append(acc >> bits & 31)
    if bits:
        five_bit.append(acc << (5 - bits) & 31)
    hrp = [ord(c) >> 5 for c in "age"] + [0] + [ord(c) & 31 for c in "age"]
    polymod = age_encrypt._bech32_polymod(hrp + five_bit + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = "age1" + "".join(age_encrypt._BECH32_ALPHABET[v] for v in five_bit + checksum)
    with pytest.raises(RecipientFormatError, match="holds 20 bytes"):
        recipient_key(text)


def test_a_low_order_recipient_is_refused() -> None:
    with pytest.raises(RecipientFormatError, match="low-order"):
        encrypt(b"footage", bytes(32))
