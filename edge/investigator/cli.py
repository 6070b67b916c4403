"""`consentcam-investigator`: ask a device owner for footage, receive it, and verify it.

Shares no state with any device: everything lives under ``--home`` (default
``~/.config/consentcam-investigator``, or ``$CONSENTCAM_INVESTIGATOR_HOME``).

    consentcam-investigator keygen --name "Alice" --inbox alice
    consentcam-investigator request --device ccxxxx --from 2026-11-22T10:00:00Z --to 2026-11-22T11:00:00Z \\
        --case C-1 --reason "burglary" --broker broker.example.net:8883 --tls-ca ca.crt ...
    consentcam-investigator receive --request ID --out evidence/ --broker ...
    consentcam-investigator verify evidence/<device_id>

Exit codes: 0 success, 1 generic failure, 2 usage, 3 home directory problem, 5 not found,
6 verification failed (specific reason on stderr), 11 broker problem, 12 nothing received in time.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge import __version__, clock
from edge.cli.common import emit_json, make_progress
from edge.errors import ConsentcamError, IntegrityError
from edge.investigator.home import DEFAULT_HOME, Home, InvestigatorError, RequestRecord, now_iso
from edge.investigator.mqtt import BrokerOptions, Connection, parse_broker
from edge.investigator.receiver import REPORT_JSON, Event, Receiver
from edge.investigator.verify import verify_dir
from edge.protocol import topics
from edge.protocol.request import Area, RequestBody, Requester, encode_request, request_digest
from edge.units import parse_duration, parse_size


class NothingReceived(ConsentcamError):
    exit_code = 12


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consentcam-investigator",
                                     description="Request, receive and verify footage released by consentcam devices.")
    parser.add_argument("--version", action="version", version=f"consentcam-investigator {__version__}")
    parser.add_argument("--home", metavar="DIR", help=f"keys and records (default: {DEFAULT_HOME})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("keygen", help="make a signing key and an age identity, print the public card")
    p.add_argument("--name", required=True)
    p.add_argument("--inbox", required=True, help="your broker user name (releases arrive on R/inbox/<inbox>/...)")
    p.add_argument("--organisation", help="default: the name")
    p.add_argument("--contact", help="how the owner can reach you (default: the inbox)")
    p.add_argument("--json", action="store_true", help="print only the card JSON")
    p.set_defaults(handler=cmd_keygen)

    p = sub.add_parser("request", help="sign and publish a footage request")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--device", metavar="ID", help="one device id")
    target.add_argument("--area", metavar="LAT,LON,RADIUS_M", help="every device in a circle (radius <= 10 km)")
    p.add_argument("--from", dest="start", required=True, metavar="TIME", help="RFC 3339 UTC, or --from=-2h (ago)")
    p.add_argument("--to", dest="end", required=True, metavar="TIME", help="RFC 3339 UTC, --to=-30m, or now")
    p.add_argument("--case", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--expires", default="7d", metavar="DURATION", help="how long devices may act on it (7d)")
    p.add_argument("--id", dest="request_id", help="request id (default: random)")
    _broker_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_request)

    p = sub.add_parser("receive", help="wait for releases, verify them, write clips and a report")
    p.add_argument("--request", metavar="ID", help="one request (default: every request sent from this home)")
    p.add_argument("--out", required=True, metavar="DIR", help="verified releases go to DIR/<device_id>/")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help="give up after S seconds (600)")
    p.add_argument("--max-bytes", default="16GiB", metavar="SIZE",
                   help="refuse releases larger than this (default 16GiB)")
    p.add_argument("--count", type=int, default=0, metavar="N",
                   help="stop after N releases (default: 1 for a device request, wait for --timeout for areas)")
    _broker_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_receive)

    p = sub.add_parser("verify", help="re-check a received release offline")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_verify)
    return parser


def _broker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, metavar="HOST:PORT")
    p.add_argument("--tls-ca", metavar="FILE", help="CA that signed the broker's certificate")
    p.add_argument("--tls-cert", metavar="FILE", help="client certificate (its CN is your inbox)")
    p.add_argument("--tls-key", metavar="FILE")
    p.add_argument("--username", help="broker user name (not needed with client certificates)")
    p.add_argument("--topic-root", default="consentcam/v1", metavar="ROOT")


def _broker(args: argparse.Namespace) -> BrokerOptions:
    host, port = parse_broker(args.broker)
    return BrokerOptions(host, port, args.tls_ca, args.tls_cert, args.tls_key, args.username)


def _home(args: argparse.Namespace) -> Home:
    return Home(Path(args.home or os.environ.get("CONSENTCAM_INVESTIGATOR_HOME") or DEFAULT_HOME))


# ---------------------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    home = _home(args)
    card = home.keygen(args.name, args.inbox, args.organisation or args.name, args.contact or f"inbox {args.inbox}")
    if args.json:
        emit_json(card.to_dict())
    else:
        print(json.dumps(card.to_dict(), indent=2, sort_keys=True))
        print(f"\nCard written to {home.card_path}. The device owner adds it with:\n"
              f"  consentcam trust add {args.inbox} {home.card_path}", file=sys.stderr)
    return 0


def parse_time(text: str, now: float) -> float:
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("-"):
        try:
            return now - parse_duration(text[1:])
        except ValueError as exc:
            raise InvestigatorError(f"time {text!r}: {exc}") from exc
    try:
        return clock.parse_iso(text)
    except ValueError as exc:
        raise InvestigatorError(f"time {text!r}: expected RFC 3339 UTC like 2026-11-22T10:00:00Z, -2h or now") \
            from exc


def _area(text: str) -> Area:
    try:
        lat, lon, radius = (p.strip() for p in text.split(","))
        return Area(float(lat), float(lon), int(radius))
    except ValueError as exc:
        raise InvestigatorError(f"--area {text!r}: expected LAT,LON,RADIUS_M, e.g. 51.5,-0.12,2000") from exc


def new_request_id() -> str:
    """A random request id that does not start with "-": owners type it on the command line
    (`consentcam requests show ID`), where a leading "-" reads as an option."""
    return "r" + secrets.token_urlsafe(16)


def cmd_request(args: argparse.Namespace) -> int:
    home = _home(args)
    card = home.card()
    now = clock.now()
    issued = clock.iso(now)
    try:
        lifetime = parse_duration(args.expires)
    except ValueError as exc:
        raise InvestigatorError(f"--expires: {exc}") from exc
    audience: str | Area = args.device if args.device else _area(args.area)
    body = RequestBody(
        id=args.request_id or new_request_id(),
        issued=issued,
        expires=clock.iso(clock.parse_iso(issued) + lifetime),
        audience=audience,
        window_start=clock.iso(parse_time(args.start, now)),
        window_end=clock.iso(parse_time(args.end, now)),
        case=args.case,
        reason=args.reason,
        requester=Requester(card.name, card.organisation, card.contact),
        recipient=card.recipient,
        inbox=card.inbox,
    )
    try:
        raw = encode_request(body, home.signing_key())
        if isinstance(audience, Area):
            targets = topics.area_topics(args.topic_root, audience.lat, audience.lon, audience.radius_m)
        else:
            targets = [topics.device_topic(args.topic_root, audience)]
        reply = topics.inbox_topic(args.topic_root, card.inbox, body.id)
    except ValueError as exc:  # ProtocolError is a ConsentcamError and passes through
        raise InvestigatorError(f"cannot build the request: {exc}") from exc
    record = RequestRecord(id=body.id, digest=request_digest(raw), raw=raw, audience=body.to_dict()["audience"],
                           topics=targets, created=now_iso())
    if (home.requests_dir / f"{body.id}.json").exists():
        raise InvestigatorError(f"a request with id {body.id} was already sent from this home")
    conn = Connection(_broker(args), home.client_id())
    conn.connect()
    try:
        # Subscribe first, in our persistent session: a release published while we are offline waits for us.
        conn.subscribe([reply])
        # Record it before it leaves, so a reply can never arrive for a request we do not know.
        home.save_request(record)
        for topic in targets:
            conn.publish(topic, raw)
    finally:
        conn.close()
    out = {"id": body.id, "digest": record.digest, "topics": targets, "reply_topic": reply}
    if args.json:
        emit_json(out)
    else:
        print(f"request {body.id}\ndigest  {record.digest}\nsent to {len(targets)} topic(s); replies on {reply}")
    return 0


def cmd_receive(args: argparse.Namespace) -> int:
    home = _home(args)
    card = home.card()
    everything = home.list_requests()
    records = [home.load_request(args.request)] if args.request else everything
    if not records:
        raise InvestigatorError(f"no requests were sent from {home.root}: nothing to receive")
    wanted = args.count or (1 if all(r.device_id for r in records) and len(records) == 1 else 0)
    progress = make_progress()
    tasks: dict[str, Any] = {}

    def on_event(event: Event) -> None:
        if event.kind in ("header", "chunk") and event.total:
            key = f"{event.request_id}/{event.device_id}"
            if key not in tasks:
                tasks[key] = progress.add_task(f"{event.device_id}", total=event.total)
            progress.update(tasks[key], completed=event.received)
        elif event.kind == "ignored":
            print(f"consentcam-investigator: ignored a message for {event.request_id}: {event.detail}",
                  file=sys.stderr)
        elif event.kind == "refused":
            print(f"consentcam-investigator: REFUSED release from {event.device_id}: {event.detail}", file=sys.stderr)

    try:
        max_bytes = parse_size(args.max_bytes)
    except ValueError as exc:
        raise InvestigatorError(f"--max-bytes: {exc}") from exc
    # Our persistent session may deliver replies to any request we sent: keep them all (under
    # HOME/incoming), finish only the selected ones into --out.
    receiver = Receiver(home, Path(args.out), everything, on_event, max_bundle_bytes=max_bytes,
                        selected={r.id for r in records})
    receiver.finish_ready()
    reply_topics = [topics.inbox_topic(args.topic_root, card.inbox, r.id) for r in records]
    conn = Connection(_broker(args), home.client_id())
    conn.connect()
    deadline = time.monotonic() + max(0.0, args.timeout)
    try:
        conn.subscribe(reply_topics)
        with progress:
            while time.monotonic() < deadline:
                if wanted and len(receiver.completed) + len(receiver.declined) >= wanted:
                    break
                if wanted == 1 and receiver.refused:
                    break  # the addressed device's release was refused: say so now
                try:
                    message = conn.messages.get(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
                except Exception:  # queue.Empty
                    continue
                receiver.handle(message.topic, message.payload)
                conn.ack(message)  # only now: a crash before this point makes the broker resend it
    finally:
        conn.close()
    return _receive_outcome(args, receiver)


def _receive_outcome(args: argparse.Namespace, receiver: Receiver) -> int:
    results = [{"device_id": e.device_id, "request_id": e.request_id, "status": "verified", "path": str(e.path)}
               for e in receiver.completed]
    results += [{"device_id": e.device_id, "request_id": e.request_id, "status": "declined", "path": str(e.path)}
                for e in receiver.declined]
    if args.json:
        emit_json({"releases": results, "refused": [{"device_id": e.device_id, "reason": e.detail}
                                                    for e in receiver.refused]})
    else:
        for e in receiver.completed:
            report = json.loads((Path(e.path) / REPORT_JSON).read_text()) if e.path else {}
            print(f"verified release from {e.device_id}: {len(report.get('clips', []))} clip(s) -> {e.path}")
        for e in receiver.declined:
            print(f"request {e.request_id} declined by {e.device_id} (signed decline verified)")
    if results:
        return 0
    if receiver.refused:
        raise IntegrityError(f"release refused: {receiver.refused[0].detail}")
    partial = [b for b in receiver.bundles.values() if b.header is not None and b.have]
    if partial:
        b = partial[0]
        assert b.header is not None
        raise NothingReceived(
            f"incomplete after {args.timeout:g}s: {len(b.have)} of {b.header.chunks} chunks from {b.header.device_id} "
            "(kept; run receive again, or ask the owner to resend if the broker dropped queued messages)")
    raise NothingReceived(f"nothing received within {args.timeout:g}s")


def cmd_verify(args: argparse.Namespace) -> int:
    home = _home(args)
    recipient = home.card().recipient if home.exists() else None
    report = verify_dir(Path(args.directory), recipient)
    if args.json:
        emit_json(report)
    else:
        print(f"OK: {len(report['clips'])} clip(s) from {report['device_id']} for request {report['request_id']} "
              f"verified (manifest signature, device id, request digest, clip SHA-256)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConsentcamError as exc:
        print(f"consentcam-investigator: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("consentcam-investigator: interrupted (received chunks are kept; run receive again)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
