"""Plain values of the camera simulator: configuration, camera states, status snapshots.

Nothing here imports GStreamer, so the test helpers and the main CLI can use these types without
``gi``.

Longer than ~300 lines: every plain value of the simulator with its parsing, in one place that
tests use without GStreamer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any, TypeVar

from nvr_gstreamer.simulator.scene import Picture, SceneStatus

READY_PREFIX = "SIMULATOR READY "
"""Start of the one machine-readable line the simulator prints on stdout once it serves."""

DEFAULT_PORT = 8554
DEFAULT_CAMERAS = 4
DEFAULT_FPS = Fraction(15)
DEFAULT_BITRATE_KBPS = 1000
DEFAULT_GOP_SECONDS = 1.0
DEFAULT_PATTERN = "ball"

_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
_CAMERA_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class Codec(StrEnum):
    """Video codec a simulated camera sends."""

    H264 = "h264"
    H265 = "h265"


class AudioCodec(StrEnum):
    """Audio a simulated camera sends next to its video (a live test tone), if any."""

    NONE = "none"
    """Video only (the default)."""
    AAC = "aac"
    """AAC-LC, 16 kHz mono, RTP ``mpeg4-generic`` (RFC 3640, as most IP cameras send it)."""
    PCMA = "pcma"
    """G.711 A-law, 8 kHz mono, static payload type 8."""
    PCMU = "pcmu"
    """G.711 µ-law, 8 kHz mono, static payload type 0."""
    OPUS = "opus"
    """Opus, 48 kHz mono."""


class AllowedTransports(StrEnum):
    """RTP transports a camera accepts in SETUP; others get ``461 Unsupported transport``."""

    ANY = "any"
    """UDP and RTP over the RTSP TCP connection (interleaved), as gst-rtsp-server by default."""
    UDP = "udp"
    """Unicast UDP only: SETUP asking for TCP is refused."""
    TCP = "tcp"
    """Interleaved TCP only: SETUP asking for UDP is refused."""


class FaultMode(StrEnum):
    """The fault a simulated camera is put in through the control endpoint (``running``: none).

    What the camera does, not what a recorder makes of it (that is
    :class:`nvr_gstreamer.camera.supervisor.CameraState`)."""

    RUNNING = "running"
    """Serves RTSP requests and streams media."""
    STOPPED = "stopped"
    """Existing connections closed; new RTSP requests answered with 503 Service Unavailable."""
    FROZEN = "frozen"
    """Connections stay open, but no RTP/RTCP flows and RTSP requests go unanswered."""


class CameraAction(StrEnum):
    """What the control endpoint can do to a camera."""

    STOP = "stop"
    FREEZE = "freeze"
    RESUME = "resume"
    # The encoder restarts with a new RTP timestamp base, the connection stays open: every
    # RTP timestamp jumps (forward to a random base, or back to the original on the next one).
    RTP_JUMP = "rtp-jump"
    # Scene cameras only (see .scene): the object starts moving, stops where it is, disappears;
    # the whole picture's brightness steps to a level (``?level=`` -1..1).
    OBJECT_START = "object-start"
    OBJECT_STOP = "object-stop"
    OBJECT_REMOVE = "object-remove"
    BRIGHTNESS = "brightness"


@dataclass(frozen=True, slots=True)
class VideoSize:
    """Frame size in pixels."""

    width: int
    height: int

    def __post_init__(self) -> None:
        if not (16 <= self.width <= 7680 and 16 <= self.height <= 4320):
            raise ValueError(f"size {self} out of range 16x16..7680x4320")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"size {self} must have even width and height")

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"

    @classmethod
    def parse(cls, text: str) -> VideoSize:
        """Parse ``WIDTHxHEIGHT``, e.g. ``640x360``; raise ValueError on anything else."""
        match = _SIZE_RE.match(text)
        if match is None:
            raise ValueError(f"size must look like 640x360, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))


DEFAULT_SIZE = VideoSize(640, 360)


@dataclass(frozen=True, slots=True)
class Credentials:
    """RTSP basic-auth user and password. ``repr`` and ``str`` never show the password."""

    user: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.user or ":" in self.user:
            raise ValueError("auth user must be non-empty and contain no ':'")
        if not self.password:
            raise ValueError("auth password must be non-empty")

    def __str__(self) -> str:
        return f"{self.user}:***"

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """Parse ``USER:PASS`` (the password may contain ':'); raise ValueError otherwise."""
        user, sep, password = text.partition(":")
        if not sep:
            raise ValueError("auth must look like USER:PASS")
        return cls(user, password)


def parse_fps(text: str) -> Fraction:
    """Parse a frame rate such as ``15``, ``12.5`` or ``30000/1001``; raise ValueError otherwise."""
    try:
        fps = Fraction(text.strip()).limit_denominator(1001)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"fps must be a number like 15 or 12.5, got {text!r}") from exc
    if not (Fraction(1, 10) <= fps <= 120):
        raise ValueError(f"fps must be between 0.1 and 120, got {text!r}")
    return fps


def camera_names(count: int) -> tuple[str, ...]:
    """Names of ``count`` cameras: ``cam1`` .. ``camN``; each is also its RTSP path."""
    return tuple(f"cam{i}" for i in range(1, count + 1))


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """One camera mount: its name (the RTSP path without '/'), codec, audio, transports and
    picture."""

    name: str
    codec: Codec = Codec.H264
    audio: AudioCodec = AudioCodec.NONE
    transports: AllowedTransports = AllowedTransports.ANY
    picture: Picture = Picture.PATTERN

    def to_json(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "codec": self.codec.value,
            "audio": self.audio.value,
            "transports": self.transports.value,
        }
        if self.picture is not Picture.PATTERN:  # READY lines stay as they were without scenes
            data["picture"] = self.picture.value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CameraSpec:
        """Read :meth:`to_json` output; ``audio``, ``transports`` and ``picture`` may be
        missing (defaults)."""
        return cls(
            name=str(data["name"]),
            codec=Codec(data["codec"]),
            audio=AudioCodec(data.get("audio", AudioCodec.NONE)),
            transports=AllowedTransports(data.get("transports", AllowedTransports.ANY)),
            picture=Picture(data.get("picture", Picture.PATTERN)),
        )

    def describe(self) -> str:
        """Short human-readable form: ``h264``, ``h264 + pcma, udp only``, ``h265, scene``."""
        text = self.codec.value
        if self.audio is not AudioCodec.NONE:
            text += f" + {self.audio.value}"
        if self.transports is not AllowedTransports.ANY:
            text += f", {self.transports.value} only"
        if self.picture is Picture.SCENE:
            text += ", scene"
        elif self.picture is Picture.NOISY_SCENE:
            text += ", scene with noise"
        return text

    def __post_init__(self) -> None:
        if not _CAMERA_NAME_RE.match(self.name):
            raise ValueError(f"camera name {self.name!r} may only use letters, digits, _ . -")


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the simulator serves. Build one with :meth:`build` for the common case."""

    cameras: tuple[CameraSpec, ...]
    port: int = DEFAULT_PORT
    """RTSP port; 0 lets the OS pick one (the READY line reports the real one)."""
    control_port: int | None = None
    """HTTP control port; None means ``port + 1`` (or an OS-picked port when ``port`` is 0)."""
    address: str = "127.0.0.1"
    auth: Credentials | None = None
    auth_digest: bool = False
    """With ``auth``: Digest authentication instead of Basic, as many cameras ship."""
    fps: Fraction = DEFAULT_FPS
    size: VideoSize = DEFAULT_SIZE
    bitrate_kbps: int = DEFAULT_BITRATE_KBPS
    gop_seconds: float = DEFAULT_GOP_SECONDS
    pattern: str = DEFAULT_PATTERN
    """videotestsrc pattern nick (``ball``, ``smpte``, ...)."""
    overlay: bool = True
    """Draw a clock (needs the pango plugin, Debian package gstreamer1.0-x)."""

    def __post_init__(self) -> None:
        if not self.cameras:
            raise ValueError("at least one camera is needed")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError("camera names must be unique")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range 0..65535")
        if self.control_port is not None and not 0 <= self.control_port <= 65535:
            raise ValueError(f"control port {self.control_port} out of range 0..65535")
        if self.port and self.control_port == self.port:
            raise ValueError("control port must differ from the RTSP port")
        if not 16 <= self.bitrate_kbps <= 100_000:
            raise ValueError(f"bitrate {self.bitrate_kbps} kbit/s out of range 16..100000")
        if not 0.1 <= self.gop_seconds <= 60:
            raise ValueError(f"GOP {self.gop_seconds} s out of range 0.1..60")

    @classmethod
    def build(
        cls,
        cameras: int = DEFAULT_CAMERAS,
        *,
        codec: Codec = Codec.H264,
        camera_codecs: Mapping[str, Codec] | None = None,
        audio: AudioCodec = AudioCodec.NONE,
        camera_audio: Mapping[str, AudioCodec] | None = None,
        transports: AllowedTransports = AllowedTransports.ANY,
        camera_transports: Mapping[str, AllowedTransports] | None = None,
        picture: Picture = Picture.PATTERN,
        camera_pictures: Mapping[str, Picture] | None = None,
        **options: Any,
    ) -> SimulatorConfig:
        """``cameras`` cameras named cam1..camN.

        Every camera gets ``codec``, ``audio``, ``transports`` and ``picture`` unless the
        per-camera mapping of the same name (``camera_codecs``, ``camera_audio``,
        ``camera_transports``, ``camera_pictures``) says otherwise. A mapping naming an unknown
        camera raises ValueError.
        """
        if not 1 <= cameras <= 1024:
            raise ValueError(f"cameras must be between 1 and 1024, got {cameras}")
        names = camera_names(cameras)
        codecs = _overrides("codec", camera_codecs, names)
        audios = _overrides("audio", camera_audio, names)
        allowed = _overrides("transports", camera_transports, names)
        pictures = _overrides("picture", camera_pictures, names)
        specs = tuple(
            CameraSpec(
                name,
                codecs.get(name, codec),
                audio=audios.get(name, audio),
                transports=allowed.get(name, transports),
                picture=pictures.get(name, picture),
            )
            for name in names
        )
        return cls(cameras=specs, **options)

    @property
    def key_int_frames(self) -> int:
        """Frames between key frames (the GOP length in frames)."""
        return max(1, round(self.gop_seconds * float(self.fps)))

    @property
    def effective_control_port(self) -> int:
        """The control port to bind: explicit, ``port + 1``, or 0 (OS-picked) when ``port`` is 0."""
        if self.control_port is not None:
            return self.control_port
        return self.port + 1 if self.port else 0


