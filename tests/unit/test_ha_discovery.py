"""Home Assistant discovery payloads, checked against Home Assistant's documented schema.

The tables below are the "Configuration Variables" of each entity's page, as of Home Assistant
2025.10+ (``default_entity_id`` replaces the deprecated ``object_id``):

- https://www.home-assistant.io/integrations/binary_sensor.mqtt/
- https://www.home-assistant.io/integrations/switch.mqtt/
- https://www.home-assistant.io/integrations/sensor.mqtt/
- https://www.home-assistant.io/integrations/image.mqtt/
- https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery (discovery topic format,
  ``origin``; "unknown configuration keys are allowed but ignored", which is why a typo would
  pass unnoticed in Home Assistant and has to be caught here)

``platform`` is left out: "Only allowed and required in MQTT auto discovery device messages";
these are single-component messages. The entity id rule is Home Assistant core's
``VALID_ENTITY_ID`` (homeassistant/core.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest
from paho.mqtt.client import topic_matches_sub

from nvr_gstreamer import __version__
from nvr_gstreamer.service.ha_discovery import (
    DiscoveryMessage,
    DiscoveryNode,
    TopicLayout,
    check_topic_prefix,
    discovery_messages,
    entity_slug,
    sanitize_id,
    topic_keys,
)

STR, BOOL, INT, LIST, MAP = "string", "boolean", "integer", "list", "map"

# Options every MQTT entity page documents (availability, device, naming, attributes...).
COMMON: dict[str, str] = {
    "availability": LIST,
    "availability_mode": STR,
    "availability_template": STR,
    "availability_topic": STR,
    "default_entity_id": STR,
    "device": MAP,
    "enabled_by_default": BOOL,
    "encoding": STR,
    "entity_category": STR,
    "entity_picture": STR,
    "icon": STR,
    "json_attributes_template": STR,
    "json_attributes_topic": STR,
    "name": STR,
    "unique_id": STR,
    # From the discovery section of the MQTT page: "It is recommended to add information about
    # the origin of MQTT entities by including the origin option".
    "origin": MAP,
}
# binary_sensor, switch and sensor list these two at the top level; image only inside
# `availability`.
TOP_LEVEL_AVAILABILITY = {"payload_available": STR, "payload_not_available": STR}

SCHEMA: dict[str, dict[str, Any]] = {
    "binary_sensor": {
        "required": {"state_topic"},
        "allowed": COMMON
        | TOP_LEVEL_AVAILABILITY
        | {
            "device_class": STR,
            "expire_after": INT,
            "force_update": BOOL,
            "off_delay": INT,
            "payload_off": STR,
            "payload_on": STR,
            "qos": INT,
            "state_topic": STR,
            "value_template": STR,
        },
    },
    "switch": {
        "required": {"command_topic"},
        "allowed": COMMON
        | TOP_LEVEL_AVAILABILITY
        | {
            "command_template": STR,
            "command_topic": STR,
            "device_class": STR,
            "optimistic": BOOL,
            "payload_off": STR,
            "payload_on": STR,
            "qos": INT,
            "retain": BOOL,
            "state_off": STR,
            "state_on": STR,
            "state_topic": STR,
            "value_template": STR,
        },
    },
    "sensor": {
        "required": {"state_topic"},
        "allowed": COMMON
        | TOP_LEVEL_AVAILABILITY
        | {
            "device_class": STR,
            "expire_after": INT,
            "force_update": BOOL,
            "last_reset_value_template": STR,
            "options": LIST,
            "qos": INT,
            "state_class": STR,
            "state_topic": STR,
            "suggested_display_precision": INT,
            "unit_of_measurement": STR,
            "value_template": STR,
        },
    },
    "image": {
        # "image_topic ... cannot be used together with the url_topic option. But at least one
        # of these option is required."
        "required": set(),
        "one_of": {"image_topic", "url_topic"},
        "allowed": COMMON
        | {
            "content_type": STR,
            "image_encoding": STR,
            "image_topic": STR,
            "url_template": STR,
            "url_topic": STR,
        },
    },
}
AVAILABILITY_ITEM = {
    "required": {"topic"},
    "allowed": {"topic": STR, "payload_available": STR, "payload_not_available": STR},
}
DEVICE = {
    "allowed": {
        "configuration_url": STR,
        "connections": LIST,
        "hw_version": STR,
        "identifiers": LIST,
        "manufacturer": STR,
        "model": STR,
        "model_id": STR,
        "name": STR,
        "serial_number": STR,
        "suggested_area": STR,
        "sw_version": STR,
        "via_device": STR,
    }
}
ORIGIN = {"required": {"name"}, "allowed": {"name": STR, "sw_version": STR, "support_url": STR}}

_PY_TYPES: dict[str, type] = {STR: str, BOOL: bool, INT: int, LIST: list, MAP: dict}
# homeassistant/core.py VALID_ENTITY_ID
VALID_ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")
# "must only consist of characters from the character class [a-zA-Z0-9_-]"
DISCOVERY_TOPIC = re.compile(
    r"^(?P<prefix>.+)/(?P<component>[a-z_]+)/(?P<node>[a-zA-Z0-9_-]+)/"
    r"(?P<object>[a-zA-Z0-9_-]+)/config$"
)
# Home Assistant's device classes used here (binary_sensor.mqtt -> binary_sensor#device-class).
BINARY_SENSOR_CLASSES = {"motion", "running"}
ENTITY_CATEGORIES = {"config", "diagnostic"}

NODE = DiscoveryNode.for_prefix("nvr", "NVR", "homeassistant")
LAYOUT = TopicLayout("nvr")
CAMERAS = [("front-door", "Front door"), ("garage", "Garage"), ("back_yard", "")]


def problems(obj: Mapping[str, Any], schema: Mapping[str, Any], where: str) -> list[str]:
    """Every way ``obj`` breaks ``schema`` (unknown key, missing key, wrong type)."""
    found = []
    allowed: Mapping[str, str] = schema["allowed"]
    for key, value in obj.items():
        if key not in allowed:
            found.append(f"{where}: unknown key {key!r}")
        elif not isinstance(value, _PY_TYPES[allowed[key]]) or (
            allowed[key] == INT and isinstance(value, bool)
        ):
            found.append(f"{where}.{key}: expected {allowed[key]}, got {value!r}")
    for key in schema.get("required", ()):
        if key not in obj:
            found.append(f"{where}: required key {key!r} missing")
    one_of = schema.get("one_of")
    if one_of and len(one_of & obj.keys()) != 1:
        found.append(f"{where}: exactly one of {sorted(one_of)} expected")
    return found


def validate(message: DiscoveryMessage) -> list[str]:
    payload = message.payload
    where = message.topic
    found = problems(payload, SCHEMA[message.component], where)
    found += problems(payload.get("device", {}), DEVICE, f"{where}.device")
    found += problems(payload.get("origin", {"name": ""}), ORIGIN, f"{where}.origin")
    for i, item in enumerate(payload.get("availability", [])):
        found += problems(item, AVAILABILITY_ITEM, f"{where}.availability[{i}]")
    return found


def published_topics(keys: list[str]) -> set[str]:
    """Every topic the bridge publishes to."""
    topics = {LAYOUT.available}
    for key in keys:
        t = LAYOUT.camera(key)
        topics |= {t.state, t.attributes, t.recording, t.motion, t.event, t.thumbnail}
    return topics


@pytest.fixture
def messages() -> list[DiscoveryMessage]:
    keys = topic_keys([camera for camera, _ in CAMERAS])
    return discovery_messages(NODE, LAYOUT, [(keys[c], name or c) for c, name in CAMERAS])


def test_the_schema_check_catches_what_home_assistant_would_ignore() -> None:
    good = {"state_topic": "nvr/x/motion", "device_class": "motion"}
    assert problems(good, SCHEMA["binary_sensor"], "m") == []
    assert problems({**good, "stat_topic": "x"}, SCHEMA["binary_sensor"], "m") == [
        "m: unknown key 'stat_topic'"
    ]
    assert problems({"name": "x"}, SCHEMA["binary_sensor"], "m") == [
        "m: required key 'state_topic' missing"
    ]
    assert problems({**good, "off_delay": True}, SCHEMA["binary_sensor"], "m") == [
        "m.off_delay: expected integer, got True"
    ]
    assert problems({"image_topic": "a", "url_topic": "b"}, SCHEMA["image"], "i") == [
        "i: exactly one of ['image_topic', 'url_topic'] expected"
    ]


def test_every_payload_follows_the_documented_schema(messages: list[DiscoveryMessage]) -> None:
    assert [p for m in messages for p in validate(m)] == []


def test_entities_per_camera_and_the_nvr_itself(messages: list[DiscoveryMessage]) -> None:
    by_device: dict[str, list[str]] = {}
    for m in messages:
        by_device.setdefault(m.payload["device"]["identifiers"][0], []).append(m.component)
    assert by_device == {
        "nvr": ["binary_sensor"],
        "nvr_front-door": ["binary_sensor", "switch", "sensor", "image"],
        "nvr_garage": ["binary_sensor", "switch", "sensor", "image"],
        "nvr_back_yard": ["binary_sensor", "switch", "sensor", "image"],
    }


def test_one_device_block_per_camera(messages: list[DiscoveryMessage]) -> None:
    front = [m.payload["device"] for m in messages if "front-door" in m.topic]
    assert len(front) == 4
    assert all(d == front[0] for d in front)
    assert front[0] == {
        "identifiers": ["nvr_front-door"],
        "name": "Front door",
        "manufacturer": "nvr_gstreamer",
        "model": "RTSP camera",
        "sw_version": __version__,
        "via_device": "nvr",
    }
    # The device via_device points at exists: the NVR's own.
    nvr = [m.payload["device"] for m in messages if m.payload["device"].get("via_device") is None]
    assert nvr[0]["identifiers"] == ["nvr"]
    # A camera without a display name is shown by its id.
    assert {m.payload["device"]["name"] for m in messages if "back_yard" in m.topic} == {
        "back_yard"
    }


def test_topics_ids_and_entity_ids(messages: list[DiscoveryMessage]) -> None:
    for m in messages:
        match = DISCOVERY_TOPIC.match(m.topic)
        assert match, m.topic
        assert match["prefix"] == "homeassistant"
        assert match["component"] == m.component
        assert match["node"] == "nvr"
        default = m.payload["default_entity_id"]
        assert VALID_ENTITY_ID.match(default), default
        assert default.split(".")[0] == m.component
    assert [m.topic for m in messages if "front-door" in m.topic] == [
        "homeassistant/binary_sensor/nvr/front-door_motion/config",
        "homeassistant/switch/nvr/front-door_recording/config",
        "homeassistant/sensor/nvr/front-door_status/config",
        "homeassistant/image/nvr/front-door_last_event/config",
    ]
    assert [m.payload["default_entity_id"] for m in messages if "front-door" in m.topic] == [
        "binary_sensor.nvr_front_door_motion",
        "switch.nvr_front_door_recording",
        "sensor.nvr_front_door_status",
        "image.nvr_front_door_last_event",
    ]


def test_unique_ids_are_unique_across_cameras() -> None:
    # Ids chosen to collide after sanitising, or to end like an entity name.
    cameras = ["a", "a_motion", "a-b", "a_b", "a/b", "a+b", "a#b", "", "_", "x_last", "x"]
    keys = topic_keys(cameras)
    messages = discovery_messages(NODE, LAYOUT, [(keys[c], c) for c in cameras])
    unique_ids = [m.payload["unique_id"] for m in messages]
    assert len(unique_ids) == len(set(unique_ids)) == 1 + 4 * len(cameras)
    topics = [m.topic for m in messages]
    assert len(topics) == len(set(topics))
    assert [p for m in messages for p in validate(m)] == []


def test_payload_topics_are_the_bridge_s(messages: list[DiscoveryMessage]) -> None:
    keys = list(topic_keys([c for c, _ in CAMERAS]).values())
    published = published_topics(keys)
    for m in messages:
        p = m.payload
        for key in ("state_topic", "image_topic", "json_attributes_topic", "availability_topic"):
            if key in p:
                assert p[key] in published, (m.topic, key, p[key])
        for item in p.get("availability", []):
            assert item["topic"] == LAYOUT.available
        if "command_topic" in p:
            assert topic_matches_sub(LAYOUT.recording_set_filter, p["command_topic"])
            assert LAYOUT.command_key(p["command_topic"]) in keys
    motion = next(m.payload for m in messages if m.topic.endswith("/front-door_motion/config"))
    assert motion["state_topic"] == "nvr/front-door/motion"
    assert (motion["payload_on"], motion["payload_off"]) == ("ON", "OFF")
    assert motion["device_class"] in BINARY_SENSOR_CLASSES
    switch = next(m.payload for m in messages if m.component == "switch")
    assert switch["command_topic"] == "nvr/front-door/recording/set"
    assert switch["state_topic"] == "nvr/front-door/recording"
    image = next(m.payload for m in messages if m.component == "image")
    assert (image["image_topic"], image["content_type"]) == (
        "nvr/front-door/thumbnail",
        "image/jpeg",
    )
    sensor = next(m.payload for m in messages if m.component == "sensor")
    assert sensor["icon"].startswith("mdi:")
    assert "entity_category" not in sensor or sensor["entity_category"] in ENTITY_CATEGORIES


def test_payload_bytes_is_the_payload_as_json(messages: list[DiscoveryMessage]) -> None:
    for m in messages:
        assert json.loads(m.payload_bytes()) == m.payload


@pytest.mark.parametrize(
    ("cameras", "expected"),
    [
        (["cam1", "front-door", "Back_Yard"], ["cam1", "front-door", "Back_Yard"]),
        (["a/b", "a+b", "a#b", "a b", "é"], ["a_b", "a_b_2", "a_b_3", "a_b_4", "_"]),
        (["x_2", "x?", "x!"], ["x_2", "x_", "x__2"]),
        (["a b", "a_b_2", "a+b", ""], ["a_b", "a_b_2", "a_b_3", "camera"]),
    ],
)
def test_topic_keys_are_unique_topic_levels(cameras: list[str], expected: list[str]) -> None:
    keys = topic_keys(cameras)
    assert [keys[c] for c in cameras] == expected
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", k) for k in keys.values())


def test_a_command_topic_leads_back_to_its_camera() -> None:
    cameras = ["a/b", "a+b", "front-door"]
    keys = topic_keys(cameras)
    by_key = {key: camera for camera, key in keys.items()}
    for camera in cameras:
        topic = LAYOUT.camera(keys[camera]).recording_set
        assert by_key[LAYOUT.command_key(topic) or ""] == camera
    for topic in (
        "nvr/recording/set",
        "nvr/a/b/recording/set",
        "other/x/recording/set",
        "nvr/x/recording",
    ):
        assert LAYOUT.command_key(topic) is None


def test_prefixes_with_levels() -> None:
    layout = TopicLayout("home/nvr")
    assert layout.camera("x").motion == "home/nvr/x/motion"
    assert layout.command_key("home/nvr/x/recording/set") == "x"
    node = DiscoveryNode.for_prefix("home/nvr", "NVR", "ha/disc")
    assert node.node_id == "home_nvr"
    messages = discovery_messages(node, layout, [("x", "X")])
    assert messages[1].topic == "ha/disc/binary_sensor/home_nvr/x_motion/config"
    assert [p for m in messages for p in validate(m)] == []


@pytest.mark.parametrize("prefix", ["", "a/+", "#", "/nvr", "nvr/", "a//b", "a\x00b"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="mqtt.topic_prefix"):
        check_topic_prefix(prefix, "mqtt.topic_prefix")


def test_slugs_and_ids() -> None:
    assert entity_slug("Front-Door  1") == "front_door_1"
    assert entity_slug("__x__") == "x"
    assert entity_slug("---") == "camera"
    assert sanitize_id("a b/c") == "a_b_c"
    assert sanitize_id("", "nvr") == "nvr"
