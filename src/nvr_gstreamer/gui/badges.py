"""What a tile says about its camera: pure functions of a status snapshot, tested without Qt."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.camera.status import CameraStatus
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.storage.volume import StorageState


class Tone(Enum):
    OK = "ok"
    BUSY = "busy"  # connecting, waiting: amber
    BAD = "bad"  # needs a person: red
    OFF = "off"  # stopped, disabled: grey


@dataclass(frozen=True, slots=True)
class Badge:
    text: str
    tone: Tone


@dataclass(frozen=True, slots=True)
class RecordingView:
    """How the recording control shows a camera."""

    text: str
    button: str  # the action the button offers: "Record" or "Stop"
    recording: bool  # the red dot
    tone: Tone


def badge(status: CameraStatus, elapsed_s: float = 0.0) -> Badge:
    """The state badge; ``elapsed_s`` is the time since the snapshot (counts the retry down)."""
    state = status.state
    if state is CameraState.STREAMING:
        return Badge("streaming", Tone.OK)
    if state is CameraState.CONNECTING:
        return Badge("connecting", Tone.BUSY)
    refused = status.last_error_kind is ErrorKind.TRANSPORT and "'transport:" in (
        status.last_error_message or ""
    )
    if state is CameraState.RECONNECTING and refused:
        # A forced transport the camera refuses: retrying will not help, a setting will.
        tcp = "TCP" in (status.last_error_message or "")
        return Badge(
            "refuses RTP over TCP: set transport udp or auto"
            if tcp
            else "no video over UDP: set transport tcp or auto",
            Tone.BAD,
        )
    if state is CameraState.RECONNECTING:
        what = "stalled" if status.stalled else "reconnecting"
        if status.next_retry_in_s is None:
            return Badge(f"{what}: waiting for the camera", Tone.BUSY)
        left = max(0, round(status.next_retry_in_s - elapsed_s))
        if left == 0:
            return Badge(f"{what}: retrying now", Tone.BUSY)
        return Badge(f"{what}: retry in {left} s", Tone.BUSY)
    if state is CameraState.UNAUTHORIZED:
        return Badge("unauthorized: check user and password", Tone.BAD)
    if state is CameraState.NOT_FOUND:
        return Badge("not found: check the stream path", Tone.BAD)
    if state is CameraState.FAILED:
        return Badge("failed: gave up retrying", Tone.BAD)
    if state is CameraState.DISABLED:
        return Badge("disabled", Tone.OFF)
    return Badge("stopped", Tone.OFF)


def storage_badge(status: CameraStatus) -> Badge | None:
    if status.storage_state is StorageState.UNAVAILABLE:
        return Badge("storage unavailable", Tone.BAD)
    if status.storage_state is StorageState.FULL:
        return Badge("disk full", Tone.BAD)
    return None


def recording_view(status: CameraStatus, pending: bool | None = None) -> RecordingView:
    """``pending`` is the user's last request not yet confirmed by the engine, if any."""
    if pending is True and not status.recording_wanted:
        return RecordingView("starting…", "Stop", False, Tone.BUSY)
    if pending is False and (status.recording or status.recording_wanted):
        return RecordingView("finishing the file…", "Record", status.recording, Tone.BUSY)
    if status.recording:
        return RecordingView("recording", "Stop", True, Tone.BAD)
    if status.recording_wanted:
        if status.storage_state is StorageState.UNAVAILABLE:
            why = "storage unavailable"
        elif status.storage_state is StorageState.FULL:
            why = "disk full"
        elif status.state is not CameraState.STREAMING:
            why = "camera not streaming"
        else:
            why = "starting"
        return RecordingView(f"waiting: {why}", "Stop", False, Tone.BUSY)
    return RecordingView("not recording", "Record", False, Tone.OFF)


_CODEC_NAMES = {"h264": "H.264", "h265": "H.265", "aac": "AAC", "pcma": "G.711 A-law",
                "pcmu": "G.711 µ-law", "opus": "Opus"}  # fmt: skip


def stream_summary(status: CameraStatus) -> str:
    """What the camera sends and how: "H.264 + AAC over TCP" (a tile's tooltip)."""
    if status.codec is None:
        return f"not connected (transport {status.transport.upper()})"
    names = [_CODEC_NAMES.get(c, c) for c in [status.codec, *(status.audio_codec or "").split("+")]]
    text = " + ".join(n for n in names if n)
    if not status.audio_codec:
        text += ", no audio"
    text += f" over {status.transport.upper()}"
    if status.rtp_packets_lost:
        text += f", {status.rtp_packets_lost} RTP packets lost"
    return text
