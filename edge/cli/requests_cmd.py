"""`consentcam requests list|show|approve|deny`: the owner's decisions on verified requests.

Nothing leaves the device before `approve`. `deny` is silent unless the owner adds `--notify`
(a signed decline, queued for the daemon to publish, or sent at once with `--send-now`).
"""

from __future__ import annotations

import argparse
import functools
import os
from typing import TYPE_CHECKING, Any

from edge import clock
from edge.cli.common import Context, add_json_option, add_passphrase_option, console, emit_json, print_table
from edge.errors import ConsentcamError
from edge.state import write_private

if TYPE_CHECKING:
    from edge.audit import AuditLog
    from edge.protocol.pending import PendingQueue, PendingRequest

# The handlers import the request queue, the protocol, the vault, the keys (cryptography), MQTT and rich
# when they run: parsing stays light (see main.py).

SEND_TIMEOUT = 30.0


class DecisionError(ConsentcamError):
    """The owner's decision cannot be carried out as asked (nothing was changed)."""

    exit_code = 2


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("requests", help="footage requests waiting for the owner's decision")
    rsub = r.add_subparsers(dest="requests_command", metavar="ACTION", required=True)

    p = rsub.add_parser("list", help="pending requests (expired ones drop out)")
    add_json_option(p)
    p.set_defaults(handler=cmd_list)

    p = rsub.add_parser("show", help="one request in full, with the clips its window matches")
    p.add_argument("request_id", metavar="ID")
    add_json_option(p)
    p.set_defaults(handler=cmd_show)

    p = rsub.add_parser("approve", help="release matching clips, encrypted to the requester's key")
    p.add_argument("request_id", metavar="ID")
    p.add_argument("--clips", metavar="ID,...", help="only these clips (default: every clip in the window)")
    add_passphrase_option(p)
    p.add_argument("--send-now", action="store_true",
                   help="publish at once through the configured broker (default: the daemon sends it)")
    p.add_argument("--timeout", type=float, default=SEND_TIMEOUT, metavar="SECONDS",
                   help="with --send-now: how long to wait for the broker")
    add_json_option(p)
    p.set_defaults(handler=cmd_approve)

    p = rsub.add_parser("deny", help="refuse a request (silent unless --notify)")
    p.add_argument("request_id", metavar="ID")
    p.add_argument("--notify", action="store_true", help="send the requester a signed decline")
    p.add_argument("--send-now", action="store_true", help="with --notify: publish the decline at once")
    p.add_argument("--timeout", type=float, default=SEND_TIMEOUT, metavar="SECONDS",
                   help="with --send-now: how long to wait for the broker")
    add_json_option(p)
    p.set_defaults(handler=cmd_deny)


# -- shared ------------------------------------------------------------------------------------


def _setup(ctx: Context) -> tuple[PendingQueue, AuditLog, Any]:
    from edge import keys
    from edge.audit import AuditLog
    from edge.protocol.pending import PendingQueue

    ctx.state.require_initialised()
    device_key = keys.load_device_key(ctx.state)
    audit = AuditLog(ctx.state.audit, device_key)
    queue = PendingQueue(ctx.state.requests)
    if clock.clock_synchronised(ctx.config.clock.mode):
        # Without a trusted clock, expiry is not judged (a Pi boots with a stale time).
        queue.expire(clock.now(), audit)
    return queue, audit, device_key


def _open_vault(ctx: Context, device_key: Any) -> Any:
    from edge.vault import Vault

    return Vault.open(ctx.state, ctx.config.storage, None, device_key, None, recover=False)


def _summary(p: PendingRequest) -> dict[str, Any]:
    b = p.request.body
    audience: dict[str, Any] = {"device": b.device_id} if b.device_id else {"area": b.area.to_dict()}  # type: ignore[union-attr]
    return {
        "id": b.id,
        "digest": p.request.digest,
        "received": p.received,
        "signer": p.request.signer.name,
        "signer_key_id": p.request.signer.key_id,
        "requester": b.requester.to_dict(),
        "case": b.case,
        "reason": b.reason,
        "window": {"start": b.window_start, "end": b.window_end},
        "audience": audience,
        "issued": b.issued,
        "expires": b.expires,
        "recipient": b.recipient,
        "inbox": b.inbox,
    }


def _audience_text(s: dict[str, Any]) -> str:
    if "device" in s["audience"]:
        return "this device"
    a = s["audience"]["area"]
    return f"area r={a['radius_m']} m"


def _matching(ctx: Context, device_key: Any, p: PendingRequest) -> list[Any]:
    b = p.request.body
    return _open_vault(ctx, device_key).list_clips(b.window_start_ts, b.window_end_ts)


# -- list / show -------------------------------------------------------------------------------


def cmd_list(ctx: Context) -> int:
    from rich.markup import escape

    queue, _audit, _key = _setup(ctx)
    items = [_summary(p) for p in queue.list()]
    if ctx.json:
        emit_json(items)
        return 0
    if not items:
        console().print("no pending requests")
        return 0
    # Requester-supplied text is shown literally: escape rich markup such as "[link=...]".
    rows = [[s["id"], s["received"], escape(f"{s['requester']['name']} ({s['requester']['organisation']})"),
             escape(s["case"]), f"{s['window']['start']} .. {s['window']['end']}", _audience_text(s), s["expires"]]
            for s in items]
    print_table(None, ["id", "received", "requester", "case", "window", "audience", "expires"], rows)
    return 0


