"""The MQTT bridge against a real Mosquitto, read by a second MQTT client."""

from __future__ import annotations

import json
import logging
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nvr_gstreamer.service.ha_discovery import DiscoveryNode, TopicLayout, discovery_messages
from nvr_gstreamer.service.mqtt import MqttBridge, MqttSettings
from nvr_gstreamer.testing.mosquitto import MosquittoBroker, MqttObserver

pytestmark = pytest.mark.integration

CAMERAS = [("cam1", "Front door"), ("cam/2", "")]  # "cam/2" is published as "cam_2"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"
PASSWORD = "mqtt-pw-5e1f-secret"
WAIT_S = 10.0

Commands = queue.Queue[tuple[str, bool]]
MakeBridge = Callable[..., MqttBridge]


class LogWaiter(logging.Handler):
    """Sets an event when a record of the bridge's logger matches ``pattern``."""

    def __init__(self, pattern: str) -> None:
        super().__init__(logging.DEBUG)
        self.pattern = re.compile(pattern)
        self.seen = threading.Event()
        self._logger = logging.getLogger("nvr_gstreamer.service.mqtt")

    def emit(self, record: logging.LogRecord) -> None:
        if self.pattern.search(record.getMessage()):
            self.seen.set()

    def __enter__(self) -> LogWaiter:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._logger.removeHandler(self)


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker() as b:
        yield b


@pytest.fixture
def commands() -> Commands:
    return queue.Queue()


@pytest.fixture
def make_bridge(commands: Commands) -> Iterator[MakeBridge]:
    bridges: list[MqttBridge] = []

    def make(port: int, **settings: Any) -> MqttBridge:
        bridge = MqttBridge(
            MqttSettings(host="127.0.0.1", port=port, **settings),
            CAMERAS,
            lambda camera, on: commands.put((camera, on)),
        )
        bridges.append(bridge)
        bridge.start()
        return bridge

    yield make
    for bridge in bridges:
        bridge.stop()


def started(make_bridge: MakeBridge, broker: MosquittoBroker, **settings: Any) -> MqttBridge:
    """A bridge that is connected and has published everything (its 'online' seen)."""
    with MqttObserver(broker.port, "nvr/available") as observer:
        bridge = make_bridge(broker.port, **settings)
        observer.wait_for("nvr/available", b"online", WAIT_S)
    return bridge


def test_retained_state_reaches_a_late_subscriber(
    broker: MosquittoBroker, make_bridge: MakeBridge
) -> None:
    bridge = started(make_bridge, broker)
    assert bridge.connected
    with MqttObserver(broker.port, "nvr/#") as early:
        bridge.camera_state("cam1", "reconnecting", "retry in 2 s")
        bridge.recording("cam1", True)
        bridge.motion("cam1", True)
        bridge.motion("cam/2", False)
        bridge.event_started("cam1", 7, 1700000000.5, 0.4)
        bridge.event_ended("cam1", 7, 1700000000.5, 1700000012.25, 0.9, JPEG)
        bridge.motion("cam1", False)
        bridge.recording("nope", True)  # unknown camera: ignored, no exception
        start = early.wait_for("nvr/cam1/event", timeout_s=WAIT_S)
        end = early.wait_for("nvr/cam1/event", timeout_s=WAIT_S)
        early.wait_for("nvr/cam1/motion", b"OFF", WAIT_S)
    assert json.loads(start.payload) == {
        "type": "start",
        "id": 7,
        "camera": "cam1",
        "start": 1700000000.5,
        "end": None,
        "score": 0.4,
    }
    assert json.loads(end.payload) == {
        "type": "end",
        "id": 7,
        "camera": "cam1",
        "start": 1700000000.5,
        "end": 1700000012.25,
        "score": 0.9,
    }
    assert not start.retain and not end.retain

    with MqttObserver(broker.port, "nvr/#") as late:
        # Retained messages come with the subscription, before anything published after it.
        late.publish("nvr/zz-marker", b"x")
        late.wait_for("nvr/zz-marker", timeout_s=WAIT_S)
    retained = {m.topic: m.payload for m in late.seen if m.retain}
    assert retained == {
        "nvr/available": b"online",
        "nvr/cam1/state": b"reconnecting",
        "nvr/cam1/attributes": json.dumps({"camera": "cam1", "detail": "retry in 2 s"}).encode(),
        "nvr/cam1/recording": b"ON",
        "nvr/cam1/motion": b"OFF",
        "nvr/cam1/thumbnail": JPEG,
        "nvr/cam_2/motion": b"OFF",
    }
    assert [m.topic for m in late.seen if not m.retain] == ["nvr/zz-marker"]


