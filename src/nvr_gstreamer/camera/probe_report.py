"""What ``nvr probe`` found out about a camera, and how it says so. Pure: no ``gi``.

The GStreamer side (:mod:`nvr_gstreamer.gst.discover`) connects to the camera once per
transport, the way the recorder would, and hands back one :class:`AttemptResult` per attempt:
how far it got (:class:`Stage`), the first fault rtspsrc posted (a
:class:`~nvr_gstreamer.camera.errors.Fault`), the streams the camera described and what was
measured on each. Everything else happens here:

* :func:`next_attempt` decides the attempts: RTP over TCP first, measuring; then UDP, only
  until its first media when TCP worked, measuring when it did not. UDP is not tried when the
  RTSP connection itself failed (it would fail the same way).
* :func:`attempt_failure` says why one attempt failed, from the one classification table
  (:func:`~nvr_gstreamer.camera.errors.classify`) refined by how far the attempt got.
* :func:`build_report` turns the attempts into a :class:`ProbeReport`, whose
  :attr:`~ProbeReport.outcome` maps to the exit code in :data:`EXIT_CODES` (the one place
  they are defined), and :func:`render_text` / :func:`render_json` show it.

No password ever appears in a report: URLs are redacted and fault texts went through
:func:`~nvr_gstreamer.core.redact.redact` (register the request's :func:`secrets_of` first).

Longer than ~300 lines: request, observations, failures, attempt plan, report and rendering are
one pure pipeline of values for ``nvr probe``; each section is short, and all are unit-tested
together.
"""

from __future__ import annotations

import base64
import json
import os
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from nvr_gstreamer.camera.errors import ErrorKind, Fault, classify, rtsp_status
from nvr_gstreamer.camera.probe import DEFAULT_RTSP_PORT, DEFAULT_RTSPS_PORT
from nvr_gstreamer.camera.transport import Transport
from nvr_gstreamer.core.redact import redact, redact_url

SCHEMA = "nvr-probe/1"
"""Names the JSON layout of :func:`render_json`; a change that breaks readers bumps it."""

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WINDOW_S = 10.0
KEYFRAMES_WANTED = 2  # two keyframes per video stream: one whole GOP measured

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # as the config file accepts them


class ProbeUsageError(ValueError):
    """The command line cannot be probed: bad URL, missing environment variable, ..."""


# ---- outcomes and exit codes ----------------------------------------------------------------


class Outcome(Enum):
    OK = "ok"
    ERROR = "error"
    USAGE = "usage"
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    NO_STREAM = "no_stream"
    TIMEOUT = "timeout"


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    UNREACHABLE = 3
    UNAUTHORIZED = 4
    NOT_FOUND = 5
    NO_STREAM = 6
    TIMEOUT = 7


EXIT_CODES: dict[Outcome, ExitCode] = {
    Outcome.OK: ExitCode.OK,
    Outcome.ERROR: ExitCode.ERROR,
    Outcome.USAGE: ExitCode.USAGE,
    Outcome.UNREACHABLE: ExitCode.UNREACHABLE,
    Outcome.UNAUTHORIZED: ExitCode.UNAUTHORIZED,
    Outcome.NOT_FOUND: ExitCode.NOT_FOUND,
    Outcome.NO_STREAM: ExitCode.NO_STREAM,
    Outcome.TIMEOUT: ExitCode.TIMEOUT,
}

EXIT_CODE_MEANINGS: dict[Outcome, str] = {
    Outcome.OK: "the camera streams H.264 or H.265 video the recorder can record",
    Outcome.ERROR: "the probe itself failed (a GStreamer plugin is missing)",
    Outcome.USAGE: "bad command line: URL, option, or an unset ${ENV} variable",
    Outcome.UNREACHABLE: "no connection: DNS, connection refused, no route, connect timeout, "
    "or the connection was closed",
    Outcome.UNAUTHORIZED: "credentials required or rejected",
    Outcome.NOT_FOUND: "no stream at this path (404)",
    Outcome.NO_STREAM: "the camera answers, but nothing recordable streams: every transport "
    "refused, no H.264/H.265 video, or an RTSP error such as 503",
    Outcome.TIMEOUT: "connected, but no RTSP answer or no media within --timeout",
}


def exit_code_help() -> str:
    """The exit codes as the command's help lists them."""
    lines = ["exit codes:"]
    for outcome, code in sorted(EXIT_CODES.items(), key=lambda item: item[1]):
        meaning = textwrap.wrap(EXIT_CODE_MEANINGS[outcome], 62)
        lines.append(f"  {int(code)}  {outcome.value:<13} {meaning[0]}")
        lines.extend(f"{'':19}{more}" for more in meaning[1:])
    return "\n".join(lines)


