"""The investigator's MQTT connection: MQTT v5 with a persistent session.

``clean_start=False`` plus a session expiry interval make the broker keep our subscription to the
reply topic, and queue QoS 1 messages on it, while we are offline: a device may publish a release
long after the request was sent. Messages are acknowledged by hand only after they have been
handled (stored on disk), so a crash mid-receive makes the broker deliver them again.
"""

from __future__ import annotations

import queue
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.errors import ConsentcamError
from edge.mqtt_link import BoundedClient

SESSION_EXPIRY = 7 * 86400
MAX_PACKET = 16 * 1024 * 1024


class BrokerError(ConsentcamError):
    exit_code = 11


@dataclass(frozen=True)
class BrokerOptions:
    host: str
    port: int
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    username: str | None = None


def parse_broker(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not (1 <= int(port) <= 65535):
        raise BrokerError(f"--broker {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8883")
    return host.strip("[]"), int(port)


class Connection:
    """One connected paho client; received messages land in ``self.messages`` (bounded)."""

    def __init__(self, options: BrokerOptions, client_id: str, *, persistent: bool = True,
                 queue_size: int = 256) -> None:
        self.options = options
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue(maxsize=queue_size)
        self._connected = threading.Event()
        self._dropped = threading.Event()
        self._connect_reason: str = ""
        self._subacks: dict[int, threading.Event] = {}
        self._sub_results: dict[int, list[Any]] = {}
        self.persistent = persistent
        c = BoundedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                          manual_ack=True)
        c.max_incoming = MAX_PACKET  # a broker ignoring our Maximum Packet Size is cut off, not buffered
        c.max_inflight_messages_set(32)
        if options.username:
            c.username_pw_set(options.username)
        if options.tls_ca or options.tls_cert:
            if not options.tls_ca:
                raise BrokerError("--tls-ca is required with client certificates (the broker must be checked)")
            if bool(options.tls_cert) != bool(options.tls_key):
                raise BrokerError("--tls-cert and --tls-key go together")
            c.tls_set(ca_certs=options.tls_ca, certfile=options.tls_cert, keyfile=options.tls_key,
                      cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        self.client = c

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connect_reason = str(reason)
        if not reason.is_failure:
            self._connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        if not self._connect_reason:
            # Dropped before CONNACK: a TLS rejection (no or wrong client certificate) lands here.
            self._connect_reason = f"connection closed by the broker ({reason})"
        self._dropped.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        self._sub_results[mid] = list(reasons)
        event = self._subacks.get(mid)
        if event is not None:
            event.set()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # Blocks the network thread when full: back-pressure instead of unbounded memory.
        self.messages.put(message)

    def connect(self, timeout: float = 15.0) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY if self.persistent else 0
        props.MaximumPacketSize = MAX_PACKET
        try:
            self.client.connect(self.options.host, self.options.port, keepalive=30,
                                clean_start=not self.persistent, properties=props)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"cannot connect to {self.options.host}:{self.options.port}: {exc}") from exc
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while not self._connected.is_set() and not self._dropped.is_set() and time.monotonic() < deadline:
            self._connected.wait(0.05)
        if not self._connected.is_set():
            self.close()
            reason = self._connect_reason or "no answer"
            raise BrokerError(f"broker {self.options.host}:{self.options.port} refused or did not answer: {reason}")

    def subscribe(self, topics: list[str], timeout: float = 15.0) -> None:
        for topic in topics:
            event = threading.Event()
            rc, mid = self.client.subscribe(topic, qos=1)
            if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
                raise BrokerError(f"subscribing to {topic} failed: {mqtt.error_string(rc)}")
            self._subacks[mid] = event
            if not event.wait(timeout) and mid not in self._sub_results:
                raise BrokerError(f"the broker did not confirm the subscription to {topic}")
            codes = self._sub_results.get(mid, [])
            if any(getattr(code, "is_failure", False) for code in codes):
                raise BrokerError(f"the broker refused the subscription to {topic} (ACL?): {codes[0]}")

    def publish(self, topic: str, payload: bytes, timeout: float = 15.0) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=False)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise BrokerError(f"publishing to {topic} failed: {exc}") from exc
        if not info.is_published():
            raise BrokerError(f"the broker did not acknowledge the message to {topic} within {timeout:g}s")

    def ack(self, message: mqtt.MQTTMessage) -> None:
        if message.qos > 0:
            self.client.ack(message.mid, message.qos)

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
