"""``nvr probe``'s pure half: the request, measurements, failures, outcomes, exit codes and
what the user reads. Faults are the ones rtspsrc 1.22 posts (measured against the simulator)."""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import quote

import pytest

from nvr_gstreamer.camera.errors import (
    RES_NOT_AUTHORIZED,
    RES_NOT_FOUND,
    RES_OPEN_READ_WRITE,
    RES_READ,
    RESOURCE,
    STREAM,
    Fault,
    Origin,
    source_eos,
)
from nvr_gstreamer.camera.probe_report import (
    EXIT_CODES,
    SCHEMA,
    AttemptPlan,
    AttemptResult,
    Auth,
    Codec,
    ConnectProblem,
    ExitCode,
    Failure,
    Measurement,
    OfferedStream,
    Outcome,
    ParsedFormat,
    ProbeRequest,
    ProbeUsageError,
    Stage,
    StreamMeter,
    StreamObservation,
    TransportStatus,
    attempt_failure,
    build_report,
    codec_of,
    exit_code_help,
    h264_keyframe,
    h265_keyframe,
    is_busy,
    make_request,
    needs_connect_check,
    next_attempt,
    render_json,
    render_text,
    secrets_of,
)
from nvr_gstreamer.camera.transport import Transport
from nvr_gstreamer.core.redact import register_secret

TCP, UDP = Transport.TCP, Transport.UDP
PASSWORD = "pa:ss@w/rd%"
URL = "rtsp://127.0.0.1:8554/cam1"


def _src_fault(domain: str, code: int, message: str, debug: str = "") -> Fault:
    return Fault(Origin.SOURCE, "source", domain, code, message, debug)


FAILED_TO_CONNECT = _src_fault(
    RESOURCE,
    RES_OPEN_READ_WRITE,
    "Could not open resource for reading and writing.",
    "gstrtspsrc.c(8336): gst_rtspsrc_retrieve_sdp (): /GstPipeline:probe-tcp/GstRTSPSrc:source:\n"
    "Failed to connect. (Generic error)",
)
SERVER_TIMEOUT = _src_fault(
    RESOURCE,
    RES_READ,
    "Could not read from resource.",
    "gst_rtsp_src_receive_response (): ...:\n"
    "Could not receive message. (Timeout while waiting for server response)",
)
UNAUTHORIZED = _src_fault(
    RESOURCE, RES_NOT_AUTHORIZED, "Unauthorized", "gst_rtspsrc_send (): ...:\nUnauthorized (401)"
)
NOT_FOUND = _src_fault(
    RESOURCE, RES_NOT_FOUND, "Not found", "gst_rtspsrc_send (): ...:\nNot Found (404)"
)
UNAVAILABLE = _src_fault(
    RESOURCE, RES_READ, "Unhandled error", "gst_rtspsrc_send (): ...:\nService Unavailable (503)"
)
TRANSPORT_REFUSED = _src_fault(
    STREAM,
    6,
    "No supported stream was found. You might need to allow more transport protocols or may "
    "otherwise be missing the right GStreamer RTSP extension plugin.",
)
NO_UDP_PACKETS = _src_fault(
    RESOURCE,
    RES_READ,
    "Could not receive any UDP packets for 5.0000 seconds, maybe your firewall is blocking it. "
    "No other protocols to try.",
)

H264 = OfferedStream(0, "video", "H264", 96, 90000, framerate=15.0)
PCMA = OfferedStream(1, "audio", "PCMA", 8, 8000, channels=1)
MJPEG = OfferedStream(0, "video", "JPEG", 26, 90000)


def _gop_measurement(keyframes: int = 2) -> Measurement:
    return Measurement(
        packets=62,
        frames=16,
        bytes=24_000,
        keyframes=keyframes,
        gop_frames=15 if keyframes >= 2 else None,
        gop_seconds=1.0 if keyframes >= 2 else None,
        bytes_per_second=16_500.0,
        fps_measured=15.0,
    )


