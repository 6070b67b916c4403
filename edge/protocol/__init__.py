"""The consent protocol (v1): signed requests in, owner decisions, verifiable releases out.

Device side: request (wire format), trust (the owner's trust store), geo and topics (addressing),
replay (persistent replay cache and rate counters), verifier (the validation pipeline), pending
(the owner's queue), service (the daemon's MQTT intake). Release side: release, manifest, chunks,
outbox. See docs/PROTOCOL.md.
"""
