"""The NVR's MQTT topics and its Home Assistant discovery messages. Pure: no network, no clock.

Topics (``<prefix>`` is ``mqtt.topic_prefix``, ``<camera>`` the camera's topic key, see
:func:`topic_keys`)::

    <prefix>/available              online | offline       retained; the last will says offline
    <prefix>/<camera>/state         streaming, reconnecting, ...     retained
    <prefix>/<camera>/attributes    {"camera": id, "detail": "retry in 2 s"}   retained
    <prefix>/<camera>/recording     ON | OFF               retained
    <prefix>/<camera>/recording/set ON | OFF               commands, from Home Assistant or anyone
    <prefix>/<camera>/motion        ON | OFF               retained
    <prefix>/<camera>/event         {"type": "start" | "end", "id", "camera", "start", "end",
                                     "score"}              not retained
    <prefix>/<camera>/thumbnail     JPEG of the last event's peak frame     retained

Discovery (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery): one retained config
per entity on ``<discovery_prefix>/<component>/<node_id>/<object_id>/config``, the node id being
the NVR's (from its topic prefix) and the object id ``<camera key>_<entity>``. Every camera is a
device (``via_device`` the NVR) with four entities: a motion ``binary_sensor``, a recording
``switch``, a status ``sensor`` and an ``image`` of the last event. The NVR itself is a device
with one ``binary_sensor`` (running), so that ``via_device`` names a device Home Assistant knows.

Entity ids are suggested with ``default_entity_id`` (Home Assistant 2025.10 and later; the older
``object_id`` is deprecated there and ignored from 2026.4; older versions ignore the new key and
name the entity after the device and the entity name, as they always did).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nvr_gstreamer import __version__

PAYLOAD_ONLINE = "online"
PAYLOAD_OFFLINE = "offline"
PAYLOAD_ON = "ON"
PAYLOAD_OFF = "OFF"

MANUFACTURER = "nvr_gstreamer"
CAMERA_MODEL = "RTSP camera"
NVR_MODEL = "Network video recorder"
ORIGIN = {"name": "nvr_gstreamer", "sw_version": __version__}

# Home Assistant: "The ID of the node must only consist of characters from the character class
# [a-zA-Z0-9_-]", the same for the object id. A topic key is also one MQTT topic level.
_NOT_ID_CHAR = re.compile(r"[^A-Za-z0-9_-]")
# An entity id's object part: lower-case letters, digits and single underscores inside.
_NOT_SLUG_CHAR = re.compile(r"[^a-z0-9]+")
# A topic prefix may have levels ("home/nvr"), but no wildcard, no NUL, no empty level.
_BAD_PREFIX = re.compile(r"[+#\x00]|^/|/$|//")


def check_topic_prefix(prefix: str, key: str) -> None:
    """Raise ValueError if ``prefix`` cannot begin an MQTT topic name (``key`` names it)."""
    if not prefix or _BAD_PREFIX.search(prefix):
        raise ValueError(
            f"{key} {prefix!r}: expected MQTT topic levels separated by '/', "
            "without '+', '#', empty levels or a leading or trailing '/'"
        )


def sanitize_id(text: str, fallback: str = "camera") -> str:
    """``text`` with every character outside ``[A-Za-z0-9_-]`` replaced by ``_``."""
    return _NOT_ID_CHAR.sub("_", text) or fallback


def entity_slug(text: str) -> str:
    """The object part of a Home Assistant entity id: ``Front-Door 1`` -> ``front_door_1``."""
    return _NOT_SLUG_CHAR.sub("_", text.lower()).strip("_") or "camera"


def topic_keys(camera_ids: Sequence[str]) -> dict[str, str]:
    """A topic key for each camera id: the id itself when it is a valid topic level and
    discovery id (every id the config accepts is), else the id sanitised; a key already taken
    gets ``_2``, ``_3``... The mapping is one-to-one, so a command's topic leads back to the
    camera."""
    keys: dict[str, str] = {}
    taken: set[str] = set()
    for camera in camera_ids:
        base = sanitize_id(camera)
        key = base
        n = 2
        while key in taken:
            key = f"{base}_{n}"
            n += 1
        taken.add(key)
        keys[camera] = key
    return keys


@dataclass(frozen=True, slots=True)
class CameraTopics:
    state: str
    attributes: str
    recording: str
    recording_set: str
    motion: str
    event: str
    thumbnail: str


@dataclass(frozen=True, slots=True)
class TopicLayout:
    """Where the NVR publishes, under ``prefix``."""

    prefix: str

    @property
    def available(self) -> str:
        return f"{self.prefix}/available"

    @property
    def recording_set_filter(self) -> str:
        """The one subscription that receives every camera's recording command."""
        return f"{self.prefix}/+/recording/set"

    def camera(self, key: str) -> CameraTopics:
        base = f"{self.prefix}/{key}"
        return CameraTopics(
            state=f"{base}/state",
            attributes=f"{base}/attributes",
            recording=f"{base}/recording",
            recording_set=f"{base}/recording/set",
            motion=f"{base}/motion",
            event=f"{base}/event",
            thumbnail=f"{base}/thumbnail",
        )

    def command_key(self, topic: str) -> str | None:
        """The camera key of a ``<prefix>/<key>/recording/set`` topic, else None."""
        head = f"{self.prefix}/"
        tail = "/recording/set"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        key = topic[len(head) : -len(tail)]
        return key if key and "/" not in key else None