def test_discovery_for_every_camera_and_again_when_home_assistant_starts(
    broker: MosquittoBroker, make_bridge: MakeBridge
) -> None:
    started(make_bridge, broker)
    expected = discovery_messages(
        DiscoveryNode.for_prefix("nvr", "NVR", "homeassistant"),
        TopicLayout("nvr"),
        [("cam1", "Front door"), ("cam_2", "cam/2")],
    )
    assert len(expected) == 9
    with MqttObserver(broker.port, "homeassistant/+/+/+/config") as observer:
        got = observer.wait_for_all([m.topic for m in expected], WAIT_S)
        for message in expected:
            assert got[message.topic].retain
            assert json.loads(got[message.topic].payload) == message.payload
        # Home Assistant's birth message: the configs are sent again, live.
        observer.publish("homeassistant/status", b"online")
        again = observer.wait_for(expected[-1].topic, timeout_s=WAIT_S)
        assert not again.retain


def test_recording_commands(
    broker: MosquittoBroker,
    make_bridge: MakeBridge,
    commands: Commands,
    caplog: pytest.LogCaptureFixture,
) -> None:
    started(make_bridge, broker)
    with MqttObserver(broker.port) as ha:
        ha.publish("nvr/cam1/recording/set", b"ON")
        assert commands.get(timeout=WAIT_S) == ("cam1", True)
        # A bad payload and an unknown camera are ignored: the next command is the next call.
        ha.publish("nvr/cam1/recording/set", b"maybe")
        ha.publish("nvr/ghost/recording/set", b"ON")
        ha.publish("nvr/cam_2/recording/set", b"OFF")
        assert commands.get(timeout=WAIT_S) == ("cam/2", False)
    assert any(
        "expected ON or OFF" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )
    assert commands.empty()


def test_a_failing_command_handler_does_not_stop_the_bridge(broker: MosquittoBroker) -> None:
    calls: Commands = queue.Queue()

    def handler(camera: str, on: bool) -> None:
        calls.put((camera, on))
        if on:
            raise RuntimeError("engine said no")

    bridge = MqttBridge(MqttSettings(host="127.0.0.1", port=broker.port), CAMERAS, handler)
    with MqttObserver(broker.port, "nvr/available") as ha:
        bridge.start()
        try:
            ha.wait_for("nvr/available", b"online", WAIT_S)
            ha.publish("nvr/cam1/recording/set", b"ON")
            ha.publish("nvr/cam1/recording/set", b"OFF")
            assert [calls.get(timeout=WAIT_S) for _ in range(2)] == [
                ("cam1", True),
                ("cam1", False),
            ]
        finally:
            bridge.stop()
        assert ha.wait_for("nvr/available", b"offline", WAIT_S).retain is False


CRASHING_NVR = """
import sys, threading
from nvr_gstreamer.service.mqtt import MqttBridge, MqttSettings
settings = MqttSettings(host="127.0.0.1", port=int(sys.argv[1]), client_id="crashing-nvr")
MqttBridge(settings, [("cam1", "")], lambda camera, on: None).start()
threading.Event().wait()
"""


def test_last_will_when_the_nvr_dies(broker: MosquittoBroker) -> None:
    with MqttObserver(broker.port, "nvr/available") as observer:
        child = subprocess.Popen([sys.executable, "-c", CRASHING_NVR, str(broker.port)])
        try:
            observer.wait_for("nvr/available", b"online", WAIT_S)
            child.send_signal(signal.SIGKILL)
            observer.wait_for("nvr/available", b"offline", WAIT_S)
        finally:
            child.kill()
            child.wait()
    with MqttObserver(broker.port, "nvr/available") as late:
        assert late.wait_for("nvr/available", timeout_s=WAIT_S).payload == b"offline"
        assert late.seen[-1].retain