VIDEO_SEEN = StreamObservation(
    H264,
    ParsedFormat(width=640, height=360, fps=15.0, profile="constrained-baseline"),
    _gop_measurement(),
)
AUDIO_SEEN = StreamObservation(
    PCMA,
    ParsedFormat(sample_rate=8000, channels=1),
    Measurement(50, None, 8_000, 0, None, None, 8_000.0, None),
)


def _streaming(
    transport: Transport = TCP, measured: bool = True, *streams: StreamObservation
) -> AttemptResult:
    return AttemptResult(
        transport,
        measured,
        Stage.STREAMING,
        streams=streams or (VIDEO_SEEN,),
        first_media_ms=250.0,
        window_s=1.02 if measured else None,
    )


def _failed(
    transport: Transport,
    stage: Stage,
    fault: Fault | None = None,
    *,
    deadline_hit: bool = False,
    connect: ConnectProblem | None = None,
    offered: tuple[OfferedStream, ...] = (),
) -> AttemptResult:
    return AttemptResult(
        transport,
        True,
        stage,
        fault,
        deadline_hit,
        connect,
        streams=tuple(StreamObservation(o) for o in offered),
    )


def _request(credentials: tuple[str, str] | None = None, url: str = URL) -> ProbeRequest:
    return ProbeRequest(url, credentials, timeout_s=10.0, window_s=10.0)


# ---- the request -------------------------------------------------------------------------


def test_password_from_an_environment_reference() -> None:
    request = make_request(URL, "admin", "${CAM_PW}", env={"CAM_PW": PASSWORD})
    assert request.credentials == ("admin", PASSWORD)
    assert PASSWORD not in repr(request)


def test_credentials_in_the_url_are_percent_decoded() -> None:
    request = make_request("rtsp://ad%40min:pa%3Ass%40w%2Frd%25@cam.local/live", env={})
    assert request.credentials == ("ad@min", PASSWORD)
    assert request.display_url == "rtsp://ad%40min:***@cam.local/live"
    assert (request.host, request.port) == ("cam.local", 554)


@pytest.mark.parametrize(
    ("url", "user", "password", "env", "expected"),
    [
        (URL, "admin", "${CAM_PW}", {}, "--password: environment variable CAM_PW is not set"),
        (URL, None, "secret", {}, "--password needs --user"),
        ("rtsp://a:b@h/x", "admin", "pw", {}, "credentials are in the URL and also given"),
        ("http://cam/x", None, None, {}, "expected an rtsp:// or rtsps:// URL"),
        ("rtsp:///x", None, None, {}, "expected a host"),
        ("rtsp://cam:99999/x", None, None, {}, "expected a port number"),
        ("rtsp://${HOST}/x", None, None, {}, "URL: environment variable HOST is not set"),
    ],
)
def test_usage_errors_say_what_is_wrong(
    url: str, user: str | None, password: str | None, env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ProbeUsageError, match=expected.replace("?", r"\?")):
        make_request(url, user, password, env=env)


@pytest.mark.parametrize(("timeout", "seconds"), [(0, 5), (-1, 5), (301, 5), (5, 0), (5, 601)])
def test_timeout_and_window_bounds(timeout: float, seconds: float) -> None:
    with pytest.raises(ProbeUsageError):
        make_request(URL, timeout_s=timeout, window_s=seconds, env={})


def test_the_usage_error_for_a_bad_url_masks_its_password() -> None:
    with pytest.raises(ProbeUsageError) as info:
        make_request(f"http://admin:{PASSWORD}@cam/x", env={})
    assert "secret" not in str(info.value) and PASSWORD not in str(info.value)
    assert "admin:***@" in str(info.value)


def test_secrets_cover_the_password_as_typed_quoted_and_as_basic_auth() -> None:
    request = make_request("rtsp://admin:pa%3Ass%40w%2Frd%25@cam/x", env={})
    secrets = secrets_of(request)
    assert PASSWORD in secrets and "pa%3Ass%40w%2Frd%25" in secrets
    assert "YWRtaW46cGE6c3NAdy9yZCU=" in secrets  # base64("admin:pa:ss@w/rd%")
    assert secrets_of(make_request(URL, env={})) == ()


