"""edge.vault.age_encrypt writes standard age files: the real `age` CLI and pyrage both open them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

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


# -- An independent reader, written from the age v1 spec (C2SP age.md) for these tests only --------------
# It shares no code with edge.vault.age_encrypt: its own Bech32, its own HKDF (RFC 5869 on the standard
# library's HMAC); only X25519 and ChaCha20-Poly1305 come from `cryptography`. Unlike pyrage and the age CLI
# it checks every rule of the spec on the files we write, strictly, and says which one broke.

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
# A pair made by age-keygen 1.1.1 for these tests (a test key, nothing is encrypted to it).
KAT_IDENTITY = "AGE-SECRET-KEY-1FRVERVMJJEPUPJU5PQJM4ZW6FPQWGDGRY4TQ49NCL9ZFNZGSD4WS092WF2"
KAT_RECIPIENT = "age1l9k4mjzhx3rz4wncc36elqgsgrvpxfglkt0z8q3zdw356pdkaetsjev7zu"


def _polymod(values: list[int]) -> int:
    generators = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            chk ^= generators[i] if (b >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _bech32_encode(hrp: str, groups: list[int], constant: int = 1) -> str:
    pm = _polymod(_hrp_expand(hrp) + groups + [0] * 6) ^ constant
    return hrp + "1" + "".join(_CHARSET[g] for g in groups + [(pm >> 5 * (5 - i)) & 31 for i in range(6)])


def _to_groups(data: bytes) -> list[int]:
    """8-bit bytes to 5-bit groups, zero-padded at the end (BIP-173 convertbits with padding)."""
    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    return [int(bits[i : i + 5], 2) for i in range(0, len(bits), 5)]


def _bech32_decode(text: str) -> tuple[str, bytes]:
    assert text == text.lower() or text == text.upper()
    text = text.lower()
    hrp, data = text[: text.rindex("1")], [_CHARSET.index(c) for c in text[text.rindex("1") + 1 :]]
    assert _polymod(_hrp_expand(hrp) + data) == 1
    bits = "".join(f"{g:05b}" for g in data[:-6])
    assert len(bits) % 8 < 5 and set(bits[len(bits) - len(bits) % 8 :]) <= {"0"}
    return hrp, bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits) - len(bits) % 8, 8))


def _hkdf_sha256(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()  # RFC 5869: no salt = HashLen zeros
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()  # 32 bytes: T(1) is all of it


def _canonical_b64(text: bytes, length: int) -> bytes:
    assert set(text) <= set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"), text
    raw = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    assert len(raw) == length and base64.b64encode(raw).rstrip(b"=") == text, "non-canonical base64"
    return raw


def _spec_decrypt(sealed: bytes, identity: str) -> tuple[bytes, list[bytes]]:
    """Plaintext and the 12-byte nonce of every payload chunk, asserting each rule of age v1 on the way."""
    hrp, secret = _bech32_decode(identity)
    assert hrp == "age-secret-key-" and len(secret) == 32
    me = X25519PrivateKey.from_private_bytes(secret)
    my_public = me.public_key().public_bytes_raw()
    lines, pos = [], 0
    while not (lines and lines[-1].startswith(b"--- ")):
        end = sealed.index(b"\n", pos)
        lines.append(sealed[pos:end])
        pos = end + 1
    assert lines[0] == b"age-encryption.org/v1"
    args = lines[1].split(b" ")
    assert args[:2] == [b"->", b"X25519"] and len(args) == 3, "one X25519 stanza with exactly two arguments"
    share = _canonical_b64(args[2], 32)
    body_lines = lines[2:-1]
    assert all(len(line) == 64 for line in body_lines[:-1]) and len(body_lines[-1]) < 64, "64-column wrapping"
    body = _canonical_b64(b"".join(body_lines), 32)  # file key + tag: exactly 32 bytes
    shared = me.exchange(X25519PublicKey.from_public_bytes(share))
    assert any(shared)
    wrap_key = _hkdf_sha256(shared, share + my_public, b"age-encryption.org/v1/X25519")
    file_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), body, None)
    assert len(file_key) == 16
    mac_line = lines[-1]
    assert len(mac_line) == 4 + 43
    mac = _canonical_b64(mac_line[4:], 32)
    header_upto_dashes = sealed[: pos - 1 - 44]  # everything before " <MAC>\n"
    assert header_upto_dashes.endswith(b"\n---")
    expected = hmac.new(_hkdf_sha256(file_key, b"", b"header"), header_upto_dashes, hashlib.sha256).digest()
    assert hmac.compare_digest(mac, expected), "header MAC"
    payload_nonce, payload = sealed[pos : pos + 16], sealed[pos + 16 :]
    assert len(payload_nonce) == 16
    aead = ChaCha20Poly1305(_hkdf_sha256(file_key, payload_nonce, b"payload"))
    plain, nonces, counter = bytearray(), [], 0
    while True:
        chunk, payload = payload[: CHUNK + 16], payload[CHUNK + 16 :]
        last = not payload
        nonce = counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        piece = aead.decrypt(nonce, chunk, None)  # a wrong counter or flag fails authentication
        assert last or len(piece) == CHUNK
        assert piece or (last and counter == 0), "the final chunk is empty but the payload is not"
        plain += piece
        nonces.append(nonce)
        counter += 1
        if last:
            return bytes(plain), nonces


@pytest.mark.parametrize("size", SIZES)
def test_files_obey_every_rule_of_the_spec(size: int) -> None:
    plain = os.urandom(size)
    got, nonces = _spec_decrypt(bytes(encrypt(plain, recipient_key(KAT_RECIPIENT))), KAT_IDENTITY)
    assert got == plain
    chunks = max(1, -(-size // CHUNK))
    assert nonces == [i.to_bytes(11, "big") + (b"\x01" if i == chunks - 1 else b"\x00") for i in range(chunks)]


def test_recipient_key_known_answer() -> None:
    """The key we decode from an age-keygen recipient is X25519(identity, basepoint), computed independently."""
    _, secret = _bech32_decode(KAT_IDENTITY)
    public = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
    assert recipient_key(KAT_RECIPIENT) == public
    assert recipient_key(KAT_RECIPIENT.upper()) == public
    assert recipient_key(f"  {KAT_RECIPIENT}\n") == public  # as read from a file
    assert _bech32_decode(KAT_RECIPIENT) == ("age", public)
    assert str(pyrage.x25519.Identity.from_str(KAT_IDENTITY).to_public()) == KAT_RECIPIENT


@pytest.mark.skipif(AGE_KEYGEN is None, reason="age-keygen is not installed")
def test_a_fresh_age_keygen_pair_round_trips_through_the_spec_reader(tmp_path: Path) -> None:
    subprocess.run([AGE_KEYGEN, "-o", str(tmp_path / "k.txt")], check=True, capture_output=True, timeout=30)
    lines = (tmp_path / "k.txt").read_text().splitlines()
    recipient = lines[1].removeprefix("# public key: ")
    plain = os.urandom(CHUNK + 1)
    assert _spec_decrypt(bytes(encrypt(plain, recipient_key(recipient))), lines[-1])[0] == plain


@pytest.mark.parametrize("tweak, why", [
    # The same 32 key bytes but four non-zero padding bits: BIP-173 decoders (age's) refuse it.
    pytest.param(lambda key: _bech32_encode("age", [*_to_groups(key)[:-1], _to_groups(key)[-1] | 1]), "padding",
                 id="nonzero-padding"),
    # A whole extra 5-bit group of zeros: 33 bytes' worth of bits, not a 32-byte key.
    pytest.param(lambda key: _bech32_encode("age", [*_to_groups(key), 0]), "holds 33 bytes", id="extra-group"),
    # Bech32m's checksum constant (BIP-350): age recipients use Bech32.
    pytest.param(lambda key: _bech32_encode("age", _to_groups(key), 0x2BC830A3), "checksum", id="bech32m"),
    # Another human-readable part with a valid checksum: a post-quantum recipient, not X25519.
    pytest.param(lambda key: _bech32_encode("age1pq", _to_groups(key)), "not an age X25519", id="hrp-age1pq"),
    pytest.param(lambda key: _bech32_encode("agf", _to_groups(key)), "not an age X25519", id="hrp-agf"),
    # Unicode: KELVIN SIGN lowercases to an ASCII "k"; Bech32 is ASCII only.
    pytest.param(lambda key: _bech32_encode("age", _to_groups(key)).upper().replace("K", "\u212a"), "not ASCII",
                 id="kelvin-sign"),
])
def test_non_canonical_recipients_are_refused(tweak: Callable[[bytes], str], why: str) -> None:
    key = X25519PrivateKey.generate().public_key().public_bytes_raw()
    while "k" not in _bech32_encode("age", _to_groups(key)):  # so the Unicode case has a letter to swap
        key = X25519PrivateKey.generate().public_key().public_bytes_raw()
    assert recipient_key(_bech32_encode("age", _to_groups(key))) == key  # the untweaked string is fine
    with pytest.raises(RecipientFormatError, match=why):
        recipient_key(tweak(key))


# Curve25519's points of small order (and their non-canonical encodings): X25519 with any of them is all
# zeros, so a file "encrypted" to one would be readable by anyone. Listed as u-coordinates, little-endian.
_P = 2**255 - 19
_SMALL_ORDER = [0, 1, 325606250916557431795983626356110631294008115727848805560023387167927233504,
                39382357235489614581723060781553021112529911719440698176882885853963445705823]


_LOW = _SMALL_ORDER + [_P - 1] + [u + _P for u in _SMALL_ORDER if u + _P < 2**255]


@pytest.mark.parametrize("u", _LOW + [u + 2**255 for u in _LOW])  # X25519 ignores the top bit
def test_every_low_order_recipient_is_refused(u: int) -> None:
    with pytest.raises(RecipientFormatError, match="low-order"):
        encrypt(b"footage", u.to_bytes(32, "little"))


def test_encrypt_into_a_dirty_reused_buffer_reports_only_its_own_bytes(identity: pyrage.x25519.Identity) -> None:
    key = recipient_key(str(identity.to_public()))
    out = bytearray(b"\xa5" * age_encrypt.sealed_size(3 * CHUNK))  # as if a bigger segment had used it
    plain = os.urandom(CHUNK + 5)
    size = age_encrypt.encrypt_into(plain, key, out)
    assert size == age_encrypt.sealed_size(len(plain)) < len(out)
    assert out[size:] == b"\xa5" * (len(out) - size)  # nothing written past the file
    assert pyrage.decrypt(bytes(out[:size]), [identity]) == plain
    with pytest.raises(pyrage.DecryptError):  # why callers must write out[:size]: stale bytes break the file
        pyrage.decrypt(bytes(out), [identity])
    with pytest.raises(ValueError, match="output buffer"):
        age_encrypt.encrypt_into(plain, key, bytearray(size - 1))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_a_raw_key_of_the_wrong_length_is_not_called_low_order(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes") as caught:
        encrypt(b"footage", bytes(range(length)))
    assert not isinstance(caught.value, RecipientFormatError)


def test_encrypting_in_place_is_refused(identity: pyrage.x25519.Identity) -> None:
    """One buffer as both plain and out would yield a valid age file of corrupted plaintext: refused."""
    key = recipient_key(str(identity.to_public()))
    plain = os.urandom(2 * CHUNK)
    out = bytearray(age_encrypt.sealed_size(len(plain)))
    out[: len(plain)] = plain
    with pytest.raises(ValueError, match="share a buffer"):
        age_encrypt.encrypt_into(memoryview(out)[: len(plain)], key, out)
    size = age_encrypt.encrypt_into(plain, key, out)  # separate buffers are fine, even a dirty one
    assert pyrage.decrypt(bytes(out[:size]), [identity]) == plain