def test_broker_restart(
    broker: MosquittoBroker, make_bridge: MakeBridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nvr_gstreamer.service.mqtt")
    bridge = started(make_bridge, broker)
    bridge.camera_state("cam1", "streaming")
    bridge.recording("cam1", True)
    with MqttObserver(broker.port, "nvr/cam1/recording") as observer:
        observer.wait_for("nvr/cam1/recording", b"ON", WAIT_S)

    broker.kill()
    calls: list[tuple[str, Callable[[], object]]] = [
        ("camera_state", lambda: bridge.camera_state("cam1", "reconnecting", "retry in 1 s")),
        ("recording", lambda: bridge.recording("cam1", False)),
        ("motion", lambda: bridge.motion("cam1", True)),
        ("event_started", lambda: bridge.event_started("cam1", 1, 1700000000.0, 0.5)),
        (
            "event_ended",
            lambda: bridge.event_ended("cam1", 1, 1700000000.0, 1700000003.0, 0.7, JPEG),
        ),
        ("connected", lambda: bridge.connected),
    ]
    for name, call in calls:
        t0 = time.perf_counter()
        call()
        elapsed_s = time.perf_counter() - t0
        assert elapsed_s < 0.05, f"{name} took {elapsed_s * 1000:.1f} ms with the broker down"

    broker.restart()  # persistence off: the broker lost every retained message
    with MqttObserver(broker.port, "nvr/#") as observer:
        observer.wait_for("nvr/available", b"online", WAIT_S)
        observer.wait_for("nvr/cam1/state", b"reconnecting", WAIT_S)
        observer.wait_for("nvr/cam1/recording", b"OFF", WAIT_S)
        observer.wait_for("nvr/cam1/motion", b"ON", WAIT_S)
        observer.wait_for("nvr/cam1/thumbnail", JPEG, WAIT_S)
        # The events of the outage were queued (QoS 1) and arrive after it.
        types = [json.loads(observer.wait_for("nvr/cam1/event").payload)["type"] for _ in range(2)]
        assert types == ["start", "end"]
    assert bridge.connected
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lost the connection to 127.0.0.1:" in m for m in messages) == 1
    assert sum("reconnected to 127.0.0.1:" in m for m in messages) == 1


def test_username_and_password(make_bridge: MakeBridge, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with MosquittoBroker(users={"nvr": PASSWORD}) as broker:
        with MqttObserver(broker.port, "nvr/available", auth=("nvr", PASSWORD)) as observer:
            good = make_bridge(broker.port, username="nvr", password=PASSWORD)
            observer.wait_for("nvr/available", b"online", WAIT_S)
            good.stop()
            observer.wait_for("nvr/available", b"offline", WAIT_S)
        wrong = "wrong-" + PASSWORD
        with LogWaiter("refused the connection") as refused:
            bridge = make_bridge(
                broker.port, username="nvr", password=wrong, client_id="nvr-2", topic_prefix="b"
            )
            assert refused.seen.wait(WAIT_S)
        assert not bridge.connected
        bridge.stop()
    assert caplog.text
    for secret in (PASSWORD, wrong):
        assert secret not in caplog.text
        assert all(secret not in str(r.args) for r in caplog.records)
    assert PASSWORD not in repr(MqttSettings(host="h", username="u", password=PASSWORD))


def test_no_broker_never_blocks_the_caller(make_bridge: MakeBridge) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with LogWaiter("cannot connect to 127.0.0.1:") as failed:
        t0 = time.perf_counter()
        bridge = make_bridge(port)
        bridge.camera_state("cam1", "streaming")
        bridge.event_started("cam1", 1, 1700000000.0, 0.5)
        assert time.perf_counter() - t0 < 0.05
        assert failed.seen.wait(WAIT_S)
    assert not bridge.connected
    t0 = time.perf_counter()
    bridge.stop()
    bridge.stop()
    assert time.perf_counter() - t0 < 2.0