_T = TypeVar("_T")


def _overrides(what: str, given: Mapping[str, _T] | None, names: Sequence[str]) -> dict[str, _T]:
    overrides = dict(given or {})
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"camera {what} given for unknown camera(s): {', '.join(unknown)}")
    return overrides


def parse_camera_option(text: str, parse: Callable[[str], _T]) -> tuple[str | None, _T]:
    """Parse ``VALUE`` (every camera: name None) or ``NAME=VALUE`` (one camera).

    ``parse`` turns the value into its type and raises ValueError for a bad one.
    """
    name, sep, value = text.partition("=")
    if not sep:
        return None, parse(text)
    if not name:
        raise ValueError(f"expected NAME=VALUE such as cam2=..., got {text!r}")
    return name, parse(value)


def parse_audio(text: str) -> AudioCodec:
    """``none``, ``aac``, ``pcma``, ``pcmu`` or ``opus`` (any case); raise ValueError otherwise."""
    try:
        return AudioCodec(text.strip().lower())
    except ValueError:
        allowed = ", ".join(a.value for a in AudioCodec)
        raise ValueError(f"audio must be one of {allowed}, got {text!r}") from None


def parse_transports(text: str) -> AllowedTransports:
    """``any``, ``udp`` or ``tcp`` (any case); raise ValueError otherwise."""
    try:
        return AllowedTransports(text.strip().lower())
    except ValueError:
        allowed = ", ".join(t.value for t in AllowedTransports)
        raise ValueError(f"transports must be one of {allowed}, got {text!r}") from None


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """Snapshot of one camera as reported by ``GET /cameras``."""

    name: str
    state: FaultMode
    codec: Codec
    clients: int
    """RTSP connections that have used this camera and are still open."""
    audio: AudioCodec = AudioCodec.NONE
    transports: AllowedTransports = AllowedTransports.ANY
    scene: SceneStatus | None = None
    """The object and brightness of a scene camera; None for a pattern camera."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "codec": self.codec.value,
            "audio": self.audio.value,
            "transports": self.transports.value,
            "clients": self.clients,
            "scene": self.scene.to_json() if self.scene is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CameraStatus:
        scene = data.get("scene")
        return cls(
            name=str(data["name"]),
            state=FaultMode(data["state"]),
            codec=Codec(data["codec"]),
            clients=int(data["clients"]),
            audio=AudioCodec(data.get("audio", AudioCodec.NONE)),
            transports=AllowedTransports(data.get("transports", AllowedTransports.ANY)),
            scene=SceneStatus.from_json(scene) if scene is not None else None,
        )


@dataclass(frozen=True, slots=True)
class ReadyInfo:
    """What the READY line announces: the bound ports, the pid and the cameras."""

    port: int
    control_port: int
    pid: int
    address: str
    cameras: tuple[CameraSpec, ...]
    auth_user: str | None = None

    def to_line(self) -> str:
        payload = {
            "port": self.port,
            "control_port": self.control_port,
            "pid": self.pid,
            "address": self.address,
            "auth_user": self.auth_user,
            "cameras": [
                {**c.to_json(), "url": f"rtsp://{self.address}:{self.port}/{c.name}"}
                for c in self.cameras
            ],
        }
        return READY_PREFIX + json.dumps(payload, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> ReadyInfo:
        """Parse a READY line; raise ValueError if ``line`` is not one."""
        if not line.startswith(READY_PREFIX):
            raise ValueError(f"not a READY line: {line!r}")
        data = json.loads(line[len(READY_PREFIX) :])
        cameras: Sequence[Mapping[str, Any]] = data["cameras"]
        return cls(
            port=int(data["port"]),
            control_port=int(data["control_port"]),
            pid=int(data["pid"]),
            address=str(data["address"]),
            auth_user=data.get("auth_user"),
            cameras=tuple(CameraSpec.from_json(c) for c in cameras),
        )
