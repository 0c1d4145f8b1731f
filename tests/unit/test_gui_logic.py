"""Pure logic behind the desktop app: badges, recording controls, footage time mapping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.camera.status import CameraStatus
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.gui.badges import (
    Badge,
    Tone,
    badge,
    recording_view,
    storage_badge,
    stream_summary,
)
from nvr_gstreamer.storage.footage_runs import Footage, Part, runs
from nvr_gstreamer.storage.volume import StorageState

BASE = CameraStatus(
    camera_id="cam1", name="Front door", state=CameraState.STREAMING,
    since=datetime(2026, 1, 1, tzinfo=UTC), reason="first frame", last_error_kind=None,
    last_error_message=None, reconnect_attempt=0, next_retry_in_s=None, recording=True,
    recording_wanted=True, storage_state=StorageState.OK, current_segment=None, codec="h264", frames=0,
    audio_codec=None, transport="tcp", receive_path="stamp", rtp_packets_lost=0, rtp_packets_late=0,
    bytes=0, fps=0.0, bitrate_bps=0.0, disconnects=0, reconnect_attempts=0, stalls=0, errors=(),
)  # fmt: skip


def st(**changes: object) -> CameraStatus:
    return replace(BASE, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "elapsed", "text", "tone"),
    [
        (st(), 0, "streaming", Tone.OK),
        (
            st(
                state=CameraState.RECONNECTING,
                next_retry_in_s=3.0,
                last_error_kind=ErrorKind.TRANSPORT,
                last_error_message="the camera refuses RTP over TCP: set 'transport: udp' or "
                "'transport: auto' for this camera",
            ),
            0,
            "refuses RTP over TCP: set transport udp or auto",
            Tone.BAD,
        ),
        (
            st(
                state=CameraState.RECONNECTING,
                next_retry_in_s=3.0,
                last_error_kind=ErrorKind.TRANSPORT,
                last_error_message="no video over UDP (the camera refuses it, or a firewall "
                "drops it): set 'transport: tcp' or 'transport: auto' for this camera",
                transport="udp",
            ),
            0,
            "no video over UDP: set transport tcp or auto",
            Tone.BAD,
        ),
        (
            st(
                state=CameraState.RECONNECTING,
                next_retry_in_s=3.0,
                last_error_kind=ErrorKind.TRANSPORT,
                last_error_message="no stream over TCP (the camera refuses it); trying UDP",
            ),
            0,
            "reconnecting: retry in 3 s",
            Tone.BUSY,
        ),
        (st(state=CameraState.CONNECTING), 0, "connecting", Tone.BUSY),
        (
            st(state=CameraState.RECONNECTING, next_retry_in_s=12.0),
            0,
            "reconnecting: retry in 12 s",
            Tone.BUSY,
        ),
        (
            st(state=CameraState.RECONNECTING, next_retry_in_s=12.0),
            4.6,
            "reconnecting: retry in 7 s",
            Tone.BUSY,
        ),
        (
            st(state=CameraState.RECONNECTING, next_retry_in_s=2.0),
            9,
            "reconnecting: retrying now",
            Tone.BUSY,
        ),
        (
            st(state=CameraState.RECONNECTING, next_retry_in_s=None),
            0,
            "reconnecting: waiting for the camera",
            Tone.BUSY,
        ),
        (
            st(
                state=CameraState.RECONNECTING,
                next_retry_in_s=5.0,
                last_error_message="no video for 5.0 s",
                stalled=True,
            ),
            0,
            "stalled: retry in 5 s",
            Tone.BUSY,
        ),
        (
            # The word in a message is no stall: only the status's cause is.
            st(
                state=CameraState.RECONNECTING,
                next_retry_in_s=5.0,
                last_error_message="camera says: stream stalled (503)",
            ),
            0,
            "reconnecting: retry in 5 s",
            Tone.BUSY,
        ),
        (st(state=CameraState.UNAUTHORIZED), 0, "unauthorized: check user and password", Tone.BAD),
        (st(state=CameraState.NOT_FOUND), 0, "not found: check the stream path", Tone.BAD),
        (st(state=CameraState.FAILED), 0, "failed: gave up retrying", Tone.BAD),
        (st(state=CameraState.DISABLED), 0, "disabled", Tone.OFF),
        (st(state=CameraState.STOPPED), 0, "stopped", Tone.OFF),
    ],
)
def test_badge(status: CameraStatus, elapsed: float, text: str, tone: Tone) -> None:
    b = badge(status, elapsed)
    assert (b.text, b.tone) == (text, tone)


def test_a_badge_counts_down_from_the_snapshot_itself_by_default() -> None:
    status = st(state=CameraState.RECONNECTING, next_retry_in_s=12.0)
    assert badge(status) == Badge("reconnecting: retry in 12 s", Tone.BUSY)


def test_storage_badge() -> None:
    assert storage_badge(st()) is None
    assert storage_badge(st(storage_state=StorageState.UNAVAILABLE)) == Badge(
        "storage unavailable", Tone.BAD
    )
    assert storage_badge(st(storage_state=StorageState.FULL)) == Badge("disk full", Tone.BAD)


@pytest.mark.parametrize(
    ("status", "pending", "text", "button", "dot", "tone"),
    [
        (st(), None, "recording", "Stop", True, Tone.BAD),
        (st(recording=False, recording_wanted=False), None, "not recording", "Record", False, Tone.OFF),
        # The click is shown as pending until the engine confirms it.
        (st(recording=False, recording_wanted=False), True, "starting…", "Stop", False, Tone.BUSY),
        (st(), False, "finishing the file…", "Record", True, Tone.BUSY),
        # "Off" is confirmed only once the file is final (recording False as well).
        (st(recording=True, recording_wanted=False), False, "finishing the file…", "Record", True, Tone.BUSY),
        (st(recording=False, recording_wanted=True), False, "finishing the file…", "Record", False, Tone.BUSY),
        # Switched on but not possible: the engine's reason is shown.
        (st(recording=False, state=CameraState.RECONNECTING), None, "waiting: camera not streaming", "Stop", False, Tone.BUSY),
        (st(recording=False, storage_state=StorageState.FULL), None, "waiting: disk full", "Stop", False, Tone.BUSY),
        (st(recording=False, storage_state=StorageState.UNAVAILABLE), None, "waiting: storage unavailable", "Stop", False, Tone.BUSY),
        # Switched on, streaming, storage fine: the first file is about to open.
        (st(recording=False), None, "waiting: starting", "Stop", False, Tone.BUSY),
    ],
)  # fmt: skip
def test_recording_view(
    status: CameraStatus, pending: bool | None, text: str, button: str, dot: bool, tone: Tone
) -> None:
    v = recording_view(status, pending)
    assert (v.text, v.button, v.recording, v.tone) == (text, button, dot, tone)


def parts(*spans: tuple[float, float]) -> list[Part]:
    return [Part(Path(f"/r/{i}.mkv"), s, d) for i, (s, d) in enumerate(spans)]


def test_footage_maps_offsets_and_wall_time_both_ways() -> None:
    f = Footage(parts((100.0, 10.0), (110.0, 10.0), (120.0, 5.0)))
    assert f.duration_s == 25.0
    assert f.offset_of(100.0) == 0.0
    assert f.offset_of(115.5) == 15.5
    assert f.wall_of(15.5) == 115.5
    assert f.wall_of(f.offset_of(123.0)) == 123.0
    assert f.offset_of(50.0) == 0.0  # before the footage: its start
    assert f.offset_of(500.0) == 25.0  # after: its end


def test_footage_time_in_a_gap_maps_to_the_next_part() -> None:
    f = Footage(parts((100.0, 10.0), (130.0, 10.0)))
    assert f.offset_of(120.0) == 10.0
    assert f.wall_of(10.0) == 130.0


def test_runs_split_at_gaps_and_at_the_open_file_limit() -> None:
    ps = parts((0, 10), (10.5, 10), (60, 10), (70, 10), (80, 10))
    assert [len(r.parts) for r in runs(ps)] == [2, 3]
    assert [len(r.parts) for r in runs(ps, max_parts=2)] == [2, 2, 1]
    # Where the tracks change (audio stopped or began between files), a new run begins;
    # an unknown layout (None) joins what is around it.
    ps = parts((0, 10), (10, 10), (20, 10), (30, 10), (40, 10))
    layouts = {p.path: lay for p, lay in zip(ps, ["va", None, "va", "v", "v"], strict=True)}
    assert [len(r.parts) for r in runs(ps, layout_of=layouts.__getitem__)] == [3, 2]
    with pytest.raises(ValueError):
        Footage([])


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (st(), "H.264, no audio over TCP"),
        (
            st(codec="h265", audio_codec="pcma", transport="udp", rtp_packets_lost=7),
            "H.265 + G.711 A-law over UDP, 7 RTP packets lost",
        ),
        (st(audio_codec="aac"), "H.264 + AAC over TCP"),
        (st(audio_codec="aac+opus"), "H.264 + AAC + Opus over TCP"),  # two audio tracks
        (st(codec="h265", audio_codec="pcmu"), "H.265 + G.711 µ-law over TCP"),
        (st(codec="mjpeg", audio_codec="g726"), "mjpeg + g726 over TCP"),  # names not in the table
        (st(codec=None, state=CameraState.CONNECTING), "not connected (transport TCP)"),
    ],
)
def test_stream_summary_says_what_the_camera_sends_and_how(status: CameraStatus, text: str) -> None:
    assert stream_summary(status) == text
