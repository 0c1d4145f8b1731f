"""One table from what GStreamer reports to what went wrong, and what to do about it.

Pure: no ``gi`` import. The GStreamer adapter (:mod:`nvr_gstreamer.gst.faults`) turns a bus
message into a :class:`Fault` — which part of the pipeline it came from, the GError domain,
code and message — and :func:`classify` maps it to an :class:`ErrorKind`. Every kind has a
:class:`Recovery` (:data:`RECOVERY`), so no error is ever left without a handler; the original
system's unhandled "unknown" errors (STREAM/FAILED 1, OPEN_READ_WRITE 7, WRITE 10 from the
source) crashed its handler and stopped the camera for good.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from nvr_gstreamer.core.redact import redact

# GError domains as GLib names them (``GLib.quark_to_string(err.domain)``).
LIBRARY = "gst-library-error-quark"
RESOURCE = "gst-resource-error-quark"
STREAM = "gst-stream-error-quark"

# GstResourceError codes used below.
RES_NOT_FOUND = 3
RES_OPEN_WRITE = 6
RES_OPEN_READ_WRITE = 7
RES_CLOSE = 8
RES_READ = 9
RES_WRITE = 10
RES_SEEK = 11
RES_SYNC = 12
RES_SETTINGS = 13
RES_NO_SPACE_LEFT = 14
RES_NOT_AUTHORIZED = 15
# GstStreamError codes used below.
STREAM_FAILED = 1
STREAM_CODEC_NOT_FOUND = 6
STREAM_DECODE = 7

# The RTSP status a source quotes at the end of its debug text: rtspsrc "Service Unavailable
# (503)", nvrrtspsrc "Service Unavailable (503) to DESCRIBE".
_RTSP_STATUS = re.compile(r"([A-Za-z][A-Za-z ]*?) \((\d{3})\)(?: to [A-Z_]+)?\s*$")
# What both sources say for an RTSP status they have no error code for (503, 453, 400, ...).
_UNHANDLED = "Unhandled error"


class Origin(Enum):
    """Which part of a camera pipeline reported the fault."""

    SOURCE = "source"  # rtspsrc, depayloader, parser: everything before the tee
    RECORDER = "recorder"  # valve, splitmuxsink and its muxer and file sink
    LIVE = "live"  # the live view branch: decoder, converter, video sink
    OTHER = "other"  # the pipeline itself or an element we did not place


class ErrorKind(Enum):
    NETWORK = "network"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    TRANSPORT = "transport"  # the camera refuses RTP over this transport, or sends nothing on it
    STORAGE_DISCONNECTED = "storage_disconnected"
    DISK_FULL = "disk_full"
    DECODER = "decoder"
    VIDEO_SINK = "video_sink"
    UNKNOWN = "unknown"


class Recovery(Enum):
    """What the camera runtime does about a fault."""

    RESTART_PIPELINE = "restart_pipeline"  # tear down, back off, reconnect (supervisor)
    PAUSE_RECORDING_STORAGE = "pause_recording_storage"  # close valve, wait for the volume
    PAUSE_RECORDING_DISK_FULL = "pause_recording_disk_full"  # close valve, retention, resume
    REBUILD_RECORDER = "rebuild_recorder"  # fresh recording branch, new file
    REBUILD_LIVE = "rebuild_live"  # fresh live branch; recording untouched


@dataclass(frozen=True, slots=True)
class Fault:
    """A problem the pipeline reported, in plain terms."""

    origin: Origin
    element: str
    domain: str  # a GError domain name, or "" for non-error events
    code: int
    message: str
    debug: str = ""
    branch: str = ""  # name of the recorder or live bin it came from ("recorder-3")

    @property
    def reason(self) -> str:
        """The message in words a user can act on: "Unhandled error" becomes the status the
        camera answered ("the camera answered 503 Service Unavailable")."""
        status = rtsp_status(self) if self.message == _UNHANDLED else None
        return f"the camera answered {status[0]} {status[1]}" if status else self.message

    def describe(self) -> str:
        domain = self.domain.removeprefix("gst-").removesuffix("-error-quark") or "-"
        text = f"{self.element}: {self.message} ({domain}/{self.code})"
        return f"{text} [{self.debug}]" if self.debug else text


def rtsp_status(fault: Fault) -> tuple[int, str] | None:
    """The RTSP status a source quotes at the end of its debug text: (503, "Service
    Unavailable"), or None."""
    match = _RTSP_STATUS.search(fault.debug)
    return (int(match.group(2)), match.group(1)) if match else None


def source_eos() -> Fault:
    """A live source never ends: EOS from rtspsrc means the camera went away."""
    return Fault(Origin.SOURCE, "source", "", 0, "end of stream from the camera")


def source_timeout() -> Fault:
    """rtspsrc's own element message ``GstRTSPSrcTimeout`` (a silent camera, after ~25 s)."""
    return Fault(Origin.SOURCE, "source", "", 0, "the camera stopped answering (rtspsrc timeout)")


def stall(silent_s: float) -> Fault:
    return Fault(Origin.SOURCE, "source", "", 0, f"no video for {silent_s:.1f} s (stalled)")


_STORAGE_CODES = frozenset(
    {RES_NOT_FOUND, RES_OPEN_WRITE, RES_OPEN_READ_WRITE, RES_CLOSE, RES_WRITE, RES_SEEK,
     RES_SYNC, RES_SETTINGS}
)  # fmt: skip


def _mentions_no_space(fault: Fault) -> bool:
    text = f"{fault.message} {fault.debug}".lower()
    return "no space left" in text or "disk full" in text


def _transport_refused(fault: Fault) -> bool:
    """rtspsrc's answer when SETUP fails for every transport it may use (a camera that answers
    ``461 Unsupported transport``: STREAM/CODEC_NOT_FOUND "No supported stream was found. You
    might need to allow more transport protocols ..."), or when UDP brings nothing (measured:
    RESOURCE/READ "Could not read from resource." whose debug text says "Could not receive any
    UDP packets for 5.0000 seconds, maybe your firewall is blocking it")."""
    if fault.domain == STREAM and fault.code == STREAM_CODEC_NOT_FOUND:
        return "transport" in fault.message.lower()
    return "udp packets" in f"{fault.message} {fault.debug}".lower()


def classify(fault: Fault) -> ErrorKind:
    """The error kind of a fault. Total: every fault gets a kind, unknown included."""
    if fault.origin is Origin.SOURCE:
        if _transport_refused(fault):
            return ErrorKind.TRANSPORT
        if fault.domain == RESOURCE and fault.code == RES_NOT_AUTHORIZED:
            return ErrorKind.UNAUTHORIZED
        if fault.domain == RESOURCE and fault.code == RES_NOT_FOUND:
            return ErrorKind.NOT_FOUND
        if fault.domain == "":
            return ErrorKind.NETWORK  # EOS, rtspsrc timeout, stall
        if fault.domain == RESOURCE:
            # READ 9, WRITE 10, OPEN_READ 5, OPEN_READ_WRITE 7, SETTINGS 13 ...: the
            # connection to the camera failed or broke. All of them, as one kind.
            return ErrorKind.NETWORK
        if fault.domain == STREAM and fault.code == STREAM_FAILED:
            return ErrorKind.NETWORK  # "Internal data stream error" after a lost connection
        return ErrorKind.UNKNOWN
    if fault.origin is Origin.RECORDER:
        if (fault.domain == RESOURCE and fault.code == RES_NO_SPACE_LEFT) or _mentions_no_space(
            fault
        ):
            return ErrorKind.DISK_FULL
        if fault.domain == RESOURCE and fault.code in _STORAGE_CODES:
            return ErrorKind.STORAGE_DISCONNECTED
        return ErrorKind.UNKNOWN
    if fault.origin is Origin.LIVE:
        if fault.domain in (STREAM, LIBRARY) and "dec" in fault.element:
            return ErrorKind.DECODER
        if fault.domain == STREAM and fault.code == STREAM_DECODE:
            return ErrorKind.DECODER
        if "sink" in fault.element or "output window" in fault.message.lower():
            return ErrorKind.VIDEO_SINK
        return ErrorKind.UNKNOWN
    return ErrorKind.UNKNOWN


RECOVERY: dict[ErrorKind, Recovery] = {
    ErrorKind.NETWORK: Recovery.RESTART_PIPELINE,
    ErrorKind.UNAUTHORIZED: Recovery.RESTART_PIPELINE,
    ErrorKind.NOT_FOUND: Recovery.RESTART_PIPELINE,
    ErrorKind.TRANSPORT: Recovery.RESTART_PIPELINE,  # with the other transport, in auto mode
    ErrorKind.STORAGE_DISCONNECTED: Recovery.PAUSE_RECORDING_STORAGE,
    ErrorKind.DISK_FULL: Recovery.PAUSE_RECORDING_DISK_FULL,
    ErrorKind.DECODER: Recovery.REBUILD_LIVE,
    ErrorKind.VIDEO_SINK: Recovery.REBUILD_LIVE,
    ErrorKind.UNKNOWN: Recovery.RESTART_PIPELINE,  # refined by origin in recovery_for()
}


def recovery_for(kind: ErrorKind, origin: Origin) -> Recovery:
    """What to do. Unknown faults recover by the part they came from: the source side as a
    network fault, the recorder or live branch by rebuilding that branch."""
    if kind is ErrorKind.UNKNOWN:
        if origin is Origin.RECORDER:
            return Recovery.REBUILD_RECORDER
        if origin is Origin.LIVE:
            return Recovery.REBUILD_LIVE
    return RECOVERY[kind]


def fault_from_error(
    origin: Origin, element: str, error: Any, debug: str | None, branch: str = ""
) -> Fault:
    """A Fault from an error with ``domain`` (its name), ``code`` and ``message`` (a
    ``GLib.Error`` as ``message.parse_error()`` gives it); texts are redacted."""
    return Fault(
        origin=origin,
        element=element,
        domain=str(error.domain),
        code=int(error.code),
        message=redact(str(error.message)),
        debug=redact(debug or ""),
        branch=branch,
    )
