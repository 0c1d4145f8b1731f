"""Immutable status snapshots and events, read by the API and the UI from any thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.camera.supervisor import CameraState


@dataclass(frozen=True, slots=True)
class CameraStatus:
    camera_id: str
    name: str
    state: CameraState
    since: datetime  # UTC
    reason: str
    last_error_kind: ErrorKind | None
    last_error_message: str | None  # redacted
    reconnect_attempt: int
    next_retry_in_s: float | None
    codec: str | None
    frames: int  # video frames received, over the camera's whole run
    bytes: int
    fps: float
    bitrate_bps: float
    disconnects: int
    reconnect_attempts: int
    stalls: int
    errors: tuple[tuple[ErrorKind, int], ...]

    def error_count(self, kind: ErrorKind) -> int:
        return dict(self.errors).get(kind, 0)


@dataclass(frozen=True, slots=True)
class CameraStateChanged:
    camera_id: str
    old: CameraState
    new: CameraState
    reason: str
    status: CameraStatus