# ---- exit codes --------------------------------------------------------------------------


def test_every_outcome_has_its_own_exit_code_and_a_line_in_the_help() -> None:
    assert set(EXIT_CODES) == set(Outcome)
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)
    assert EXIT_CODES[Outcome.OK] == 0 and EXIT_CODES[Outcome.USAGE] == 2
    help_text = exit_code_help()
    for outcome, code in EXIT_CODES.items():
        assert f"  {int(code)}  {outcome.value}" in help_text


# ---- codecs and keyframes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "mode", "codec"),
    [
        ("H264", "", Codec.H264),
        ("h265", "", Codec.H265),
        ("MPEG4-GENERIC", "AAC-hbr", Codec.AAC),
        ("MPEG4-GENERIC", "CELP-cbr", Codec.OTHER),
        ("MP4A-LATM", "", Codec.AAC),
        ("PCMA", "", Codec.PCMA),
        ("PCMU", "", Codec.PCMU),
        ("OPUS", "", Codec.OPUS),
        ("JPEG", "", Codec.OTHER),
    ],
)
def test_codec_from_the_sdp_encoding_name(encoding: str, mode: str, codec: Codec) -> None:
    assert codec_of(encoding, mode) is codec


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (bytes([0x65, 0x88]), True),  # IDR slice
        (bytes([0x41, 0x9A]), False),  # non-IDR slice
        (bytes([0x67, 0x42]), False),  # SPS alone is no keyframe
        (bytes([0x18, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xCE, 0, 2, 0x65, 0x88]), True),  # STAP-A
        (bytes([0x18, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xCE]), False),
        (bytes([0x7C, 0x85, 0x88]), True),  # FU-A start of an IDR
        (bytes([0x7C, 0x45, 0x88]), True),  # FU-A end of an IDR
        (bytes([0x7C, 0x81, 0x9A]), False),  # FU-A of a P slice
        (b"", False),
    ],
)
def test_h264_keyframes_in_rtp_payloads(payload: bytes, key: bool) -> None:
    assert h264_keyframe(payload) is key


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (bytes([19 << 1, 1, 0xAF]), True),  # IDR_W_RADL
        (bytes([21 << 1, 1, 0xAF]), True),  # CRA
        (bytes([1 << 1, 1, 0xD0]), False),  # TRAIL_R
        (bytes([32 << 1, 1, 0x0C]), False),  # VPS
        (bytes([48 << 1, 1, 0, 2, 32 << 1, 1, 0, 3, 19 << 1, 1, 0xAF]), True),  # AP
        (bytes([49 << 1, 1, 0x80 | 19, 0xAF]), True),  # FU start of an IDR
        (bytes([49 << 1, 1, 0x80 | 1, 0xD0]), False),
    ],
)
def test_h265_keyframes_in_rtp_payloads(payload: bytes, key: bool) -> None:
    assert h265_keyframe(payload) is key


# ---- measuring ---------------------------------------------------------------------------


def _feed_video(meter: StreamMeter, start: int, frames: int, gop: int, step: int) -> None:
    """``frames`` frames of 4 packets each; a keyframe (4 x 2000 bytes) every ``gop``,
    otherwise 4 x 150 bytes."""
    for i in range(frames):
        ts = (start + i * step) & 0xFFFFFFFF
        key = i % gop == 0
        for _ in range(4):
            meter.add(ts, 2000 if key else 150, key)


def test_gop_fps_and_bitrate_from_rtp_timestamps_across_the_32_bit_wrap() -> None:
    meter = StreamMeter(90000, video=True)
    _feed_video(meter, start=0xFFFFFFFF - 50_000, frames=31, gop=15, step=6000)  # 15 fps
    m = meter.snapshot()
    assert (m.frames, m.packets, m.keyframes) == (31, 124, 3)
    assert m.gop_frames == 15
    assert m.gop_seconds == pytest.approx(1.0)
    # One GOP: one keyframe (8000 bytes) and 14 frames of 600 bytes, per second.
    assert m.bytes_per_second == pytest.approx(8000 + 14 * 600)
    assert m.fps_measured == pytest.approx(15.0)


