"""The MQTT bridge: camera states, recording, motion and events out; recording commands in.

Topics and Home Assistant discovery are in :mod:`nvr_gstreamer.service.ha_discovery`.

The broker is a convenience, never a dependency: every public method returns at once and never
raises because the broker is away. paho's network thread connects in the background and
reconnects with a doubling wait (1 s to 30 s). The bridge keeps the last value of every retained
topic in memory and publishes them all on each (re)connect, with ``online``, the discovery
configs and the command subscription, so what happened while the broker was away is there when
it returns. Retained values go out at QoS 0 (a message lost with a connection is republished on
the next one; a queued stale value must not overtake a fresh one); events at QoS 1, queued while
the broker is away (at most :data:`MAX_QUEUED_EVENTS`), as they are not kept anywhere else.

A lost connection and its recovery are each logged once, with the broker's ``host:port`` and
never the password; the retries in between are logged at DEBUG.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from nvr_gstreamer.core.redact import register_secret
from nvr_gstreamer.service.ha_discovery import (
    PAYLOAD_OFF,
    PAYLOAD_OFFLINE,
    PAYLOAD_ON,
    PAYLOAD_ONLINE,
    DiscoveryNode,
    TopicLayout,
    check_topic_prefix,
    discovery_messages,
    topic_keys,
)

logger = logging.getLogger(__name__)

RECONNECT_MIN_DELAY_S = 1
RECONNECT_MAX_DELAY_S = 30
MAX_QUEUED_EVENTS = 1000
STOP_PUBLISH_TIMEOUT_S = 2.0
# Home Assistant's sensor state is at most 255 characters.
MAX_STATE_CHARS = 255
_HA_ONLINE = b"online"  # Home Assistant's birth message on <discovery_prefix>/status


@dataclass(frozen=True)
class MqttSettings:
    """The config's ``mqtt:`` section, as the engine passes it on."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    topic_prefix: str = "nvr"
    client_id: str = "nvr"
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    keepalive_s: int = 30
    node_name: str = "NVR"

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("mqtt.host: expected a host name or address")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"mqtt.port {self.port}: expected a port number from 1 to 65535")
        if not 5 <= self.keepalive_s <= 65535:
            raise ValueError(f"mqtt.keepalive_s {self.keepalive_s}: expected 5 to 65535 seconds")
        if self.password is not None and not self.username:
            raise ValueError("mqtt.password is set but mqtt.username is not")
        check_topic_prefix(self.topic_prefix, "mqtt.topic_prefix")
        check_topic_prefix(self.discovery_prefix, "mqtt.discovery_prefix")

    @property
    def address(self) -> str:
        """``host:port``, what the log says about the broker."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class MqttBridge:
    """Publishes the NVR's state to an MQTT broker and takes recording commands from it.

    ``cameras`` are ``(camera id, display name)``. ``on_recording_command(camera, on)`` is
    called on paho's network thread when ``ON`` or ``OFF`` arrives on a camera's
    ``.../recording/set``: it must be thread-safe and return quickly (hand the work to the
    engine's own thread). The bridge does not echo the command; the switch in Home Assistant
    follows :meth:`recording`, called when the recording really starts or stops.
    """

    def __init__(
        self,
        settings: MqttSettings,
        cameras: Sequence[tuple[str, str]],
        on_recording_command: Callable[[str, bool], None],
    ) -> None:
        self._settings = settings
        self._on_command = on_recording_command
        self._layout = TopicLayout(settings.topic_prefix)
        self._keys = topic_keys([camera for camera, _ in cameras])
        self._cameras_by_key = {key: camera for camera, key in self._keys.items()}
        self._discovery = (
            discovery_messages(
                DiscoveryNode.for_prefix(
                    settings.topic_prefix, settings.node_name, settings.discovery_prefix
                ),
                self._layout,
                [(self._keys[camera], name or camera) for camera, name in cameras],
            )
            if settings.discovery
            else []
        )
        self._ha_status_topic = f"{settings.discovery_prefix}/status"
        # The last value of every retained topic, in the order first set: republished on connect.
        self._retained: dict[str, bytes] = {}
        # Held while a retained value is changed and published, and while all are republished:
        # a republish never sends a value older than one already sent.
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._started = False
        self._stopped = False
        self._was_connected = False
        self._failed_attempts = 0
        register_secret(settings.password)
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        s = self._settings
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        if s.username:
            client.username_pw_set(s.username, s.password)
        client.will_set(self._layout.available, PAYLOAD_OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        client.max_queued_messages_set(MAX_QUEUED_EVENTS)
        # paho's decorators, applied as calls (same as assigning client.on_connect etc.).
        client.connect_callback()(self._on_connect_cb)
        client.connect_fail_callback()(self._on_connect_fail_cb)
        client.disconnect_callback()(self._on_disconnect_cb)
        client.message_callback()(self._on_message_cb)
        return client

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; returns at once, broker or not."""
        if self._started:
            return
        self._started = True
        logger.info(
            "MQTT: connecting to %s as %r", self._settings.address, self._settings.client_id
        )
        # connect_async only records the address: the network thread resolves and connects.
        self._client.connect_async(
            self._settings.host, self._settings.port, keepalive=self._settings.keepalive_s
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Publish ``offline`` (if connected), disconnect, end the network thread. Idempotent.

        Waits at most :data:`STOP_PUBLISH_TIMEOUT_S` for the broker to take ``offline``, and for
        the network thread up to about a second more (it sleeps its reconnect wait in 1 s steps,
        or a connection attempt up to paho's 5 s connect timeout)."""
        if not self._started or self._stopped:
            self._stopped = True
            return
        self._stopped = True
        if self._connected.is_set():
            info = self._client.publish(self._layout.available, PAYLOAD_OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=STOP_PUBLISH_TIMEOUT_S)
            except (RuntimeError, ValueError) as exc:  # the connection went meanwhile
                logger.debug("MQTT: offline not published: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        logger.info("MQTT: stopped (%s)", self._settings.address)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- what the engine reports -----------------------------------------------------------------

    def camera_state(self, camera: str, state: str, detail: str = "") -> None:
        """The camera's state (``streaming``, ``reconnecting``...) and a free-text detail
        (``retry in 2 s``), which goes to the attributes so that the state stays one word for
        automations."""
        key = self._key(camera)
        if key is None:
            return
        topics = self._layout.camera(key)
        attributes = json.dumps({"camera": camera, "detail": detail}).encode()
        self._set_retained(
            (topics.state, state[:MAX_STATE_CHARS].encode()), (topics.attributes, attributes)
        )

    def recording(self, camera: str, on: bool) -> None:
        key = self._key(camera)
        if key is not None:
            self._set_retained((self._layout.camera(key).recording, _on_off(on)))

    def motion(self, camera: str, on: bool) -> None:
        key = self._key(camera)
        if key is not None:
            self._set_retained((self._layout.camera(key).motion, _on_off(on)))

    def event_started(self, camera: str, event_id: int, start_utc: float, score: float) -> None:
        self._event(camera, "start", event_id, start_utc, None, score)

    def event_ended(
        self,
        camera: str,
        event_id: int,
        start_utc: float,
        end_utc: float,
        score: float,
        thumbnail_jpeg: bytes | None,
    ) -> None:
        """The event's end, and its peak frame as the camera's retained thumbnail (if any)."""
        self._event(camera, "end", event_id, start_utc, end_utc, score)
        key = self._key(camera)
        if key is not None and thumbnail_jpeg is not None:
            self._set_retained((self._layout.camera(key).thumbnail, bytes(thumbnail_jpeg)))

    def _event(
        self,
        camera: str,
        kind: str,
        event_id: int,
        start_utc: float,
        end_utc: float | None,
        score: float,
    ) -> None:
        key = self._key(camera)
        if key is None:
            return
        payload = {
            "type": kind,
            "id": event_id,
            "camera": camera,
            "start": start_utc,
            "end": end_utc,
            "score": score,
        }
        self._publish(self._layout.camera(key).event, json.dumps(payload).encode(), qos=1)

    def _key(self, camera: str) -> str | None:
        key = self._keys.get(camera)
        if key is None:
            logger.debug("MQTT: no camera %r; ignored", camera)
        return key

    def _set_retained(self, *values: tuple[str, bytes]) -> None:
        with self._lock:
            for topic, payload in values:
                if self._retained.get(topic) == payload:
                    continue
                self._retained[topic] = payload
                if self._connected.is_set():
                    self._publish(topic, payload, retain=True)

    def _publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Hand a message to paho (which never blocks here: its thread does the writing)."""
        if self._stopped:
            return
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, RuntimeError) as exc:
            logger.warning("MQTT: cannot publish to %s: %s", topic, exc)
            return
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            logger.debug("MQTT: %s not published: %s", topic, paho.error_string(info.rc))

    # -- paho's callbacks (its network thread) ---------------------------------------------------

    def _on_connect_cb(
        self,
        client: paho.Client,
        _userdata: Any,
        _flags: paho.ConnectFlags,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        if reason.is_failure:
            self._connect_failed(str(reason), refused=True)
            return
        # Subscribed here, not once in start(): a clean session forgets subscriptions.
        client.subscribe(self._layout.recording_set_filter, qos=1)
        if self._discovery:
            client.subscribe(self._ha_status_topic, qos=1)
        with self._lock:
            self._publish(self._layout.available, PAYLOAD_ONLINE.encode(), qos=1, retain=True)
            self._publish_discovery()
            for topic, payload in self._retained.items():
                self._publish(topic, payload, retain=True)
            self._connected.set()
        if not self._was_connected:
            logger.info("MQTT: connected to %s", self._settings.address)
        else:
            logger.info(
                "MQTT: reconnected to %s (%d failed attempt%s in between); state republished",
                self._settings.address,
                self._failed_attempts,
                "" if self._failed_attempts == 1 else "s",
            )
        self._was_connected = True
        self._failed_attempts = 0

    def _publish_discovery(self) -> None:
        for message in self._discovery:
            self._publish(message.topic, message.payload_bytes(), qos=1, retain=True)

    def _on_connect_fail_cb(self, _client: paho.Client, _userdata: Any) -> None:
        self._connect_failed("no connection", refused=False)

    def _connect_failed(self, reason: str, *, refused: bool) -> None:
        self._failed_attempts += 1
        if self._failed_attempts > 1:
            logger.debug(
                "MQTT: %s still unavailable (%s, attempt %d)",
                self._settings.address,
                reason,
                self._failed_attempts,
            )
        elif refused:
            # Wrong credentials, or not allowed: retried at the backoff's pace all the same
            # (the broker's configuration may change), but said plainly, once.
            logger.error(
                "MQTT: %s refused the connection: %s (check mqtt.username and mqtt.password); "
                "retrying every %d s at most",
                self._settings.address,
                reason,
                RECONNECT_MAX_DELAY_S,
            )
        elif not self._was_connected:
            logger.warning(
                "MQTT: cannot connect to %s; retrying in the background", self._settings.address
            )

    def _on_disconnect_cb(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        _reason: ReasonCode,
        _properties: Any,
    ) -> None:
        was_up = self._connected.is_set()
        self._connected.clear()
        if was_up and not self._stopped:
            logger.warning(
                "MQTT: lost the connection to %s; reconnecting in the background",
                self._settings.address,
            )

    def _on_message_cb(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic == self._ha_status_topic:
            if msg.payload == _HA_ONLINE and self._connected.is_set():
                # Home Assistant (re)started: its docs ask for the configs again.
                logger.debug("MQTT: Home Assistant is online; discovery republished")
                with self._lock:
                    self._publish_discovery()
            return
        key = self._layout.command_key(msg.topic)
        camera = self._cameras_by_key.get(key) if key is not None else None
        if camera is None:
            logger.debug("MQTT: command on %s: no such camera; ignored", msg.topic)
            return
        text = msg.payload.decode("utf-8", "replace").strip().upper()
        if text not in (PAYLOAD_ON, PAYLOAD_OFF):
            logger.warning(
                "MQTT: recording command %r on %s: expected ON or OFF; ignored",
                msg.payload[:40],
                msg.topic,
                extra={"camera": camera},
            )
            return
        logger.info("MQTT: recording %s asked", text, extra={"camera": camera})
        try:
            self._on_command(camera, text == PAYLOAD_ON)
        except Exception:  # paho's thread must survive whatever the engine does
            logger.exception("MQTT: recording command failed", extra={"camera": camera})


def _on_off(on: bool) -> bytes:
    return (PAYLOAD_ON if on else PAYLOAD_OFF).encode()