@dataclass(frozen=True, slots=True)
class DiscoveryMessage:
    """One retained discovery config: ``payload`` goes to ``topic`` as JSON."""

    component: str
    topic: str
    payload: Mapping[str, Any]

    def payload_bytes(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class DiscoveryNode:
    """The NVR as Home Assistant sees it."""

    node_id: str
    name: str
    discovery_prefix: str

    @classmethod
    def for_prefix(cls, topic_prefix: str, name: str, discovery_prefix: str) -> DiscoveryNode:
        """The node id comes from the topic prefix, which already has to be unique per NVR on a
        broker (``home/nvr`` -> ``home_nvr``); the client id may change without renaming every
        entity in Home Assistant."""
        return cls(sanitize_id(topic_prefix, "nvr"), name, discovery_prefix)


def _topic(node: DiscoveryNode, component: str, object_id: str) -> str:
    return f"{node.discovery_prefix}/{component}/{node.node_id}/{object_id}/config"


def _entity(
    node: DiscoveryNode,
    component: str,
    object_id: str,
    device: Mapping[str, Any],
    config: Mapping[str, Any],
) -> DiscoveryMessage:
    unique_id = f"{node.node_id}_{object_id}"
    payload = {
        "unique_id": unique_id,
        "default_entity_id": f"{component}.{entity_slug(unique_id)}",
        "device": device,
        "origin": ORIGIN,
        **config,
    }
    return DiscoveryMessage(component, _topic(node, component, object_id), payload)


def node_messages(node: DiscoveryNode, layout: TopicLayout) -> list[DiscoveryMessage]:
    """The NVR's own device and its 'running' sensor (on when online, off after its last will)."""
    device = {
        "identifiers": [node.node_id],
        "name": node.name,
        "manufacturer": MANUFACTURER,
        "model": NVR_MODEL,
        "sw_version": __version__,
    }
    running = {
        "name": "Running",
        "device_class": "running",
        "state_topic": layout.available,
        "payload_on": PAYLOAD_ONLINE,
        "payload_off": PAYLOAD_OFFLINE,
    }
    return [_entity(node, "binary_sensor", "running", device, running)]


def camera_messages(
    node: DiscoveryNode, layout: TopicLayout, key: str, name: str
) -> list[DiscoveryMessage]:
    """The four entities of one camera, sharing one device block."""
    topics = layout.camera(key)
    device = {
        "identifiers": [f"{node.node_id}_{key}"],
        "name": name,
        "manufacturer": MANUFACTURER,
        "model": CAMERA_MODEL,
        "sw_version": __version__,
        "via_device": node.node_id,
    }
    # The list form: the image entity documents payload_available/payload_not_available only
    # inside it (their values here are the defaults, spelled out for other readers of the topic).
    available = {
        "availability": [
            {
                "topic": layout.available,
                "payload_available": PAYLOAD_ONLINE,
                "payload_not_available": PAYLOAD_OFFLINE,
            }
        ]
    }
    motion = {
        "name": "Motion",
        "device_class": "motion",
        "state_topic": topics.motion,
        "payload_on": PAYLOAD_ON,
        "payload_off": PAYLOAD_OFF,
        **available,
    }
    recording = {
        "name": "Recording",
        "icon": "mdi:record-rec",
        "state_topic": topics.recording,
        "command_topic": topics.recording_set,
        "payload_on": PAYLOAD_ON,
        "payload_off": PAYLOAD_OFF,
        # The switch follows what the NVR reports, not what it was asked.
        "optimistic": False,
        **available,
    }
    status = {
        "name": "Status",
        "icon": "mdi:cctv",
        "state_topic": topics.state,
        "json_attributes_topic": topics.attributes,
        **available,
    }
    last_event = {
        "name": "Last event",
        "image_topic": topics.thumbnail,
        "content_type": "image/jpeg",
        **available,
    }
    return [
        _entity(node, "binary_sensor", f"{key}_motion", device, motion),
        _entity(node, "switch", f"{key}_recording", device, recording),
        _entity(node, "sensor", f"{key}_status", device, status),
        _entity(node, "image", f"{key}_last_event", device, last_event),
    ]


def discovery_messages(
    node: DiscoveryNode, layout: TopicLayout, cameras: Sequence[tuple[str, str]]
) -> list[DiscoveryMessage]:
    """Every discovery config of the NVR; ``cameras`` is ``(topic key, display name)``."""
    messages = node_messages(node, layout)
    for key, name in cameras:
        messages += camera_messages(node, layout, key, name)
    return messages