def test_without_two_keyframes_there_is_no_gop_and_the_rate_spans_the_frames() -> None:
    meter = StreamMeter(90000, video=True)
    _feed_video(meter, start=1000, frames=10, gop=100, step=6000)
    m = meter.snapshot()
    assert (m.keyframes, m.gop_frames, m.gop_seconds) == (1, None, None)
    # 9 frame intervals = 0.6 s; the bytes before the last frame: 8000 + 8 * 600.
    assert m.bytes_per_second == pytest.approx((8000 + 8 * 600) / 0.6)


def test_audio_rate_comes_from_the_timestamps_not_from_arrival() -> None:
    """A camera that sends a backlog at the start: packets arrive at once, but their RTP
    timestamps say 20 ms each (the jitterbuffer's PTS got this wrong, measured)."""
    meter = StreamMeter(8000, video=False)
    for i in range(51):
        meter.add(1_000_000 + 160 * i, 160)
    m = meter.snapshot()
    assert (m.packets, m.frames, m.keyframes) == (51, None, 0)
    assert m.bytes_per_second == pytest.approx(8000.0)
    assert m.fps_measured is None


def test_b_frames_reordered_timestamps_still_measure_the_span() -> None:
    meter = StreamMeter(90000, video=True)
    for ts in (0, 18000, 6000, 12000, 36000, 24000, 30000):  # I P B B P B B (decode order)
        meter.add(ts, 100, ts == 0)
    m = meter.snapshot()
    assert m.frames == 7
    assert m.fps_measured == pytest.approx(15.0)


# ---- why an attempt failed ---------------------------------------------------------------


CONNECTING, DESCRIBED, SET_UP = Stage.CONNECTING, Stage.DESCRIBED, Stage.SET_UP


@pytest.mark.parametrize(
    ("stage", "fault", "deadline", "connect", "expected"),
    [
        (CONNECTING, FAILED_TO_CONNECT, False, ConnectProblem.REFUSED, Failure.REFUSED),
        (CONNECTING, FAILED_TO_CONNECT, False, ConnectProblem.DNS, Failure.DNS),
        (CONNECTING, FAILED_TO_CONNECT, False, ConnectProblem.NO_ROUTE, Failure.NO_ROUTE),
        (CONNECTING, FAILED_TO_CONNECT, False, ConnectProblem.TIMEOUT, Failure.CONNECT_TIMEOUT),
        (CONNECTING, FAILED_TO_CONNECT, False, ConnectProblem.CONNECTS, Failure.CONNECT_FAILED),
        (CONNECTING, SERVER_TIMEOUT, False, ConnectProblem.CONNECTS, Failure.NO_ANSWER),
        (CONNECTING, SERVER_TIMEOUT, False, ConnectProblem.TIMEOUT, Failure.CONNECT_TIMEOUT),
        (CONNECTING, None, True, ConnectProblem.CONNECTS, Failure.NO_ANSWER),
        (CONNECTING, None, True, ConnectProblem.TIMEOUT, Failure.CONNECT_TIMEOUT),
        (CONNECTING, UNAUTHORIZED, False, None, Failure.UNAUTHORIZED),
        (CONNECTING, NOT_FOUND, False, None, Failure.NOT_FOUND),
        (CONNECTING, UNAVAILABLE, False, None, Failure.RTSP_ERROR),
        (CONNECTING, source_eos(), False, None, Failure.CLOSED),
        (DESCRIBED, TRANSPORT_REFUSED, False, None, Failure.TRANSPORT_REFUSED),
        (DESCRIBED, None, True, None, Failure.NO_ANSWER),
        (SET_UP, NO_UDP_PACKETS, False, None, Failure.NO_DATA),
        (SET_UP, None, True, None, Failure.NO_DATA),
        (SET_UP, source_eos(), False, None, Failure.CLOSED),
        (Stage.STREAMING, None, False, None, None),
    ],
)
def test_attempt_failure(
    stage: Stage,
    fault: Fault | None,
    deadline: bool,
    connect: ConnectProblem | None,
    expected: Failure | None,
) -> None:
    result = AttemptResult(TCP, True, stage, fault, deadline, connect)
    assert attempt_failure(result) is expected


def test_a_connect_check_runs_only_where_rtspsrc_cannot_say_why() -> None:
    assert needs_connect_check(_failed(TCP, CONNECTING, FAILED_TO_CONNECT))
    assert needs_connect_check(_failed(TCP, CONNECTING, SERVER_TIMEOUT))
    assert needs_connect_check(_failed(TCP, CONNECTING, deadline_hit=True))
    assert not needs_connect_check(_failed(TCP, CONNECTING, UNAUTHORIZED))
    assert not needs_connect_check(_failed(TCP, CONNECTING, UNAVAILABLE))
    assert not needs_connect_check(_failed(TCP, DESCRIBED, deadline_hit=True))


def test_tcp_first_then_udp_only_when_it_can_tell_something() -> None:
    assert next_attempt([]) == AttemptPlan(TCP, measure=True)
    assert next_attempt([_streaming()]) == AttemptPlan(UDP, measure=False)
    refused = _failed(TCP, DESCRIBED, TRANSPORT_REFUSED)
    assert next_attempt([refused]) == AttemptPlan(UDP, measure=True)
    assert next_attempt([_failed(TCP, CONNECTING, UNAUTHORIZED)]) is None
    assert next_attempt([_failed(TCP, CONNECTING, FAILED_TO_CONNECT)]) is None
    assert next_attempt([refused, _streaming(UDP)]) is None


def test_a_busy_camera_is_asked_again_and_nothing_else_is() -> None:
    not_enough_bandwidth = _src_fault(
        RESOURCE,
        RES_READ,
        "Unhandled error",
        "gst_rtspsrc_send (): ...:\nNot Enough Bandwidth (453)",
    )
    native_unavailable = _src_fault(  # nvrrtspsrc names the request too
        RESOURCE,
        RES_READ,
        "Unhandled error",
        "check_response (): ...:\nService Unavailable (503) to DESCRIBE",
    )
    assert is_busy(_failed(UDP, CONNECTING, UNAVAILABLE))
    assert is_busy(_failed(TCP, CONNECTING, native_unavailable))
    assert is_busy(_failed(TCP, DESCRIBED, not_enough_bandwidth))
    assert not is_busy(_failed(UDP, CONNECTING, NOT_FOUND))
    assert not is_busy(_failed(UDP, CONNECTING, UNAUTHORIZED))
    assert not is_busy(_failed(UDP, CONNECTING, deadline_hit=True))
    assert not is_busy(_streaming(UDP))


# ---- the report --------------------------------------------------------------------------


def test_ok_over_both_transports() -> None:
    report = build_report(
        _request(), [_streaming(TCP, True, VIDEO_SEEN, AUDIO_SEEN), _streaming(UDP, False)]
    )
    assert report.outcome is Outcome.OK and report.exit_code == 0
    assert (report.reachable, report.auth, report.measured_over) == (True, Auth.OK, TCP)
    assert [t.status for t in report.transports] == [TransportStatus.OK, TransportStatus.OK]
    video, audio = report.streams
    assert (video.codec, video.width, video.height, video.fps) == (Codec.H264, 640, 360, 15.0)
    assert (video.gop_frames, video.gop_seconds, video.recordable) == (15, 1.0, True)
    assert (audio.codec, audio.sample_rate, audio.channels) == (Codec.PCMA, 8000, 1)
    assert audio.width is None and audio.gop_frames is None
    assert report.hint is None


def test_a_camera_that_refuses_tcp_is_measured_over_udp_and_says_what_to_set() -> None:
    refused = _failed(TCP, DESCRIBED, TRANSPORT_REFUSED, offered=(H264,))
    report = build_report(_request(), [refused, _streaming(UDP, True)])
    assert report.outcome is Outcome.OK
    tcp, udp = report.transports
    assert tcp.status is TransportStatus.REFUSED and "refuses RTP over TCP" in tcp.detail
    assert udp.status is TransportStatus.OK
    assert report.measured_over is UDP
    assert report.hint is not None and "transport: udp" in report.hint


@pytest.mark.parametrize(
    ("attempts", "outcome", "failure"),
    [
        (
            [
                _failed(TCP, DESCRIBED, TRANSPORT_REFUSED),
                _failed(UDP, DESCRIBED, TRANSPORT_REFUSED),
            ],
            Outcome.NO_STREAM,
            Failure.TRANSPORT_REFUSED,
        ),
        (
            [_failed(TCP, DESCRIBED, TRANSPORT_REFUSED), _failed(UDP, SET_UP, NO_UDP_PACKETS)],
            Outcome.TIMEOUT,
            Failure.NO_DATA,
        ),
        (
            [_failed(TCP, CONNECTING, FAILED_TO_CONNECT, connect=ConnectProblem.REFUSED)],
            Outcome.UNREACHABLE,
            Failure.REFUSED,
        ),
        (
            [_failed(TCP, CONNECTING, FAILED_TO_CONNECT, connect=ConnectProblem.DNS)],
            Outcome.UNREACHABLE,
            Failure.DNS,
        ),
        (
            [_failed(TCP, CONNECTING, deadline_hit=True, connect=ConnectProblem.TIMEOUT)],
            Outcome.UNREACHABLE,
            Failure.CONNECT_TIMEOUT,
        ),
        (
            [_failed(TCP, CONNECTING, deadline_hit=True, connect=ConnectProblem.CONNECTS)],
            Outcome.TIMEOUT,
            Failure.NO_ANSWER,
        ),
        ([_failed(TCP, CONNECTING, NOT_FOUND)], Outcome.NOT_FOUND, Failure.NOT_FOUND),
        ([_failed(TCP, CONNECTING, UNAVAILABLE)], Outcome.NO_STREAM, Failure.RTSP_ERROR),
        (
            [_streaming(TCP, True, StreamObservation(MJPEG, None, _gop_measurement(0)))],
            Outcome.NO_STREAM,
            Failure.NO_VIDEO,
        ),
    ],
)
def test_outcomes_and_exit_codes(
    attempts: list[AttemptResult], outcome: Outcome, failure: Failure
) -> None:
    report = build_report(_request(), attempts)
    assert (report.outcome, report.failure) == (outcome, failure)
    assert report.exit_code == int(EXIT_CODES[outcome])


def test_unreachable_says_why() -> None:
    attempt = _failed(TCP, CONNECTING, FAILED_TO_CONNECT, connect=ConnectProblem.REFUSED)
    report = build_report(_request(), [attempt])
    assert (report.reachable, report.auth) == (False, Auth.UNKNOWN)
    assert report.exit_code == ExitCode.UNREACHABLE
    assert report.message == "connection refused: nothing listens on port 8554"
    assert report.transports[1].status is TransportStatus.NOT_TRIED
    text = render_text(report)
    assert "reachable   no (refused)" in text
    assert json.loads(render_json(report))["unreachable_reason"] == "refused"


@pytest.mark.parametrize(
    ("credentials", "auth", "words"),
    [(None, Auth.REQUIRED, "requires a user and password"), (("admin", PASSWORD), Auth.REJECTED,
                                                              "rejected the user and password")],
)  # fmt: skip
def test_unauthorized_required_or_rejected(
    credentials: tuple[str, str] | None, auth: Auth, words: str
) -> None:
    report = build_report(_request(credentials), [_failed(TCP, CONNECTING, UNAUTHORIZED)])
    assert (report.outcome, report.auth, report.reachable) == (Outcome.UNAUTHORIZED, auth, True)
    assert report.exit_code == ExitCode.UNAUTHORIZED
    assert words in report.message


# ---- rendering ---------------------------------------------------------------------------


def test_text_shows_what_a_user_sets_up_a_camera_with() -> None:
    report = build_report(
        _request(), [_streaming(TCP, True, VIDEO_SEEN, AUDIO_SEEN), _streaming(UDP, False)]
    )
    text = render_text(report)
    assert text.splitlines()[0] == f"camera      {URL}"
    assert "result      ok: the camera streams H.264 video, ready to record" in text
    assert "transports  tcp: ok — media after 250 ms" in text
    assert "stream 0    video H.264 constrained-baseline, 640x360, 15 fps" in text
    assert "GOP 15 frames = 1.00 s, 132 kbit/s (16.5 kB/s)" in text
    assert "stream 1    audio PCMA (G.711 A-law), 8000 Hz, mono" in text
    assert "64 kbit/s (8.0 kB/s)" in text
    assert text.splitlines()[-1] == "exit        0"


def test_json_schema_is_stable() -> None:
    report = build_report(
        _request(), [_streaming(TCP, True, VIDEO_SEEN, AUDIO_SEEN), _streaming(UDP, False)]
    )
    data = json.loads(render_json(report))
    assert list(data) == [
        "schema", "url", "outcome", "exit_code", "failure", "message", "hint", "reachable",
        "unreachable_reason", "auth", "transports", "measured_over", "window_seconds", "streams",
    ]  # fmt: skip
    assert data["schema"] == SCHEMA
    assert data["transports"]["tcp"] == {
        "status": "ok",
        "detail": "media after 250 ms",
        "first_media_ms": 250.0,
    }
    assert list(data["transports"]) == ["tcp", "udp"]
    assert list(data["streams"][0]) == [
        "index", "media", "codec", "encoding", "payload_type", "clock_rate", "recordable",
        "width", "height", "fps", "fps_measured", "profile", "gop_frames", "gop_seconds",
        "keyframes", "frames", "packets", "packets_lost", "bytes", "bytes_per_second",
        "sample_rate", "channels",
    ]  # fmt: skip
    assert data["streams"][0]["gop_frames"] == 15
    assert data["streams"][1]["codec"] == "pcma"
    # The same keys in every stream and every outcome: absent facts are null.
    failed = json.loads(
        render_json(build_report(_request(), [_failed(TCP, CONNECTING, NOT_FOUND)]))
    )
    assert list(failed) == list(data) and failed["streams"] == []


def test_no_password_in_any_output() -> None:
    request = make_request(f"rtsp://admin:{quote(PASSWORD, safe='')}@cam/x", env={})
    for secret in secrets_of(request):
        register_secret(secret)
    # A fault text that quotes the password (GStreamer debug strings quote URLs freely).
    leaky = replace(UNAUTHORIZED, debug=f"rtsp://admin:{PASSWORD}@cam/x {PASSWORD} (401)")
    attempts = [
        [_failed(TCP, CONNECTING, leaky)],
        [_failed(TCP, CONNECTING, replace(FAILED_TO_CONNECT, debug=PASSWORD))],
        [_streaming(TCP, True, VIDEO_SEEN, AUDIO_SEEN), _streaming(UDP, False)],
    ]
    for attempt in attempts:
        report = build_report(request, attempt)
        for out in (render_text(report), render_json(report)):
            assert PASSWORD not in out and quote(PASSWORD, safe="") not in out
            assert "pa:ss" not in out and "pa%3Ass" not in out
            assert "admin:***@cam" in out


def test_a_transient_error_on_the_second_transport_is_no_transport_hint() -> None:
    udp_503 = _failed(UDP, CONNECTING, UNAVAILABLE)
    report = build_report(_request(), [_streaming(), udp_503])
    assert report.outcome is Outcome.OK
    assert report.transports[1].status is TransportStatus.FAILED
    assert report.hint is None
    no_udp = _failed(UDP, SET_UP, NO_UDP_PACKETS)
    report = build_report(_request(), [_streaming(), no_udp])
    assert report.hint is not None and "transport: tcp" in report.hint


def test_lost_packets_are_shown() -> None:
    lossy = replace(VIDEO_SEEN, packets_lost=3)
    report = build_report(_request(), [_streaming(TCP, True, lossy)])
    assert report.streams[0].packets_lost == 3
    assert "GOP 15 frames = 1.00 s, 132 kbit/s (16.5 kB/s), 3 packets lost" in render_text(report)
    assert json.loads(render_json(report))["streams"][0]["packets_lost"] == 3
