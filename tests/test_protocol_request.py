"""Request wire format: framing, signatures, strict body parsing, fuzzing, published test vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import clock
from edge.audit import AuditLog
from edge.config import Location
from edge.errors import ProtocolError
from edge.protocol import request as rq
from edge.protocol.pending import PendingQueue
from edge.protocol.replay import ReplayStore
from edge.protocol.request import MAGIC, VERSION, encode_request, parse_request, request_digest
from edge.protocol.trust import TrustStore
from edge.protocol.verifier import Limits, Verifier
from edge.signing import DOMAIN_REQUEST, key_id, sign
from tests.protocol_support import area, body, entry

REPO = Path(__file__).resolve().parent.parent
KEY = Ed25519PrivateKey.generate()
STORE = TrustStore([entry(KEY)])
VALID = encode_request(body(), KEY)


def signed(raw_body: bytes, key: Ed25519PrivateKey = KEY) -> bytes:
    """Frame and sign arbitrary body bytes (to reach the body checks with a valid signature)."""
    kid = key_id(key)
    return MAGIC + bytes([VERSION]) + kid + sign(key, DOMAIN_REQUEST, rq.signature_input(kid, raw_body)) + raw_body


def reason_of(data: bytes, store: TrustStore = STORE, limits: Limits | None = None) -> str:
    with pytest.raises(ProtocolError) as exc:
        parse_request(data, store, limits)
    return exc.value.reason


def test_roundtrip_and_digest() -> None:
    v = parse_request(VALID, STORE)
    assert v.body == body()
    assert v.digest == request_digest(VALID) and len(v.digest) == 64
    assert v.signer.name == "police" and v.raw == VALID
    assert VALID[:4] == b"CCRQ" and VALID[4] == 1 and VALID[5:21] == key_id(KEY)
    a = encode_request(body(audience=area()), KEY)
    assert parse_request(a, STORE).body.area == area()


def test_unknown_signer() -> None:
    other = Ed25519PrivateKey.generate()
    assert reason_of(encode_request(body(), other)) == "unknown_signer"


@pytest.mark.parametrize("where", ["body", "signature", "key_id"])
def test_bit_flips_are_refused(where: str) -> None:
    data = bytearray(VALID)
    offset = {"body": rq.HEADER_LEN + 10, "signature": 30, "key_id": 7}[where]
    data[offset] ^= 0x01
    expected = "unknown_signer" if where == "key_id" else "bad_signature"
    assert reason_of(bytes(data)) == expected


def test_key_id_of_another_trusted_key_fails_signature() -> None:
    other = Ed25519PrivateKey.generate()
    store = TrustStore([entry(KEY), entry(other, "insurer")])
    data = bytearray(VALID)
    data[5:21] = key_id(other)  # claims the other trusted signer: the signature no longer fits
    assert reason_of(bytes(data), store) == "bad_signature"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: b"XCRQ" + d[4:],  # bad magic
        lambda d: d[:4] + b"\x02" + d[5:],  # unknown version
        lambda d: d[:4] + b"\x00" + d[5:],
        lambda d: d[:40],  # truncated inside the signature
        lambda d: d[: rq.HEADER_LEN],  # empty body
        lambda d: b"",
    ],
    ids=["magic", "version2", "version0", "truncated", "empty-body", "empty"],
)
def test_bad_framing_is_malformed(mutate) -> None:  # type: ignore[no-untyped-def]
    assert reason_of(mutate(VALID)) == "malformed"


def test_oversized_is_refused_before_anything_else() -> None:
    big = signed(b"x" * 2000)
    assert reason_of(big, limits=Limits(max_message_bytes=1999)) == "oversized"
    assert reason_of(b"JUNK" * 5000) == "oversized"  # not even framed: size comes first
    ok = encode_request(body(), KEY)
    assert parse_request(ok, STORE, Limits(max_message_bytes=len(ok) - rq.HEADER_LEN))


def _good_dict() -> dict:
    return json.loads(body().to_json())


def _with(path: str, value: object) -> bytes:
    d = _good_dict()
    node = d
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[p]
    if value is _DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return json.dumps(d).encode()


_DELETE = object()

BAD_BODIES = {
    "non-json": b"not json at all",
    "not-utf8": b"\xff\xfe{}",
    "array": b"[1, 2, 3]",
    "string": b'"hello"',
    "nan": _with("v", 1).replace(b'"v": 1', b'"v": NaN'),
    "duplicate-key": _with("case", "A")[:-1] + b', "case": "B"}',
    "extra-field": _with("extra", 1),
    "missing-field": _with("reason", _DELETE),
    "v-2": _with("v", 2),
    "v-bool": _with("v", True),
    "v-string": _with("v", "1"),
    "id-charset": _with("id", "bad id with spaces"),
    "id-slash": _with("id", "abcdefgh/x"),
    "id-short": _with("id", "short"),
    "id-newline": _with("id", "abcdefgh\n"),
    "id-number": _with("id", 12345678),
    "issued-format": _with("issued", "2026-11-22 11:00:00"),
    "expires-offset": _with("expires", "2026-11-22T11:00:00+01:00"),
    "expires-number": _with("expires", 1795000000),
    "window-missing-end": _with("window.end", _DELETE),
    "window-list": _with("window", ["a", "b"]),
    "case-empty": _with("case", ""),
    "case-too-long": _with("case", "x" * 129),
    "case-control": _with("case", "a\x00b"),
    "reason-too-long": _with("reason", "x" * 1001),
    "reason-number": _with("reason", 5),
    "requester-extra": _with("requester.badge", "1"),
    "requester-name-empty": _with("requester.name", ""),
    "requester-string": _with("requester", "me"),
    "recipient-bad": _with("recipient", "age1notavalidrecipient"),
    "recipient-ssh": _with("recipient", "ssh-ed25519 AAAA"),
    "recipient-null": _with("recipient", None),
    "inbox-upper": _with("inbox", "Police"),
    "inbox-slash": _with("inbox", "a/b"),
    "inbox-wildcard": _with("inbox", "a+"),
    "audience-both": _with("audience", {"device": "ccx", "area": {"lat": 1, "lon": 1, "radius_m": 5}}),
    "audience-empty": _with("audience", {}),
    "audience-device-wildcard": _with("audience", {"device": "#"}),
    "area-radius-big": _with("audience", {"area": {"lat": 1, "lon": 1, "radius_m": 10001}}),
    "area-radius-zero": _with("audience", {"area": {"lat": 1, "lon": 1, "radius_m": 0}}),
    "area-radius-float": _with("audience", {"area": {"lat": 1, "lon": 1, "radius_m": 5.5}}),
    "area-lat-range": _with("audience", {"area": {"lat": 91, "lon": 1, "radius_m": 5}}),
    "area-lon-string": _with("audience", {"area": {"lat": 1, "lon": "1", "radius_m": 5}}),
    "area-lat-bool": _with("audience", {"area": {"lat": True, "lon": 1, "radius_m": 5}}),
    "area-extra": _with("audience", {"area": {"lat": 1, "lon": 1, "radius_m": 5, "alt": 3}}),
    "deep-nesting": b"[" * 100000 + b"]" * 100000,
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_bodies_are_malformed_even_when_signed(name: str) -> None:
    with pytest.raises(ProtocolError) as exc:
        parse_request(signed(BAD_BODIES[name]), STORE, Limits(max_message_bytes=300_000))
    assert exc.value.reason == "malformed", exc.value


def test_good_body_variant_is_accepted_so_bad_ones_are_not_trivially_refused() -> None:
    # The same helper with a harmless change must pass: the refusals above come from the checks.
    assert parse_request(signed(_with("case", "CASE-2")), STORE).body.case == "CASE-2"
    non_canonical = json.dumps(_good_dict(), indent=1).encode()  # whitespace is fine once signed
    assert parse_request(signed(non_canonical), STORE).body == body()


def test_encode_refuses_a_body_the_device_would_refuse() -> None:
    with pytest.raises(ProtocolError):
        encode_request(body(id="no"), KEY)
    with pytest.raises(ProtocolError):
        encode_request(body(recipient="age1xyz"), KEY)


# -- fuzzing ----------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_only_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_request(data, STORE)
    with pytest.raises(ProtocolError):
        parse_request(MAGIC + bytes([VERSION]) + data, STORE)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=len(VALID) - 1), st.integers(1, 255)), min_size=1,
             max_size=8),
    st.integers(min_value=0, max_value=3),
    st.binary(max_size=16),
)
def test_fuzz_mutated_valid_messages_never_accepted(flips, mode, junk) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(VALID)
    for pos, mask in flips:
        data[pos] ^= mask
    if mode == 1:
        data = data[: flips[0][0]]
    elif mode == 2:
        data = data + bytearray(junk or b"\x00")
    elif mode == 3:
        data[flips[0][0] : flips[0][0]] = junk or b"\x00"
    mutated = bytes(data)
    if mutated == VALID:
        return
    with pytest.raises(ProtocolError):
        parse_request(mutated, STORE)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=400))
def test_fuzz_signed_garbage_bodies_only_raise_malformed(raw: bytes) -> None:
    # Signed by a trusted key, so only the body parser stands between this and acceptance.
    with pytest.raises(ProtocolError) as exc:
        parse_request(signed(raw), STORE)
    assert exc.value.reason == "malformed"


# -- published test vectors -------------------------------------------------------------------


def test_vectors_rederive_and_parse(tmp_path: Path) -> None:
    doc = json.loads((REPO / "docs" / "test-vectors" / "request.json").read_text())
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(doc["requester"]["private_key_hex"]))
    assert key_id(key).hex() == doc["requester"]["key_id_hex"]
    assert DOMAIN_REQUEST.hex() == doc["domain_request_hex"]
    store = TrustStore([entry(key, "vector")])
    now = clock.parse_iso(doc["now"])
    loc = doc["device"]["location"]
    for vec in doc["vectors"]:
        message = bytes.fromhex(vec["message_hex"])
        parsed = parse_request(message, store)
        assert json.loads(parsed.body.to_json()) == vec["body"]
        # Ed25519 is deterministic: signing the same body again gives the same bytes.
        assert encode_request(parsed.body, key) == message
        assert message[rq.HEADER_LEN :] == bytes.fromhex(vec["body_hex"])
        assert message[21 : rq.HEADER_LEN].hex() == vec["signature_hex"]
        assert (DOMAIN_REQUEST + message[:21] + message[rq.HEADER_LEN :]).hex() == vec["signature_input_hex"]
        key.public_key().verify(bytes.fromhex(vec["signature_hex"]), bytes.fromhex(vec["signature_input_hex"]))
        assert request_digest(message) == vec["digest_sha256_hex"]
        # The full device pipeline accepts it with a matching trust store and the fixed clock.
        root = tmp_path / vec["name"]
        v = Verifier(
            trust=store, replay=ReplayStore(root / "replay.sqlite"), pending=PendingQueue(root / "requests"),
            audit=AuditLog(root / "audit", Ed25519PrivateKey.generate()), device_id=doc["device"]["device_id"],
            location=Location(lat=loc["lat"], lon=loc["lon"]), limits=Limits(), clock_ok=lambda: True,
            now=lambda: now,
        )
        outcome = v.process(message)
        assert outcome.accepted, outcome


def test_vector_file_is_what_the_script_produces() -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_test_vectors.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr

