"""A camera runtime's immutable :class:`CameraStatus`, read by the API and the UI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nvr_gstreamer.camera.status import CameraStatus
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.core.redact import redact

if TYPE_CHECKING:
    from nvr_gstreamer.engine.runtime import CameraRuntime


def snapshot(rt: CameraRuntime) -> CameraStatus:
    view = rt.supervisor.view()
    counters = rt.counters
    fps, bps = counters.rates()
    errors = dict(view.counters.errors)
    for kind, n in rt.other_errors.items():
        errors[kind] = errors.get(kind, 0) + n
    streaming = view.state is CameraState.STREAMING
    storage_state = rt.recording.storage_state
    pipeline = rt.pipeline
    return CameraStatus(
        camera_id=rt.camera.id,
        name=rt.camera.display_name,
        state=view.state,
        since=view.since,
        reason=redact(view.reason),
        last_error_kind=view.last_error_kind,
        last_error_message=redact(view.last_error_message) if view.last_error_message else None,
        reconnect_attempt=view.reconnect_attempt,
        next_retry_in_s=view.next_retry_in_s,
        # Still "recording" while a closing session finalises its file: "off" is reported
        # only once the file is final.
        recording=rt.recording.recording,
        recording_wanted=rt.recording.wanted,
        storage_state=storage_state,
        current_segment=rt.current_segment(),
        codec=pipeline.codec if pipeline is not None else None,
        audio_codec=pipeline.audio_codec if pipeline is not None else None,
        transport=rt.transport.current.value,
        receive_path=pipeline.receive_path if pipeline is not None else None,
        rtp_packets_lost=counters.rtp_lost,
        rtp_packets_late=counters.rtp_late,
        frames=counters.frames,
        bytes=counters.bytes,
        fps=fps if streaming else 0.0,
        bitrate_bps=bps if streaming else 0.0,
        disconnects=view.counters.disconnects,
        reconnect_attempts=view.counters.reconnect_attempts,
        stalls=view.counters.stalls,
        errors=tuple(sorted(errors.items(), key=lambda kv: kv[0].value)),
        stalled=view.stalled,
        motion=rt.motion.active if rt.motion is not None else None,
    )