# ---- the request ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    url: str  # as given: it may hold credentials, so show only :attr:`display_url`
    credentials: tuple[str, str] | None = field(repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    window_s: float = DEFAULT_WINDOW_S

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        secure = parts.scheme.lower() == "rtsps"
        return parts.port or (DEFAULT_RTSPS_PORT if secure else DEFAULT_RTSP_PORT)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


def expand_env(text: str, env: Mapping[str, str], what: str) -> str:
    """``${NAME}`` replaced by the environment variable ``NAME``, as in the config file."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ProbeUsageError(f"{what}: environment variable {name} is not set")
        return env[name]

    return _ENV_REF.sub(sub, text)


def make_request(
    url: str,
    user: str | None = None,
    password: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    window_s: float = DEFAULT_WINDOW_S,
    env: Mapping[str, str] | None = None,
) -> ProbeRequest:
    """Validate the command line. Credentials come from ``user``/``password`` (each may be a
    ``${ENV}`` reference) or from the URL (percent-encoded), not both."""
    env = os.environ if env is None else env
    url = expand_env(url, env, "URL").strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("rtsp", "rtsps"):
        raise ProbeUsageError(f"{redact_url(url)}: expected an rtsp:// or rtsps:// URL")
    if not parts.hostname:
        raise ProbeUsageError(f"{redact_url(url)}: expected a host: rtsp://host[:port]/path")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ProbeUsageError(
            f"{redact_url(url)}: expected a port number from 1 to 65535"
        ) from None
    if not (0 < timeout_s <= 300):
        raise ProbeUsageError("--timeout: expected seconds from 0 (exclusive) to 300")
    if not (0 < window_s <= 600):
        raise ProbeUsageError("--seconds: expected seconds from 0 (exclusive) to 600")
    user = expand_env(user, env, "--user") if user is not None else None
    password = expand_env(password, env, "--password") if password is not None else None
    if password is not None and not user:
        raise ProbeUsageError("--password needs --user")
    in_url = parts.username is not None or parts.password is not None
    if in_url and user:
        raise ProbeUsageError(
            "credentials are in the URL and also given as --user/--password; give them one way"
        )
    credentials: tuple[str, str] | None = None
    if user:
        credentials = (user, password or "")
    elif parts.username:
        credentials = (unquote(parts.username), unquote(parts.password or ""))
    return ProbeRequest(url, credentials, timeout_s, window_s)


def secrets_of(request: ProbeRequest) -> tuple[str, ...]:
    """What :func:`~nvr_gstreamer.core.redact.register_secret` must know before any output:
    the password as typed, as it stands in a URL, and as RTSP Basic auth sends it."""
    if request.credentials is None or not request.credentials[1]:
        return ()
    user, password = request.credentials
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    raw_in_url = urlsplit(request.url).password
    return tuple(s for s in (password, quote(password, safe=""), basic, raw_in_url) if s)


# ---- what one attempt observed --------------------------------------------------------------


class Stage(IntEnum):
    """How far one attempt got."""

    CONNECTING = 0  # no RTSP description yet
    DESCRIBED = 1  # DESCRIBE answered: the camera is there, we may see it, the path exists
    SET_UP = 2  # SETUP and PLAY answered: the transport was accepted
    STREAMING = 3  # media arrived


class ConnectProblem(Enum):
    """A plain TCP connect to the camera's port, made after rtspsrc could not connect."""

    CONNECTS = "connects"  # it connects now: the RTSP server misbehaved, or was briefly away
    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    NO_ROUTE = "no_route"
    OTHER = "other"


class Codec(Enum):
    H264 = "h264"
    H265 = "h265"
    AAC = "aac"
    PCMA = "pcma"
    PCMU = "pcmu"
    OPUS = "opus"
    OTHER = "other"


RECORDABLE = frozenset({Codec.H264, Codec.H265})

_CODEC_NAMES = {
    Codec.H264: "H.264",
    Codec.H265: "H.265",
    Codec.AAC: "AAC",
    Codec.PCMA: "PCMA (G.711 A-law)",
    Codec.PCMU: "PCMU (G.711 µ-law)",
    Codec.OPUS: "Opus",
}


def codec_of(encoding: str, mode: str = "") -> Codec:
    """The codec of an RTP stream from its SDP encoding name (``a=rtpmap``) and, for
    MPEG4-GENERIC, its ``mode`` (AAC-hbr/AAC-lbr, as cameras send AAC)."""
    name = encoding.upper()
    if name == "MPEG4-GENERIC":
        return Codec.AAC if mode.upper().startswith("AAC") else Codec.OTHER
    simple = {
        "H264": Codec.H264,
        "H265": Codec.H265,
        "MP4A-LATM": Codec.AAC,
        "PCMA": Codec.PCMA,
        "PCMU": Codec.PCMU,
        "OPUS": Codec.OPUS,
    }
    return simple.get(name, Codec.OTHER)


@dataclass(frozen=True, slots=True)
class OfferedStream:
    """One stream of the camera's SDP."""

    index: int
    media: str  # video, audio, application ...
    encoding: str  # RTP encoding name: H264, PCMA, MPEG4-GENERIC ...
    payload_type: int | None = None
    clock_rate: int | None = None
    channels: int | None = None  # rtpmap encoding parameters (audio)
    framerate: float | None = None  # a=framerate
    mode: str = ""  # fmtp mode (MPEG4-GENERIC)

    @property
    def codec(self) -> Codec:
        return codec_of(self.encoding, self.mode)


@dataclass(frozen=True, slots=True)
class ParsedFormat:
    """What the parser after the depayloader says about a stream (its caps)."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None  # None when the stream does not say (framerate 0/1)
    profile: str | None = None
    sample_rate: int | None = None
    channels: int | None = None


@dataclass(frozen=True, slots=True)
class Measurement:
    """What one stream sent during the window, measured on its RTP packets (RTP timestamps
    are the sender's clock: arrival times and the jitterbuffer's PTS bunch up when a camera
    sends a backlog at the start)."""

    packets: int
    frames: int | None  # video: distinct RTP timestamps; None for other media
    bytes: int  # RTP payload bytes
    keyframes: int
    gop_frames: int | None  # frames from one keyframe to the next (mean over whole GOPs)
    gop_seconds: float | None
    bytes_per_second: float | None
    fps_measured: float | None


def h264_keyframe(payload: bytes) -> bool:
    """Whether an H.264 RTP payload (RFC 6184) carries an IDR slice, alone, in a STAP-A or as
    a fragment (FU-A/FU-B)."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type == 5:
        return True
    if nal_type == 24:  # STAP-A: (16-bit size, NAL unit)*
        i = 1
        while i + 2 < len(payload):
            size = int.from_bytes(payload[i : i + 2], "big")
            if size == 0:
                return False
            if payload[i + 2] & 0x1F == 5:
                return True
            i += 2 + size
        return False
    if nal_type in (28, 29):  # FU-A, FU-B: the FU header holds the type
        return len(payload) > 1 and payload[1] & 0x1F == 5
    return False


def _h265_irap(nal_type: int) -> bool:
    return 16 <= nal_type <= 21  # BLA, IDR, CRA


def h265_keyframe(payload: bytes) -> bool:
    """Whether an H.265 RTP payload (RFC 7798) carries an IRAP picture (IDR, CRA, BLA), alone,
    in an aggregation packet or as a fragmentation unit."""
    if len(payload) < 2:
        return False
    nal_type = (payload[0] >> 1) & 0x3F
    if _h265_irap(nal_type):
        return True
    if nal_type == 48:  # AP: 2-byte header, then (16-bit size, NAL unit)*
        i = 2
        while i + 2 < len(payload):
            size = int.from_bytes(payload[i : i + 2], "big")
            if size == 0:
                return False
            if _h265_irap((payload[i + 2] >> 1) & 0x3F):
                return True
            i += 2 + size
        return False
    if nal_type == 49:  # FU: 2-byte header, FU header holds the type
        return len(payload) > 2 and _h265_irap(payload[2] & 0x3F)
    return False


def rtp_keyframe(codec: Codec, payload: bytes) -> bool:
    if codec is Codec.H264:
        return h264_keyframe(payload)
    if codec is Codec.H265:
        return h265_keyframe(payload)
    return False


class StreamMeter:
    """Accumulates one stream's RTP packets (from one streaming thread; snapshot after).

    Time comes from the RTP timestamps (``clock_rate`` ticks per second, 32 bits, wrapping).
    For video, a frame is a run of packets with one timestamp, and a keyframe a frame with
    an IDR/IRAP packet. The bitrate covers whole GOPs when two keyframes were seen (a window
    with a keyframe at each end would count one keyframe too many), else the span of the
    packets: either way, the bytes before the last boundary over the time up to it.
    """

    def __init__(self, clock_rate: int | None, video: bool) -> None:
        self.clock_rate = clock_rate if clock_rate and clock_rate > 0 else None
        self.video = video
        self.packets = 0
        self.frames = 0  # video: frames; otherwise packets
        self.bytes = 0
        self._last_raw: int | None = None
        self._ts = 0  # the current unit's timestamp, unwrapped
        self._min_ts = 0
        self._max_ts = 0
        self._bytes_before_unit = 0  # bytes before the current frame (or packet)
        self._unit_is_key = False
        self._keys: list[tuple[int, int, int]] = []  # (frame index, timestamp, bytes before)

    @property
    def keyframes(self) -> int:
        return len(self._keys)

    def add(self, rtp_timestamp: int, payload_size: int, keyframe: bool = False) -> None:
        """One packet: its RTP timestamp, payload size and whether it carries a keyframe."""
        new_unit = True
        if self._last_raw is None:
            self._ts = self._min_ts = self._max_ts = 0
        else:
            delta = (rtp_timestamp - self._last_raw) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 0x100000000
            new_unit = not self.video or delta != 0
            self._ts += delta
            self._min_ts = min(self._min_ts, self._ts)
            self._max_ts = max(self._max_ts, self._ts)
        self._last_raw = rtp_timestamp
        if new_unit:
            self.frames += 1
            self._bytes_before_unit = self.bytes
            self._unit_is_key = False
        if keyframe and not self._unit_is_key:
            self._unit_is_key = True
            self._keys.append((self.frames - 1, self._ts, self._bytes_before_unit))
        self.packets += 1
        self.bytes += payload_size

    def snapshot(self) -> Measurement:
        gop_frames: int | None = None
        gop_seconds: float | None = None
        rate: float | None = None
        fps: float | None = None
        clock = self.clock_rate
        if len(self._keys) >= 2:
            first, last = self._keys[0], self._keys[-1]
            gops = len(self._keys) - 1
            gop_frames = round((last[0] - first[0]) / gops)
            if clock is not None and last[1] > first[1]:
                span_s = (last[1] - first[1]) / clock
                gop_seconds = span_s / gops
                rate = (last[2] - first[2]) / span_s
        span = self._max_ts - self._min_ts
        if clock is not None and span > 0 and self.frames >= 2:
            span_s = span / clock
            if self.video:
                fps = (self.frames - 1) / span_s
            if rate is None:
                rate = self._bytes_before_unit / span_s
        return Measurement(
            packets=self.packets,
            frames=self.frames if self.video else None,
            bytes=self.bytes,
            keyframes=len(self._keys),
            gop_frames=gop_frames,
            gop_seconds=gop_seconds,
            bytes_per_second=rate,
            fps_measured=fps,
        )


@dataclass(frozen=True, slots=True)
class StreamObservation:
    offered: OfferedStream
    format: ParsedFormat | None = None
    measurement: Measurement | None = None  # None: the stream was never set up or linked
    packets_lost: int | None = None  # the jitterbuffer's count (gaps in sequence numbers)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One connection attempt over one transport, as :mod:`~nvr_gstreamer.gst.discover`
    saw it."""

    transport: Transport
    measured: bool  # ran the measurement window (else stopped at the first media)
    stage: Stage
    fault: Fault | None = None  # the first error rtspsrc (or a parser) posted
    deadline_hit: bool = False  # --timeout passed before media arrived
    connect_problem: ConnectProblem | None = None
    streams: tuple[StreamObservation, ...] = ()
    first_media_ms: float | None = None  # from the start of the attempt
    window_s: float | None = None  # from the first media to the end of the measurement


# ---- why an attempt failed ------------------------------------------------------------------


class Failure(Enum):
    DNS = "dns"
    REFUSED = "refused"
    NO_ROUTE = "no_route"
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECT_FAILED = "connect_failed"
    CLOSED = "closed"
    NO_ANSWER = "no_answer"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    RTSP_ERROR = "rtsp_error"
    TRANSPORT_REFUSED = "transport_refused"
    NO_DATA = "no_data"
    NO_VIDEO = "no_video"
    OTHER = "other"


_PER_TRANSPORT = frozenset({Failure.TRANSPORT_REFUSED, Failure.NO_DATA})

_OUTCOME_OF: dict[Failure, Outcome] = {
    Failure.DNS: Outcome.UNREACHABLE,
    Failure.REFUSED: Outcome.UNREACHABLE,
    Failure.NO_ROUTE: Outcome.UNREACHABLE,
    Failure.CONNECT_TIMEOUT: Outcome.UNREACHABLE,
    Failure.CONNECT_FAILED: Outcome.UNREACHABLE,
    Failure.CLOSED: Outcome.UNREACHABLE,
    Failure.NO_ANSWER: Outcome.TIMEOUT,
    Failure.UNAUTHORIZED: Outcome.UNAUTHORIZED,
    Failure.NOT_FOUND: Outcome.NOT_FOUND,
    Failure.RTSP_ERROR: Outcome.NO_STREAM,
    Failure.TRANSPORT_REFUSED: Outcome.NO_STREAM,
    Failure.NO_DATA: Outcome.TIMEOUT,
    Failure.NO_VIDEO: Outcome.NO_STREAM,
    Failure.OTHER: Outcome.NO_STREAM,
}

_CONNECT_FAILURES = {
    ConnectProblem.DNS: Failure.DNS,
    ConnectProblem.REFUSED: Failure.REFUSED,
    ConnectProblem.NO_ROUTE: Failure.NO_ROUTE,
    ConnectProblem.TIMEOUT: Failure.CONNECT_TIMEOUT,
    ConnectProblem.OTHER: Failure.CONNECT_FAILED,
}


def _mentions_timeout(fault: Fault) -> bool:
    return "timeout" in f"{fault.message} {fault.debug}".lower()


def needs_connect_check(result: AttemptResult) -> bool:
    """Whether a plain TCP connect should explain the failure: rtspsrc says "Failed to
    connect" alike for DNS, refused and unroutable, and a timeout before the camera described
    its streams may be a dead host or a hung server."""
    if result.stage is not Stage.CONNECTING:
        return False
    if result.fault is None:
        return result.deadline_hit
    if classify(result.fault) is not ErrorKind.NETWORK or result.fault.domain == "":
        return False
    return rtsp_status(result.fault) is None


def attempt_failure(result: AttemptResult) -> Failure | None:
    """Why an attempt failed; None when media flowed."""
    fault = result.fault
    if fault is None:
        if result.stage is Stage.STREAMING:
            return None
        if result.stage is Stage.SET_UP:
            return Failure.NO_DATA
        if result.stage is Stage.CONNECTING:
            connect = _CONNECT_FAILURES.get(result.connect_problem or ConnectProblem.CONNECTS)
            if connect is not None:
                return connect
        return Failure.NO_ANSWER  # connected (or SETUP sent), nothing answered in time
    kind = classify(fault)
    if kind is ErrorKind.UNAUTHORIZED:
        return Failure.UNAUTHORIZED
    if kind is ErrorKind.NOT_FOUND:
        return Failure.NOT_FOUND
    if kind is ErrorKind.TRANSPORT:
        # 461 on SETUP ("no supported stream"), or UDP set up and no packet arrived.
        return Failure.NO_DATA if result.stage >= Stage.SET_UP else Failure.TRANSPORT_REFUSED
    if kind is ErrorKind.NETWORK:
        if fault.domain == "":  # EOS or rtspsrc's own timeout: the connection went away
            return Failure.CLOSED
        if rtsp_status(fault) is not None:
            return Failure.RTSP_ERROR  # it answered, with an error such as 503
        if _mentions_timeout(fault):
            if result.stage is Stage.CONNECTING:
                connect = _CONNECT_FAILURES.get(result.connect_problem or ConnectProblem.CONNECTS)
                if connect is not None:
                    return connect
            return Failure.NO_ANSWER
        if result.stage is Stage.CONNECTING:
            problem = result.connect_problem or ConnectProblem.OTHER
            return _CONNECT_FAILURES.get(problem, Failure.CONNECT_FAILED)
        return Failure.CLOSED
    return Failure.OTHER


# ---- planning the attempts ------------------------------------------------------------------

BUSY_RETRY_S = 1.0
"""Wait before asking a busy camera again."""
_BUSY_STATUSES = frozenset({453, 503})  # Not Enough Bandwidth, Service Unavailable


def is_busy(result: AttemptResult) -> bool:
    """Whether the camera said it is busy (503, 453) rather than that it cannot serve.

    Cameras with a session limit answer so while the session just closed is still being torn
    down; so does gst-rtsp-server for a shared stream being shut down when a new DESCRIBE comes.
    The attempt is worth one more try after :data:`BUSY_RETRY_S`."""
    if result.fault is None:
        return False
    status = rtsp_status(result.fault)
    return status is not None and status[0] in _BUSY_STATUSES


@dataclass(frozen=True, slots=True)
class AttemptPlan:
    transport: Transport
    measure: bool  # measure for the window; else stop at the first media


def next_attempt(done: Sequence[AttemptResult]) -> AttemptPlan | None:
    """TCP first (what the recorder prefers), measuring; then UDP: a quick check when TCP
    streamed, the measurement when it did not but the camera got as far as describing its
    streams. Before that, UDP would fail the same way: it is not tried."""
    if not done:
        return AttemptPlan(Transport.TCP, measure=True)
    if len(done) >= 2:
        return None
    tcp = done[0]
    if attempt_failure(tcp) is None:
        return AttemptPlan(Transport.UDP, measure=False)
    if tcp.stage >= Stage.DESCRIBED:
        return AttemptPlan(Transport.UDP, measure=True)
    return None


# ---- the report -----------------------------------------------------------------------------


class Auth(Enum):
    OK = "ok"  # let in (credentials accepted, or none needed)
    REQUIRED = "required"  # the camera wants credentials and none were given
    REJECTED = "rejected"  # the camera refused the credentials given
    UNKNOWN = "unknown"  # the camera never got that far


class TransportStatus(Enum):
    OK = "ok"
    REFUSED = "refused"
    NO_DATA = "no_data"
    FAILED = "failed"
    NOT_TRIED = "not_tried"


@dataclass(frozen=True, slots=True)
class TransportReport:
    transport: Transport
    status: TransportStatus
    detail: str
    first_media_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "detail": self.detail,
            "first_media_ms": _round(self.first_media_ms, 1),
        }


@dataclass(frozen=True, slots=True)
class StreamReport:
    index: int
    media: str
    codec: Codec
    encoding: str
    payload_type: int | None
    clock_rate: int | None
    recordable: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fps_measured: float | None = None
    profile: str | None = None
    gop_frames: int | None = None
    gop_seconds: float | None = None
    keyframes: int | None = None
    frames: int | None = None
    packets: int | None = None
    packets_lost: int | None = None
    bytes: int | None = None
    bytes_per_second: float | None = None
    sample_rate: int | None = None
    channels: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "media": self.media,
            "codec": self.codec.value,
            "encoding": self.encoding,
            "payload_type": self.payload_type,
            "clock_rate": self.clock_rate,
            "recordable": self.recordable,
            "width": self.width,
            "height": self.height,
            "fps": _round(self.fps, 3),
            "fps_measured": _round(self.fps_measured, 2),
            "profile": self.profile,
            "gop_frames": self.gop_frames,
            "gop_seconds": _round(self.gop_seconds, 3),
            "keyframes": self.keyframes,
            "frames": self.frames,
            "packets": self.packets,
            "packets_lost": self.packets_lost,
            "bytes": self.bytes,
            "bytes_per_second": None
            if self.bytes_per_second is None
            else round(self.bytes_per_second),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
        }


@dataclass(frozen=True, slots=True)
class ProbeReport:
    url: str  # redacted
    outcome: Outcome
    failure: Failure | None
    message: str
    reachable: bool | None
    unreachable_reason: Failure | None
    auth: Auth
    transports: tuple[TransportReport, ...]
    measured_over: Transport | None
    window_seconds: float | None
    streams: tuple[StreamReport, ...]
    hint: str | None = None

    @property
    def exit_code(self) -> int:
        return int(EXIT_CODES[self.outcome])

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "url": self.url,
            "outcome": self.outcome.value,
            "exit_code": self.exit_code,
            "failure": self.failure.value if self.failure else None,
            "message": self.message,
            "hint": self.hint,
            "reachable": self.reachable,
            "unreachable_reason": _reach_reason(self.unreachable_reason),
            "auth": self.auth.value,
            "transports": {t.transport.value: t.to_json() for t in self.transports},
            "measured_over": self.measured_over.value if self.measured_over else None,
            "window_seconds": _round(self.window_seconds, 3),
            "streams": [s.to_json() for s in self.streams],
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


_REACH_REASONS = {
    Failure.DNS: "dns",
    Failure.REFUSED: "refused",
    Failure.NO_ROUTE: "no_route",
    Failure.CONNECT_TIMEOUT: "timeout",
    Failure.CONNECT_FAILED: "connect_failed",
    Failure.CLOSED: "closed",
}


def _reach_reason(failure: Failure | None) -> str | None:
    return _REACH_REASONS.get(failure) if failure is not None else None


def _reachable(attempts: Sequence[AttemptResult], failures: Sequence[Failure | None]) -> bool:
    if any(a.stage >= Stage.DESCRIBED for a in attempts):
        return True
    if any(a.connect_problem is ConnectProblem.CONNECTS for a in attempts):
        return True
    return not any(f in _REACH_REASONS for f in failures)


def _failure_message(failure: Failure, result: AttemptResult, request: ProbeRequest) -> str:
    fault = result.fault
    port = request.port
    timeout = f"{request.timeout_s:g} s"
    if failure is Failure.DNS:
        return f"the host name {request.host!r} does not resolve (DNS)"
    if failure is Failure.REFUSED:
        return f"connection refused: nothing listens on port {port}"
    if failure is Failure.NO_ROUTE:
        return f"no route to {request.host} (network or host unreachable)"
    if failure is Failure.CONNECT_TIMEOUT:
        return f"no TCP connection to port {port} within {timeout} (host down, or a firewall)"
    if failure is Failure.CONNECT_FAILED:
        detail = f": {fault.describe()}" if fault else ""
        return f"could not connect to port {port}{detail}"
    if failure is Failure.CLOSED:
        return "the camera closed the connection"
    if failure is Failure.NO_ANSWER:
        if result.stage is Stage.DESCRIBED:
            return f"the camera did not answer SETUP/PLAY within {timeout}"
        return f"connected, but the camera did not answer RTSP within {timeout}"
    if failure is Failure.UNAUTHORIZED:
        if request.credentials is None:
            return "the camera requires a user and password (401 Unauthorized)"
        return "the camera rejected the user and password (401 Unauthorized)"
    if failure is Failure.NOT_FOUND:
        return "the camera has no stream at this path (404 Not Found)"
    if failure is Failure.RTSP_ERROR:
        status = rtsp_status(fault) if fault else None
        text = f"{status[1]} ({status[0]})" if status else "an error"
        return f"the camera answered with {text}"
    if failure is Failure.TRANSPORT_REFUSED:
        return f"the camera refuses RTP over {result.transport.value.upper()} (SETUP failed)"
    if failure is Failure.NO_DATA:
        return (
            f"RTP over {result.transport.value.upper()} was set up, but no media arrived "
            f"within {timeout}"
        )
    if failure is Failure.NO_VIDEO:
        return "no H.264 or H.265 video: the recorder records only those"
    return fault.describe() if fault else "failed"


def _transport_report(
    transport: Transport,
    result: AttemptResult | None,
    request: ProbeRequest,
    why_not: str,
) -> TransportReport:
    if result is None:
        return TransportReport(transport, TransportStatus.NOT_TRIED, why_not)
    failure = attempt_failure(result)
    if failure is None:
        first = result.first_media_ms
        detail = f"media after {first:.0f} ms" if first is not None else "media arrived"
        return TransportReport(transport, TransportStatus.OK, detail, first)
    detail = _failure_message(failure, result, request)
    if failure is Failure.TRANSPORT_REFUSED:
        return TransportReport(transport, TransportStatus.REFUSED, detail)
    if failure is Failure.NO_DATA:
        return TransportReport(transport, TransportStatus.NO_DATA, detail)
    return TransportReport(transport, TransportStatus.FAILED, detail)


def _stream_report(obs: StreamObservation) -> StreamReport:
    o, f, m = obs.offered, obs.format or ParsedFormat(), obs.measurement
    video = o.media == "video"
    audio = o.media == "audio"
    return StreamReport(
        index=o.index,
        media=o.media,
        codec=o.codec,
        encoding=o.encoding,
        payload_type=o.payload_type,
        clock_rate=o.clock_rate,
        recordable=video and o.codec in RECORDABLE,
        width=f.width if video else None,
        height=f.height if video else None,
        fps=(f.fps or o.framerate) if video else None,
        fps_measured=m.fps_measured if (m and video) else None,
        profile=f.profile,
        gop_frames=m.gop_frames if m else None,
        gop_seconds=m.gop_seconds if m else None,
        keyframes=m.keyframes if (m and video) else None,
        frames=m.frames if m else None,
        packets=m.packets if m else None,
        packets_lost=obs.packets_lost if m else None,
        bytes=m.bytes if m else None,
        bytes_per_second=m.bytes_per_second if m else None,
        sample_rate=(f.sample_rate or o.clock_rate) if audio else None,
        channels=(f.channels or o.channels or 1) if audio else None,
    )


def _primary_failure(
    attempts: Sequence[AttemptResult], failures: Sequence[Failure | None]
) -> tuple[Failure, AttemptResult]:
    pairs = [(f, a) for f, a in zip(failures, attempts, strict=True) if f is not None]
    for f, a in pairs:
        if f not in _PER_TRANSPORT:
            return f, a
    for f, a in pairs:
        if f is Failure.NO_DATA:
            return f, a
    return pairs[0]


def build_report(request: ProbeRequest, attempts: Sequence[AttemptResult]) -> ProbeReport:
    """The report of a probe from its attempts (at least one)."""
    if not attempts:
        raise ValueError("a probe makes at least one attempt")
    failures = [attempt_failure(a) for a in attempts]
    streaming = [a for a, f in zip(attempts, failures, strict=True) if f is None]
    measured = next((a for a in streaming if a.measured), streaming[0] if streaming else None)
    described = max(attempts, key=lambda a: (len(a.streams), a.stage))
    shown = measured or described
    streams = tuple(_stream_report(obs) for obs in shown.streams)

    failure: Failure | None
    hint: str | None = None
    if measured is not None:
        recordable = [s for s in streams if s.recordable]
        if not recordable:
            failure = Failure.NO_VIDEO
            message = _failure_message(failure, measured, request)
        elif not any(s.packets for s in recordable):
            failure = Failure.NO_DATA
            message = f"the camera sent no video within {request.window_s:g} s"
        else:
            failure = None
            video = recordable[0]
            message = f"the camera streams {_CODEC_NAMES[video.codec]} video, ready to record"
        outcome = Outcome.OK if failure is None else _OUTCOME_OF[failure]
    else:
        failure, culprit = _primary_failure(attempts, failures)
        outcome = _OUTCOME_OF[failure]
        message = _failure_message(failure, culprit, request)

    transports = _transport_reports(attempts, request)
    # A transport that failed for another reason (a transient 503) says nothing about it.
    refused = {
        t.transport
        for t in transports
        if t.status in (TransportStatus.REFUSED, TransportStatus.NO_DATA)
    }
    if outcome is Outcome.OK and refused == {Transport.TCP}:
        hint = "only UDP works: set 'transport: udp' (or auto) for this camera"
    elif outcome is Outcome.OK and refused == {Transport.UDP}:
        hint = "only TCP works: set 'transport: tcp' (or auto) for this camera"
    elif failure is Failure.UNAUTHORIZED:
        hint = "give --user and --password (or user:password@ in the URL)"
        if request.credentials is not None:
            hint = "check the user name and password"

    reachable = _reachable(attempts, failures)
    if reachable:
        unreachable_reason = None
    else:
        unreachable_reason = next((f for f in failures if f in _REACH_REASONS), None)
    return ProbeReport(
        url=request.display_url,
        outcome=outcome,
        failure=failure,
        message=redact(message),
        reachable=reachable,
        unreachable_reason=unreachable_reason,
        auth=_auth(attempts, failures, request),
        transports=transports,
        measured_over=measured.transport if measured else None,
        window_seconds=measured.window_s if measured else None,
        streams=streams,
        hint=hint,
    )


def _auth(
    attempts: Sequence[AttemptResult], failures: Sequence[Failure | None], request: ProbeRequest
) -> Auth:
    if any(a.stage >= Stage.DESCRIBED for a in attempts):
        return Auth.OK
    if Failure.UNAUTHORIZED in failures:
        return Auth.REQUIRED if request.credentials is None else Auth.REJECTED
    return Auth.UNKNOWN


def _transport_reports(
    attempts: Sequence[AttemptResult], request: ProbeRequest
) -> tuple[TransportReport, ...]:
    by_transport = {a.transport: a for a in attempts}
    why_not = "not tried: the camera did not get as far as describing its streams"
    return tuple(
        _transport_report(t, by_transport.get(t), request, why_not)
        for t in (Transport.TCP, Transport.UDP)
    )


def error_report(request: ProbeRequest, message: str) -> ProbeReport:
    """The report when the probe itself could not run (exit code 1)."""
    return ProbeReport(
        url=request.display_url,
        outcome=Outcome.ERROR,
        failure=None,
        message=redact(message),
        reachable=None,
        unreachable_reason=None,
        auth=Auth.UNKNOWN,
        transports=tuple(
            TransportReport(t, TransportStatus.NOT_TRIED, "not tried")
            for t in (Transport.TCP, Transport.UDP)
        ),
        measured_over=None,
        window_seconds=None,
        streams=(),
    )


# ---- rendering ------------------------------------------------------------------------------


def render_json(report: ProbeReport) -> str:
    return redact(json.dumps(report.to_json(), indent=2))


def _channels(n: int | None) -> str:
    return {None: "", 1: "mono", 2: "stereo"}.get(n, f"{n} channels")


def _rate(bytes_per_second: float | None) -> str | None:
    if bytes_per_second is None:
        return None
    return f"{bytes_per_second * 8 / 1000:.0f} kbit/s ({bytes_per_second / 1000:.1f} kB/s)"


def _describe_stream(s: StreamReport) -> list[str]:
    codec = _CODEC_NAMES.get(s.codec, f"other ({s.encoding})")
    first = [f"{s.media} {codec}"]
    second: list[str] = []
    if s.media == "video":
        if s.profile:
            first[0] += f" {s.profile}"
        if s.width and s.height:
            first.append(f"{s.width}x{s.height}")
        if s.fps:
            first.append(f"{s.fps:g} fps")
        elif s.fps_measured:
            first.append(f"{s.fps_measured:.1f} fps (measured)")
        if s.gop_frames is not None and s.gop_seconds is not None:
            second.append(f"GOP {s.gop_frames} frames = {s.gop_seconds:.2f} s")
        elif s.frames:
            second.append(f"GOP not measured ({s.keyframes or 0} keyframe(s) in the window)")
    elif s.media == "audio":
        if s.sample_rate:
            first.append(f"{s.sample_rate} Hz")
        if s.channels:
            first.append(_channels(s.channels))
    rate = _rate(s.bytes_per_second)
    if rate:
        second.append(rate)
    elif s.packets == 0:
        second.append("nothing received")
    elif s.packets is None:
        second.append("not received")
    if s.packets_lost:
        second.append(f"{s.packets_lost} packet{'s' if s.packets_lost != 1 else ''} lost")
    if not s.recordable and s.media == "video":
        second.append("not recordable")
    lines = [", ".join(first)]
    if second:
        lines.append(", ".join(second))
    return lines


def render_text(report: ProbeReport) -> str:
    """The report for people: one ``label  value`` line per fact."""
    rows: list[tuple[str, str]] = [("camera", report.url)]
    rows.append(("result", f"{report.outcome.value}: {report.message}"))
    if report.hint:
        rows.append(("hint", report.hint))
    if report.reachable is None:
        reach = "unknown"
    elif report.reachable:
        reach = "yes"
    else:
        reason = _reach_reason(report.unreachable_reason) or "no"
        reach = f"no ({reason.replace('_', ' ')})"
    rows.append(("reachable", reach))
    rows.append(("auth", report.auth.value))
    for i, t in enumerate(report.transports):
        rows.append(("transports" if i == 0 else "", f"{t.transport.value}: {t.status.value}"
                     f" — {t.detail}"))  # fmt: skip
    for s in report.streams:
        for i, line in enumerate(_describe_stream(s)):
            rows.append((f"stream {s.index}" if i == 0 else "", line))
    if report.measured_over is not None and report.window_seconds is not None:
        rows.append(
            ("measured", f"{report.window_seconds:.2f} s over {report.measured_over.value}")
        )
    rows.append(("exit", str(report.exit_code)))
    width = max(len(label) for label, _ in rows) + 2
    return redact("\n".join(f"{label:<{width}}{value}".rstrip() for label, value in rows))
