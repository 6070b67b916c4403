"""The device's one MQTT connection: MQTT v5 over TLS, reconnecting forever, never blocking callers.

- paho-mqtt 2.x (``CallbackAPIVersion.VERSION2``), protocol MQTT v5, QoS 1 by default.
- TLS with certificate and host name checks whenever ``mqtt.tls`` is configured.
- Its own network thread runs ``client.loop()``; on a lost connection it reconnects with
  exponential backoff and full jitter (so a fleet does not reconnect in lockstep after a broker
  restart) and restores every subscription (each connection starts clean).
- ``publish`` is bounded: it refuses when not connected, when too many messages are in flight, and
  waits at most ``timeout`` seconds for the broker's acknowledgement. Never retained unless asked.
- Message handlers run on the network thread: they must only enqueue (see
  :class:`edge.protocol.service.ConsentService`).
- MQTT v5 ``Maximum Packet Size`` in CONNECT tells the broker not to send anything larger, and
  :class:`BoundedClient` enforces it: paho itself buffers whatever length a broker announces (up
  to 256 MB), so a hostile broker could otherwise exhaust a Pi Zero's RAM and take recording down.
"""

from __future__ import annotations

import errno
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import MqttConfig
from edge.errors import ConfigError, ConsentcamError

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]
PACKET_HEADROOM = 1024  # topic, properties and fixed header on top of the largest payload we accept


class BoundedClient(mqtt.Client):
    """paho's client, refusing an incoming packet longer than ``max_incoming`` before buffering it.

    paho reads the remaining length of a packet and then reads that many bytes into memory; it
    does not enforce the Maximum Packet Size we announce. Once the length is known (and before any
    of the body is read) this raises OSError, which paho reports as a lost connection: the link
    logs it and reconnects with backoff. Hooks paho-mqtt 2.2's ``_sock_recv`` (pinned;
    tests/test_protocol_mqtt_link.py drives it with a hostile broker).
    """

    max_incoming = 0
    refusal = ""  # why the last connection was dropped by us; paho only reports "connection lost"

    def _sock_recv(self, bufsize: int) -> bytes:
        packet = self._in_packet
        if self.max_incoming and packet["have_remaining"] and packet["remaining_length"] > self.max_incoming:
            length = packet["remaining_length"]
            self.refusal = (f"broker sent a {length}-byte packet, over the {self.max_incoming}-byte limit "
                            "(mqtt.max_message_bytes)")
            log.warning("mqtt broker sent an oversized packet; dropping the connection",
                        extra={"bytes": length, "limit": self.max_incoming})
            raise OSError(errno.EMSGSIZE, self.refusal)
        return super()._sock_recv(bufsize)


class LinkError(ConsentcamError):
    """The broker could not take a message (not connected, queue full, no acknowledgement in time)."""

    exit_code = 9


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = False  # only Home Assistant availability asks for True
    qos: int = 1


