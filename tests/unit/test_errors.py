"""The classification table, fed with the errors GStreamer posts: the same domains, codes and
texts (``testing/gerrors.py``; the adapter from a real ``GLib.Error`` is checked against them in
``tests/integration/test_fault_adapter.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nvr_gstreamer.camera.errors import (
    RECOVERY,
    ErrorKind,
    Fault,
    Origin,
    Recovery,
    classify,
    fault_from_error,
    recovery_for,
    rtsp_status,
    source_eos,
    source_timeout,
    stall,
)
from nvr_gstreamer.testing.gerrors import (
    CoreError,
    GError,
    LibraryError,
    ResourceError,
    StreamError,
)

R, S, C, L = ResourceError, StreamError, CoreError, LibraryError
fault_from_gerror = fault_from_error

CASES = [
    # (origin, element, domain enum, code, message, expected) — from the seed document,
    # GSTREAMER_NOTES.md and gstrtspsrc.c.
    (Origin.SOURCE, "source", R, R.READ, "Could not read from resource.", ErrorKind.NETWORK),
    (Origin.SOURCE, "source", S, S.FAILED, "Internal data stream error.", ErrorKind.NETWORK),
    (Origin.SOURCE, "source", R, R.WRITE, "Could not write to resource.", ErrorKind.NETWORK),
    (Origin.SOURCE, "source", R, R.OPEN_READ_WRITE,
     "Could not open resource for reading and writing.", ErrorKind.NETWORK),
    (Origin.SOURCE, "source", R, R.OPEN_READ, "Could not open resource for reading.",
     ErrorKind.NETWORK),
    (Origin.SOURCE, "source", R, R.SETTINGS, "Could not get/set settings.", ErrorKind.NETWORK),
    (Origin.SOURCE, "source", R, R.NOT_AUTHORIZED, "Unauthorized", ErrorKind.UNAUTHORIZED),
    (Origin.SOURCE, "source", R, R.NOT_FOUND, "Not Found (404)", ErrorKind.NOT_FOUND),
    # A camera that refuses RTP over TCP (461) or UDP, as rtspsrc 1.22 reports it (measured).
    (Origin.SOURCE, "source", S, S.CODEC_NOT_FOUND,
     "No supported stream was found. You might need to allow more transport protocols or may "
     "otherwise be missing the right GStreamer RTSP extension plugin.", ErrorKind.TRANSPORT),
    (Origin.SOURCE, "source", S, S.CODEC_NOT_FOUND, "No decoder available", ErrorKind.UNKNOWN),
    (Origin.SOURCE, "depay", S, S.DECODE, "Could not decode stream.", ErrorKind.UNKNOWN),
    (Origin.SOURCE, "parse", S, S.FORMAT, "bad format", ErrorKind.UNKNOWN),
    (Origin.RECORDER, "sink", R, R.NO_SPACE_LEFT, "No space left on the resource.",
     ErrorKind.DISK_FULL),
    (Origin.RECORDER, "sink", R, R.WRITE, "Error while writing to file: No space left on device",
     ErrorKind.DISK_FULL),
    (Origin.RECORDER, "sink", R, R.WRITE, "Could not write to resource.",
     ErrorKind.STORAGE_DISCONNECTED),
    (Origin.RECORDER, "sink", R, R.OPEN_WRITE, "Could not open file for writing.",
     ErrorKind.STORAGE_DISCONNECTED),
    (Origin.RECORDER, "sink", R, R.SEEK, "Error while seeking in file.",
     ErrorKind.STORAGE_DISCONNECTED),
    (Origin.RECORDER, "splitmuxsink", R, R.SETTINGS, "Could not get/set settings.",
     ErrorKind.STORAGE_DISCONNECTED),
    # A full disk by its code alone, or by its words alone (whatever the code).
    (Origin.RECORDER, "sink", R, R.NO_SPACE_LEFT, "Error while writing to file.",
     ErrorKind.DISK_FULL),
    (Origin.RECORDER, "sink", R, R.FAILED, "Disk full", ErrorKind.DISK_FULL),
    # Code 14 of another domain is not a full disk.
    (Origin.RECORDER, "muxer", C, C.DISABLED, "Could not multiplex stream.", ErrorKind.UNKNOWN),
    (Origin.RECORDER, "muxer", S, S.MUX, "Could not multiplex stream.", ErrorKind.UNKNOWN),
    (Origin.LIVE, "decoder", S, S.DECODE, "Could not decode stream.", ErrorKind.DECODER),
    (Origin.LIVE, "avdec_h264-0", L, L.FAILED, "Library error", ErrorKind.DECODER),
    (Origin.LIVE, "parse", S, S.DECODE, "Could not decode stream.", ErrorKind.DECODER),
    (Origin.LIVE, "convert", S, S.FORMAT, "Could not convert", ErrorKind.UNKNOWN),
    (Origin.LIVE, "videosink", R, R.NOT_FOUND, "Output window was closed",
     ErrorKind.VIDEO_SINK),
    (Origin.LIVE, "videosink", R, R.WRITE, "Could not write to resource.", ErrorKind.VIDEO_SINK),
    (Origin.LIVE, "xvimage", R, R.NOT_FOUND, "Output window was closed", ErrorKind.VIDEO_SINK),
    (Origin.LIVE, "convert", C, C.NEGOTIATION, "not negotiated", ErrorKind.UNKNOWN),
    (Origin.OTHER, "pipeline0", C, C.STATE_CHANGE, "state change failed", ErrorKind.UNKNOWN),
]  # fmt: skip


@pytest.mark.parametrize(
    ("origin", "element", "domain", "code", "message", "expected"),
    CASES,
    ids=[f"{c[0].value}-{c[1]}-{c[2].__name__}-{int(c[3])}-{c[5].value}" for c in CASES],
)
def test_classification_table(
    origin: Origin,
    element: str,
    domain: type,
    code: int,
    message: str,
    expected: ErrorKind,
) -> None:
    error = GError.new_literal(domain.quark(), message, int(code))
    fault = fault_from_gerror(origin, element, error, "gst debug text")
    assert classify(fault) is expected


@pytest.mark.parametrize(
    "code",
    [R.NOT_FOUND, R.OPEN_WRITE, R.OPEN_READ_WRITE, R.CLOSE, R.WRITE, R.SEEK, R.SYNC, R.SETTINGS],
)
def test_every_file_error_of_the_recorder_is_storage_gone(code: int) -> None:
    """What a file sink says when its volume goes away (unplugged, unmounted, remounted
    read-only): pause recording and wait for the volume, never restart the camera."""
    error = GError.new_literal(R.quark(), "Could not write to resource.", int(code))
    fault = fault_from_gerror(Origin.RECORDER, "sink", error, "gst debug text")
    assert classify(fault) is ErrorKind.STORAGE_DISCONNECTED
    assert recovery_for(classify(fault), fault.origin) is Recovery.PAUSE_RECORDING_STORAGE


@pytest.mark.parametrize(
    ("domain", "code", "message"),
    [
        (R, R.READ, "Could not read from resource."),
        (S, S.FAILED, "Internal data stream error."),
    ],
)
def test_udp_that_brings_nothing_is_a_transport_fault(
    domain: type, code: int, message: str
) -> None:
    """As rtspsrc 1.22 posts it (measured behind a firewall dropping UDP): a plain READ error
    whose debug text says why; the same words in the debug text of any other error, too."""
    error = GError.new_literal(domain.quark(), message, int(code))
    debug = (
        "../gst/rtsp/gstrtspsrc.c(6136): gst_rtspsrc_reconnect (): /GstPipeline:cam-g2/"
        "GstRTSPSrc:source:\nCould not receive any UDP packets for 2.0000 seconds, maybe your "
        "firewall is blocking it. No other protocols to try."
    )
    assert classify(fault_from_gerror(Origin.SOURCE, "source", error, debug)) is ErrorKind.TRANSPORT
    plain = fault_from_gerror(Origin.SOURCE, "source", error, "gst debug text")
    assert classify(plain) is ErrorKind.NETWORK


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (source_eos, "source: end of stream from the camera (-/0)"),
        (source_timeout, "source: the camera stopped answering (rtspsrc timeout) (-/0)"),
        (lambda: stall(5.24), "source: no video for 5.2 s (stalled) (-/0)"),
    ],
)
def test_eos_timeout_and_stall_are_network_faults_of_the_source(
    make: Callable[[], Fault], text: str
) -> None:
    fault = make()  # made in the test, not at collection (mutation testing swaps the code)
    assert classify(fault) is ErrorKind.NETWORK
    assert recovery_for(classify(fault), fault.origin) is Recovery.RESTART_PIPELINE
    assert fault.describe() == text  # the log line


def test_a_fault_is_described_by_element_message_domain_code_and_debug_text() -> None:
    error = GError.new_literal(R.quark(), "Could not read from resource.", int(R.READ))
    fault = fault_from_gerror(Origin.SOURCE, "source", error, "gstrtspsrc.c(6136)")
    assert fault.describe() == (
        "source: Could not read from resource. (resource/9) [gstrtspsrc.c(6136)]"
    )
    no_debug = fault_from_gerror(Origin.SOURCE, "source", error, None)
    assert no_debug.describe() == "source: Could not read from resource. (resource/9)"


@pytest.mark.parametrize(
    "debug",
    [
        "gstrtspsrc.c(6455): gst_rtspsrc_send (): /GstPipeline:p/GstRTSPSrc:source:\n"
        "Service Unavailable (503)",
        "native/nvrrtspsrc.c(534): check_response (): /GstPipeline:p/NvrRtspSrc:source:\n"
        "Service Unavailable (503) to DESCRIBE",
    ],
)
def test_an_rtsp_status_without_an_error_code_is_named_in_the_reason(debug: str) -> None:
    error = GError.new_literal(R.quark(), "Unhandled error", int(R.READ))
    fault = fault_from_gerror(Origin.SOURCE, "source", error, debug)
    assert rtsp_status(fault) == (503, "Service Unavailable")
    assert fault.reason == "the camera answered 503 Service Unavailable"
    assert classify(fault) is ErrorKind.NETWORK  # retried like any lost connection


def test_other_faults_keep_their_message_as_the_reason() -> None:
    busy = "check_response (): ...:\nNot Enough Bandwidth (453) to SETUP"
    cases = [
        (R.NOT_AUTHORIZED, "Unauthorized", "gst_rtspsrc_send (): ...:\nUnauthorized (401)"),
        (R.READ, "Could not read from resource.", "The server closed the connection."),
        (R.READ, "Unhandled error", "no status here"),
        (R.READ, "Could not read from resource.", busy),
    ]
    for code, message, debug in cases:
        fault = fault_from_gerror(
            Origin.SOURCE, "source", GError.new_literal(R.quark(), message, int(code)), debug
        )
        assert fault.reason == message, fault
    assert rtsp_status(Fault(Origin.SOURCE, "source", "", 0, "x", busy)) == (
        453,
        "Not Enough Bandwidth",
    )
    assert rtsp_status(Fault(Origin.SOURCE, "source", "", 0, "x", "Bad (50)")) is None


def test_every_kind_has_a_recovery() -> None:
    assert set(RECOVERY) == set(ErrorKind)
    for kind in ErrorKind:
        for origin in Origin:
            assert isinstance(recovery_for(kind, origin), Recovery)


def test_unknown_recovers_by_the_branch_it_came_from() -> None:
    assert recovery_for(ErrorKind.UNKNOWN, Origin.SOURCE) is Recovery.RESTART_PIPELINE
    assert recovery_for(ErrorKind.UNKNOWN, Origin.OTHER) is Recovery.RESTART_PIPELINE
    assert recovery_for(ErrorKind.UNKNOWN, Origin.RECORDER) is Recovery.REBUILD_RECORDER
    assert recovery_for(ErrorKind.UNKNOWN, Origin.LIVE) is Recovery.REBUILD_LIVE


def test_a_fault_says_which_branch_it_came_from() -> None:
    error = GError.new_literal(R.quark(), "No space left on the resource.", int(R.NO_SPACE_LEFT))
    fault = fault_from_gerror(Origin.RECORDER, "sink", error, None, "recorder-3")
    assert fault.branch == "recorder-3"  # which recording session to rebuild
    assert fault_from_gerror(Origin.SOURCE, "source", error, None).branch == ""


def test_fault_texts_are_redacted() -> None:
    error = GError.new_literal(R.quark(), "Could not open rtsp://admin:pw1@cam/1", int(R.OPEN_READ))
    fault = fault_from_gerror(
        Origin.SOURCE, "source", error, "gstrtspsrc.c: rtsp://admin:pw1@cam/1"
    )
    assert "pw1" not in fault.describe()
