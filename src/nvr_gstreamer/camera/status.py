"""Immutable status snapshots and events, read by the API and the UI from any thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.storage.volume import StorageState


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
    recording: bool  # a recording branch is attached: footage is being (or about to be) written
    recording_wanted: bool  # recording is switched on (config `record`, or the API/UI)
    storage_state: StorageState | None  # None: no storage configured
    current_segment: str | None  # path of the file being written, relative to the storage root
    codec: str | None
    audio_codec: str | None  # aac | pcma | pcmu | opus, recorded untouched; None: no audio
    transport: str  # tcp | udp: in use, or being tried (transport: auto chooses)
    receive_path: str | None  # stamp (TCP, no jitterbuffer thread) | jitterbuffer; None: down
    rtp_packets_lost: int  # over the camera's whole run (UDP; TCP loses nothing)
    rtp_packets_late: int  # arrived out of order too late to be used
    frames: int  # video frames received, over the camera's whole run
    bytes: int
    fps: float
    bitrate_bps: float
    disconnects: int
    reconnect_attempts: int
    stalls: int
    errors: tuple[tuple[ErrorKind, int], ...]
    stalled: bool = False  # down because its video stopped while connected (not an error)
    motion: bool | None = None  # a motion event goes on; None: motion detection is off

    def error_count(self, kind: ErrorKind) -> int:
        return dict(self.errors).get(kind, 0)


@dataclass(frozen=True, slots=True)
class RecordingChanged:
    """Recording switched on or off. "Off" goes out only once the last file is final."""

    camera_id: str
    recording: bool
    reason: str
    status: CameraStatus


@dataclass(frozen=True, slots=True)
class CameraStateChanged:
    camera_id: str
    old: CameraState
    new: CameraState
    reason: str
    status: CameraStatus


@dataclass(frozen=True, slots=True)
class MotionEvent:
    """A motion event began (``end_utc`` None) or ended (with its peak's thumbnail)."""

    camera_id: str
    event_id: int
    start_utc: float
    end_utc: float | None
    score: float
    boxes: tuple[tuple[float, float, float, float], ...]
    thumbnail: bytes | None
    status: CameraStatus

    @property
    def started(self) -> bool:
        return self.end_utc is None


EngineEvent = CameraStateChanged | RecordingChanged | MotionEvent