class MqttLink:
    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        *,
        will: Will | None = None,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_inflight: int = 100,
        connect_timeout: float = 15.0,
    ) -> None:
        self.config = config
        self.client_id = config.client_id or client_id
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.connect_timeout = connect_timeout
        self._subs: dict[str, tuple[int, Handler]] = {}
        self._subs_lock = threading.Lock()
        self._connected = threading.Event()
        # SUBACK tracking: "connected" is not "receiving" until the broker acknowledged our topics.
        self._subscribed = threading.Event()
        self._acks_lock = threading.Lock()
        self._awaiting: set[int] = set()  # subscribe mids sent, SUBACK not seen
        self._early: set[int] = set()  # SUBACKs seen before their mid was recorded (another thread subscribed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_connect_hooks: list[Callable[[], None]] = []
        self.state = "stopped"
        self.last_error = ""
        self.connects = 0  # successful connections so far (reconnects = connects - 1)

        c = BoundedClient(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
        )
        c.max_incoming = int(config.max_message_bytes) + PACKET_HEADROOM
        c.max_queued_messages_set(max_inflight)
        if config.username:
            c.username_pw_set(config.username)
        if config.tls is not None:
            self._setup_tls(c)
        if will is not None:
            c.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        # Our own thread runs loop(); without a write hook paho would also write to the socket
        # from whichever thread calls publish(), and large messages from two threads interleave
        # (the broker then drops the connection). With the hook, publish() only queues and wakes
        # the loop thread, which does all the writing.
        c.on_socket_register_write = _loop_thread_writes
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_unmatched
        self._client: BoundedClient = c

    def _setup_tls(self, c: mqtt.Client) -> None:
        tls = self.config.tls
        assert tls is not None
        for what, path in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file)):
            if path and not Path(path).is_file():
                raise ConfigError(f"mqtt.tls.{what}: {path}: no such file")
        if not tls.ca_file:
            raise ConfigError("mqtt.tls.ca_file: required when tls is configured (certificate checks stay on)")
        if bool(tls.cert_file) != bool(tls.key_file):
            raise ConfigError("mqtt.tls: cert_file and key_file go together")
        c.tls_set(
            ca_certs=tls.ca_file,
            certfile=tls.cert_file or None,
            keyfile=tls.key_file or None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        c.tls_insecure_set(False)  # host name must match the broker certificate

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> mqtt.Client:
        """The underlying paho client (for edge.protocol.release.publish_release's windowed sends)."""
        return self._client

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Connected and every subscription acknowledged by the broker (messages will now arrive)."""
        deadline = time.monotonic() + timeout
        return self._connected.wait(timeout) and self._subscribed.wait(max(0.0, deadline - time.monotonic()))

    def add_on_connect(self, hook: Callable[[], None]) -> None:
        """Called on the network thread after every (re)connection, e.g. to publish availability."""
        self._on_connect_hooks.append(hook)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        try:
            if self._connected.is_set():
                self._client.disconnect()
        except Exception:  # stopping must never raise
            log.debug("disconnect failed", exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._connected.clear()
        self.state = "stopped"

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [min, min(max, min * 2^attempt)]."""
        ceiling = min(self.max_backoff, self.min_backoff * (2 ** min(attempt, 20)))
        return random.uniform(self.min_backoff, max(self.min_backoff, ceiling))

    def _run(self) -> None:
        attempt = 0
        props = Properties(PacketTypes.CONNECT)
        props.MaximumPacketSize = int(self.config.max_message_bytes) + PACKET_HEADROOM
        while not self._stop.is_set():
            self.state = "connecting"
            self._client.refusal = ""
            try:
                self._client.connect(self.config.host, self.config.port, self.config.keepalive,
                                     clean_start=True, properties=props)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self._lost(f"connect failed: {exc}")
            else:
                started = time.monotonic()
                while not self._stop.is_set():
                    rc = self._client.loop(timeout=0.2)
                    if rc != mqtt.MQTT_ERR_SUCCESS:
                        self._lost(f"connection lost: {self._client.refusal or mqtt.error_string(rc)}")
                        break
                    if self._connected.is_set():
                        attempt = 0
                    elif time.monotonic() - started > self.connect_timeout:
                        self._lost("no CONNACK in time")
                        self._client.disconnect()
                        break
            if self._stop.is_set():
                break
            delay = self.backoff(attempt)
            attempt += 1
            log.info("mqtt reconnecting", extra={"delay_s": round(delay, 2), "error": self.last_error})
            self._stop.wait(delay)
        self._connected.clear()

    def _lost(self, why: str) -> None:
        self._connected.clear()
        self._subscribed.clear()
        self.state = "disconnected"
        self.last_error = why

    # -- paho callbacks (network thread) -------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.warning("mqtt connection refused", extra={"reason": str(reason)})
            return
        with self._subs_lock:
            subs = list(self._subs.items())
        with self._acks_lock:  # a new connection: acknowledgements of the old one mean nothing
            self._awaiting.clear()
            self._early.clear()
            self._subscribed.set()
        for topic, (qos, _handler) in subs:
            self._send_subscribe(topic, qos)
        self.connects += 1
        self.state = "connected"
        self._connected.set()
        log.info("mqtt connected", extra={"host": self.config.host, "port": self.config.port})
        for hook in list(self._on_connect_hooks):
            try:
                hook()
            except Exception:
                log.exception("on-connect hook failed")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._lost(f"disconnected: {reason}")

    def _on_unmatched(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        log.debug("message on an unexpected topic dropped")

    # -- subscriptions and publishing ---------------------------------------------------------

    def subscribe(self, topic: str, handler: Handler, qos: int = 1) -> None:
        """Subscribe now if connected, and again after every reconnection."""

        def dispatch(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            try:
                handler(message.topic, bytes(message.payload))
            except Exception:  # a handler bug must never kill the network thread
                log.exception("message handler failed")

        with self._subs_lock:
            self._subs[topic] = (qos, handler)
        self._client.message_callback_add(topic, dispatch)
        if self._connected.is_set():
            self._send_subscribe(topic, qos)

    def _send_subscribe(self, topic: str, qos: int) -> None:
        # Never hold our lock across paho calls: its callback mutex is held while on_subscribe runs.
        rc, mid = self._client.subscribe(topic, qos=qos)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            return  # not connected any more: the next connection subscribes again
        with self._acks_lock:
            if mid in self._early:
                self._early.discard(mid)
            else:
                self._awaiting.add(mid)
                self._subscribed.clear()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        refused = [str(r) for r in reasons or () if getattr(r, "is_failure", False)]
        if refused:
            self.last_error = f"broker refused a subscription: {', '.join(refused)} (check the broker's ACL)"
            log.warning("mqtt subscription refused", extra={"reasons": ",".join(refused)})
        with self._acks_lock:
            if mid in self._awaiting:
                self._awaiting.discard(mid)
            else:
                self._early.add(mid)
            if not self._awaiting:
                self._subscribed.set()

    def unsubscribe(self, topic: str) -> None:
        with self._subs_lock:
            self._subs.pop(topic, None)
        self._client.message_callback_remove(topic)
        if self._connected.is_set():
            self._client.unsubscribe(topic)

    def subscriptions(self) -> list[str]:
        with self._subs_lock:
            return sorted(self._subs)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                timeout: float = 10.0, properties: Properties | None = None) -> None:
        """Publish and wait (at most ``timeout`` s) for the broker's acknowledgement. Raises LinkError."""
        if not self._connected.is_set():
            raise LinkError("not connected to the MQTT broker")
        info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            raise LinkError("too many MQTT messages in flight; try again later")
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
            raise LinkError(f"publish failed: {mqtt.error_string(info.rc)}")
        try:
            info.wait_for_publish(timeout)
        except (ValueError, RuntimeError) as exc:
            raise LinkError(f"publish failed: {exc}") from exc
        if not info.is_published():
            raise LinkError(f"no acknowledgement from the broker within {timeout:g}s")


def _loop_thread_writes(client: mqtt.Client, userdata: object, sock: object) -> None:
    """paho's write-registration hook: nothing to do, the link's loop thread writes."""
