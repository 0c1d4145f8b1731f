"""The engine's news to MQTT (and so to Home Assistant), and MQTT's recording commands back.

Camera states, recording on/off and motion events go to the :class:`MqttBridge` as the engine
publishes them (its listeners run on the loop thread; the bridge never blocks). A command
``ON``/``OFF`` on ``<prefix>/<camera>/recording/set`` arrives on paho's thread and is handed to
the loop; the switch in Home Assistant follows the recording the engine confirms, as the
desktop's and the web app's buttons do. A broker that is away never touches recording.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from nvr_gstreamer.camera.status import (
    CameraStateChanged,
    CameraStatus,
    EngineEvent,
    MotionEvent,
    RecordingChanged,
)
from nvr_gstreamer.config import MqttConfig, NvrConfig
from nvr_gstreamer.engine.engine import CameraEngine
from nvr_gstreamer.service.mqtt import MqttBridge, MqttSettings

logger = logging.getLogger(__name__)


def mqtt_settings(config: MqttConfig) -> MqttSettings:
    return MqttSettings(
        host=config.host,
        port=config.port,
        username=config.username,
        password=config.password.get_secret_value() if config.password else None,
        topic_prefix=config.topic_prefix,
        client_id=config.client_id,
        discovery=config.discovery,
        discovery_prefix=config.discovery_prefix,
    )


class MqttLink:
    def __init__(self, config: NvrConfig, engine: CameraEngine) -> None:
        assert config.mqtt is not None
        self._engine = engine
        cameras = [(c.id, c.display_name) for c in config.cameras]
        self.bridge = MqttBridge(mqtt_settings(config.mqtt), cameras, self._command)
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        """After the engine started: the current state first, then every change."""
        self._unsubscribe = self._engine.subscribe(self._on_event)
        for status in self._engine.statuses().values():
            self._state(status)
        self.bridge.start()

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.bridge.stop()

    def _state(self, status: CameraStatus) -> None:
        self.bridge.camera_state(status.camera_id, status.state.value, status.reason)
        self.bridge.recording(status.camera_id, status.recording)
        if status.motion is not None:
            self.bridge.motion(status.camera_id, status.motion)

    def _on_event(self, event: EngineEvent) -> None:  # the loop thread
        if isinstance(event, CameraStateChanged):
            self.bridge.camera_state(event.camera_id, event.new.value, event.reason)
        elif isinstance(event, RecordingChanged):
            self.bridge.recording(event.camera_id, event.recording)
        elif isinstance(event, MotionEvent):
            cam = event.camera_id
            if event.end_utc is None:
                self.bridge.motion(cam, True)
                self.bridge.event_started(cam, event.event_id, event.start_utc, event.score)
            else:
                self.bridge.event_ended(
                    cam, event.event_id, event.start_utc, event.end_utc, event.score,
                    event.thumbnail,
                )  # fmt: skip
                self.bridge.motion(cam, False)

    def _command(self, camera: str, on: bool) -> None:  # paho's thread
        logger.info("MQTT: recording %s for %s", "on" if on else "off", camera)
        self._engine.request_recording(camera, on)