def cmd_show(ctx: Context) -> int:
    queue, _audit, device_key = _setup(ctx)
    p = queue.get(ctx.args.request_id)
    s = _summary(p)
    clips = _matching(ctx, device_key, p)
    s["matching_clips"] = [{"id": c.id, "camera": c.camera, "start": clock.iso(c.start), "end": clock.iso(c.end),
                            "size": c.size, "clock_synced": c.clock_synced} for c in clips]
    if ctx.json:
        emit_json(s)
        return 0
    # Requester-supplied text is printed literally (no rich markup, no highlighting).
    say = functools.partial(console().print, markup=False, highlight=False)
    r = s["requester"]
    say(f"request  {s['id']}  (received {s['received']}, expires {s['expires']})")
    say(f"from     {r['name']}, {r['organisation']} <{r['contact']}>  [trusted as {s['signer']}]")
    say(f"case     {s['case']}")
    say(f"reason   {s['reason']}")
    say(f"window   {s['window']['start']} .. {s['window']['end']}")
    if "area" in s["audience"]:
        a = s["audience"]["area"]
        say(f"area     {a['radius_m']} m around {a['lat']}, {a['lon']}")
    else:
        say("audience this device")
    say(f"digest   {s['digest']}")
    if not clips:
        say("no clips match this window")
    else:
        print_table("matching clips", ["clip", "camera", "start", "end", "size"],
                    [[c["id"], c["camera"], c["start"], c["end"], c["size"]] for c in s["matching_clips"]])
    return 0


# -- approve / deny ----------------------------------------------------------------------------


def cmd_approve(ctx: Context) -> int:
    from edge import keys
    from edge.protocol import release

    queue, audit, device_key = _setup(ctx)
    p = queue.get(ctx.args.request_id)
    matching = {c.id: c for c in _matching(ctx, device_key, p)}
    if ctx.args.clips:
        chosen = [c.strip() for c in ctx.args.clips.split(",") if c.strip()]
        outside = [c for c in chosen if c not in matching]
        if outside:
            raise DecisionError(f"clip {outside[0]} is not in the request's window; nothing was released")
        if len(set(chosen)) != len(chosen):
            raise DecisionError("a clip was named twice; nothing was released")
    else:
        chosen = sorted(matching, key=lambda cid: (matching[cid].start, cid))
    if not chosen:
        raise DecisionError("no clips match the request's window; nothing to release (deny it instead)")
    identity = keys.unlock_owner_identity(ctx.state, ctx.passphrase())
    chunk = release.max_chunk_payload(ctx.config.release.chunk_bytes, ctx.config.mqtt.max_message_bytes)
    vault = _open_vault(ctx, device_key)
    item = release.build_release(ctx.state, vault, identity, p.request, chosen, device_key, chunk, audit=audit)
    queue.decide(p.id, "approved", clips=chosen)
    audit.append("request.approved", id=p.id, digest=p.request.digest, clips=chosen)
    sent = False
    if ctx.args.send_now:
        sent = _send_now(ctx, lambda link: release.publish_release(link, item, ctx.config.mqtt.topic_root,
                                                                   ctx.args.timeout, audit=audit))
    if ctx.json:
        emit_json({"id": p.id, "clips": chosen, "bundle_size": item.bundle_size, "chunks": item.chunks,
                   "sent": sent})
    else:
        console().print(f"approved {p.id}: {len(chosen)} clip(s), {item.bundle_size} bytes encrypted to the "
                        f"requester, {'sent' if sent else 'queued for the daemon to send'}")
    return 0


def cmd_deny(ctx: Context) -> int:
    from edge.protocol.service import declines_dir, publish_decline_file

    if ctx.args.send_now and not ctx.args.notify:
        raise DecisionError("--send-now only applies with --notify (a plain deny sends nothing)")
    queue, audit, device_key = _setup(ctx)
    p = queue.get(ctx.args.request_id)
    decline: bytes | None = None
    if ctx.args.notify:
        from edge.protocol import release

        decline = release.decline_message(p.request, device_key)
        write_private(declines_dir(ctx.state.requests) / f"{p.id}.bin", decline)
    queue.decide(p.id, "denied", notify=bool(ctx.args.notify))
    audit.append("request.denied", id=p.id, digest=p.request.digest, notify=bool(ctx.args.notify))
    sent = False
    if decline is not None and ctx.args.send_now:
        sent = _send_now(ctx, lambda link: publish_decline_file(link, queue, p.id, ctx.config.mqtt.topic_root,
                                                                audit, ctx.args.timeout))
    if ctx.json:
        emit_json({"id": p.id, "notify": bool(ctx.args.notify), "sent": sent})
    else:
        tail = "" if not ctx.args.notify else (", decline sent" if sent else ", decline queued for the daemon")
        console().print(f"denied {p.id}{tail}")
    return 0


def _send_now(ctx: Context, action: Any) -> bool:
    from edge import keys
    from edge.mqtt_link import LinkError, MqttLink

    info = keys.load_device_info(ctx.state)
    # Not the daemon's client id: a second client with the same id would disconnect the daemon.
    link = MqttLink(ctx.config.mqtt, f"{info.device_id}-cli-{os.getpid()}", min_backoff=0.5, max_backoff=2.0)
    link.start()
    try:
        if not link.wait_connected(ctx.args.timeout):
            raise LinkError(f"could not reach the broker at {ctx.config.mqtt.host}:{ctx.config.mqtt.port} "
                            f"({link.last_error or 'no answer'}); it stays queued for the daemon")
        action(link)
        return True
    finally:
        link.stop()

