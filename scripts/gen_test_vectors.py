#!/usr/bin/env python3
"""Write docs/test-vectors/request.json: a fixed requester key, a request body, its exact bytes.

Ed25519 signatures are deterministic, so running this again gives the same file byte for byte;
tests/test_protocol_vectors.py re-derives everything and checks the device parser accepts it.

    .venv/bin/python scripts/gen_test_vectors.py [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from edge.protocol import geo, topics  # noqa: E402
from edge.protocol.request import (  # noqa: E402
    HEADER_LEN,
    Area,
    RequestBody,
    Requester,
    encode_request,
    request_digest,
    signature_input,
)
from edge.signing import DOMAIN_REQUEST, encode_public, key_id, public_raw  # noqa: E402

OUT = REPO / "docs" / "test-vectors" / "request.json"
# Fixed, published test keys: never use them for anything real.
REQUESTER_SEED = hashlib.sha256(b"consentcam test vector requester key").hexdigest()
AGE_IDENTITY = "AGE-SECRET-KEY-10QPT37MKD8RT5GKHW38D68SJ6Y8953YHZQLKF2TF5ZYXQARD3DQSU09MZ3"
AGE_RECIPIENT = "age1fzusfdsuer228lg8r9wy600a5humcjmemjajugxk6trwqnms4adswt4u26"
DEVICE_ID = "ccn5rrhjwnxuzbl2u5"  # a device id as edge.keys.device_id_for writes them
NOW = "2026-11-22T12:00:00Z"  # the clock the parser test uses


def vector_bodies() -> dict[str, RequestBody]:
    common = dict(
        issued="2026-11-22T11:58:00Z",
        expires="2026-11-29T11:58:00Z",
        window_start="2026-11-22T02:00:00Z",
        window_end="2026-11-22T03:30:00Z",
        case="CASE-2026-0042",
        reason="Burglary at 12 Example Street between 02:00 and 03:30; looking for a grey van.",
        requester=Requester("Det. A. Example", "Example Police North", "a.example@police.example"),
        recipient=AGE_RECIPIENT,
        inbox="police-north",
    )
    return {
        "device": RequestBody(id="REQ-device-0001", audience=DEVICE_ID, **common),  # type: ignore[arg-type]
        "area": RequestBody(id="REQ-area-0001", audience=Area(51.5007, -0.1246, 750), **common),  # type: ignore[arg-type]
    }


def build() -> dict:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(REQUESTER_SEED))
    kid = key_id(key)
    vectors = []
    for name, body in vector_bodies().items():
        message = encode_request(body, key)
        body_bytes = body.to_json()
        entry = {
            "name": name,
            "body": body.to_dict(),
            "body_utf8": body_bytes.decode(),
            "body_hex": body_bytes.hex(),
            "signature_input_hex": (DOMAIN_REQUEST + signature_input(kid, body_bytes)).hex(),
            "signature_hex": message[21:HEADER_LEN].hex(),
            "message_hex": message.hex(),
            "message_len": len(message),
            "digest_sha256_hex": request_digest(message),
        }
        if isinstance(body.audience, Area):
            a = body.audience
            entry["area_cells_precision5"] = geo.cover_cells(a.lat, a.lon, a.radius_m)
            entry["area_topics"] = topics.area_topics("consentcam/v1", a.lat, a.lon, a.radius_m)
        else:
            entry["device_topic"] = topics.device_topic("consentcam/v1", DEVICE_ID)
        vectors.append(entry)
    return {
        "description": "consentcam protocol v1 request test vectors (see docs/PROTOCOL.md). Test keys only.",
        "domain_request_hex": DOMAIN_REQUEST.hex(),
        "requester": {
            "private_key_hex": REQUESTER_SEED,
            "public_key_hex": public_raw(key).hex(),
            "public_key": encode_public(key),
            "key_id_hex": kid.hex(),
        },
        "recipient": {"age_identity": AGE_IDENTITY, "age_recipient": AGE_RECIPIENT},
        "device": {"device_id": DEVICE_ID, "location": {"lat": 51.5010, "lon": -0.1240}},
        "now": NOW,
        "limits": {"max_message_bytes": 16384, "max_window_s": 43200, "max_clock_skew_s": 300,
                   "max_lifetime_s": 604800},
        "geohash": {"lat": 57.64911, "lon": 10.40744, "precision": 11, "cell": geo.encode(57.64911, 10.40744, 11)},
        "vectors": vectors,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 if the file on disk differs")
    args = ap.parse_args()
    text = json.dumps(build(), indent=2, sort_keys=True) + "\n"
    if args.check:
        same = OUT.exists() and OUT.read_text() == text
        print("up to date" if same else f"{OUT} differs from what this script produces")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
