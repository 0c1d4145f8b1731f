"""The NVR's configuration: a YAML file validated with pydantic.

Key names are a contract (users' files depend on them). Every field carries a description,
its default and its bounds; unknown keys are rejected. :func:`load_config` returns a
validated :class:`NvrConfig` or raises :class:`ConfigError` listing *every* problem, each with
the file, the key path (``cameras[2].url``) and what was expected. No password ever appears
in a problem: values are never echoed, and known secrets are masked on top.

``${NAME}`` anywhere in a string value is replaced by the environment variable ``NAME``
(the usual way to keep a camera password out of the file).

Longer than ~300 lines: the whole configuration schema in one file, as the README's reference
mirrors it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nvr_gstreamer.core.redact import redact, register_secret

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_RTSP_SCHEMES = ("rtsp", "rtsps")

CameraId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$"),
    Field(
        description="Unique slug: lower-case letters, digits, '-' and '_', at most 63 characters. "
        "Used in file names, the API and metrics.",
        examples=["front-door"],
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RemoteStorageConfig(_Strict):
    endpoint: str = Field(
        pattern=r"^https?://",
        description="S3-compatible endpoint, http(s)://host:port (AWS, MinIO, SeaweedFS, ...).",
    )
    bucket: str = Field(min_length=3, max_length=63, description="The bucket of the segments.")
    region: str = Field(default="us-east-1", description="The bucket's region.")
    access_key: SecretStr = Field(description="Access key id. May be ${ENV_VAR}.")
    secret_key: SecretStr = Field(description="Secret access key. May be ${ENV_VAR}.")
    prefix: str = Field(
        default="", max_length=200, description="Prepended to every object key (e.g. site-a/)."
    )
    spool_max_gb: float = Field(
        default=20.0,
        gt=0,
        description="Segments waiting for upload beyond this size: the state says so "
        "(recording goes on; local retention still applies).",
    )


class StorageConfig(_Strict):
    path: Path = Field(
        default=Path("recordings"),
        description="Root folder of the recordings (relative paths are taken from the config "
        "file's folder). Segments go to <path>/<camera>/<YYYYMMDD>/.",
    )
    segment_seconds: int = Field(
        default=60, ge=2, le=3600, description="Length of one segment file, cut at keyframes."
    )
    retention_days: int = Field(
        default=30,
        ge=0,
        le=36500,
        description="Delete segments older than this many days; 0 keeps them until space runs out.",
    )
    min_free_percent: float = Field(
        default=10.0,
        ge=0.0,
        le=90.0,
        description="Keep at least this share of the storage volume free, deleting the oldest "
        "segments first.",
    )
    pre_record_seconds: int = Field(
        default=0,
        ge=0,
        le=60,
        description="When recording starts, include this many seconds of video from before.",
    )
    remote: RemoteStorageConfig | None = Field(
        default=None,
        description="Upload each closed segment to S3-compatible object storage, verify it, "
        "then remove the local file; while it is unreachable, segments wait locally.",
    )
    events_retention_days: int = Field(
        default=0,
        ge=0,
        le=36500,
        description="Keep the segments of motion events this many days (longer than "
        "retention_days); 0 = as retention_days.",
    )

    @model_validator(mode="after")
    def _events_kept_longer(self) -> StorageConfig:
        days, events = self.retention_days, self.events_retention_days
        if events and (days == 0 or events < days):
            raise ValueError(
                f"events_retention_days ({events}) must be at least retention_days ({days}) "
                "and retention_days must not be 0 (footage is then kept until space runs out)"
            )
        return self


class CatalogConfig(_Strict):
    url: SecretStr | None = Field(
        default=None,
        description="Where the catalog of recordings lives. Empty: an SQLite file in "
        "storage.path (catalog.sqlite3), nothing to run. postgresql://user:password@host:port/db: "
        "a PostgreSQL database, which several recorder nodes can share. May be ${ENV_VAR}.",
    )

    @field_validator("url")
    @classmethod
    def _postgresql(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError(
                "expected a postgresql:// URL (with user, password, host, port and database)"
            )
        return url


class ClusterConfig(_Strict):
    node_id: CameraId = Field(
        description="This recorder node's name, unique in the cluster (letters, digits, - _)."
    )
    capacity: int = Field(
        default=16, ge=1, le=1000, description="The most cameras this node records at once."
    )
    site: str | None = Field(
        default=None,
        max_length=100,
        description="The node's site: it records cameras of this site and cameras without "
        "one. Empty: any camera.",
    )
    lease_seconds: float = Field(
        default=8.0,
        ge=2.0,
        le=300.0,
        description="How long a node's claim on a camera lasts without renewal (renewed every "
        "quarter of it). A lost node's cameras move after at most this long.",
    )
    api_url: str | None = Field(
        default=None,
        description="How other nodes and users reach this node's API (shown by nvr cluster "
        "status and /api/cluster); default http://<api.host>:<api.port>.",
    )


class ReconnectConfig(_Strict):
    initial_delay_seconds: float = Field(
        default=5.0, gt=0.0, le=3600.0, description="First wait before reconnecting a lost camera."
    )
    max_delay_seconds: float = Field(
        default=60.0, gt=0.0, le=3600.0, description="Cap of the doubling reconnect wait."
    )
    max_retries: int = Field(
        default=0, ge=0, description="Give up after this many failed attempts; 0 = never give up."
    )
    stall_timeout_seconds: float = Field(
        default=5.0,
        ge=0.5,
        le=300.0,
        description="No video for this long while streaming counts as a lost camera.",
    )
    probe_interval_seconds: float = Field(
        default=0.25,
        ge=0.1,
        le=60.0,
        description=(
            "While waiting to reconnect, check this often whether the camera is back "
            "(for the first probe_slow_after_seconds of an outage)."
        ),
    )
    probe_slow_interval_seconds: float = Field(
        default=1.0,
        ge=0.1,
        le=60.0,
        description="The probe interval once an outage is older than probe_slow_after_seconds.",
    )
    probe_slow_after_seconds: float = Field(
        default=600.0,
        ge=0.0,
        le=86400.0,
        description="Probe every probe_interval_seconds for this long into an outage, then slower.",
    )

    @model_validator(mode="after")
    def _cap_not_below_initial(self) -> ReconnectConfig:
        if self.max_delay_seconds < self.initial_delay_seconds:
            raise ValueError(
                "max_delay_seconds must be at least initial_delay_seconds "
                f"({self.initial_delay_seconds:g})"
            )
        return self


class ApiConfig(_Strict):
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address the HTTP API binds to. Any address other than loopback "
        "requires a token.",
    )
    port: int = Field(
        default=8080, ge=0, le=65535, description="TCP port of the HTTP API (0 = any free port)."
    )
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token required on every endpoint but health. May be ${ENV_VAR}.",
    )
    live_viewer_timeout_seconds: float = Field(
        default=10.0,
        ge=1.0,
        le=600.0,
        description="A live viewer whose network goes silent (a laptop closed, Wi-Fi lost) is "
        "dropped after this long, and its camera stops sending to it.",
    )


Point = tuple[float, float]


class MotionConfig(_Strict):
    enabled: bool = Field(default=False, description="Detect motion on this camera.")
    fps: float = Field(
        default=5.0, ge=1.0, le=15.0, description="Frames a second looked at (decoded at low size)."
    )
    threshold: int = Field(
        default=25,
        ge=1,
        le=255,
        description="How much a pixel's brightness must differ from the slowly updated average "
        "picture (after contrast normalisation) to count as changed.",
    )
    min_area: float = Field(
        default=0.002,
        gt=0.0,
        le=0.5,
        description="Smallest changed region that is motion, as a share of the picture "
        "(0.002 = 0.2 %).",
    )
    masks: list[list[Point]] = Field(
        default_factory=list,
        description="Areas never looked at: polygons of at least 3 [x, y] points in relative "
        "coordinates (0..1, from the top left), e.g. [[0, 0], [1, 0], [1, 0.1], [0, 0.1]] for "
        "a timestamp bar.",
    )
    off_delay_seconds: float = Field(
        default=5.0, ge=0.5, le=600.0, description="An event ends after this long without motion."
    )
    max_event_seconds: float = Field(
        default=300.0,
        ge=10.0,
        le=3600.0,
        description="The longest one event lasts; motion that goes on starts the next event.",
    )
    post_record_seconds: float = Field(
        default=5.0,
        ge=0.0,
        le=600.0,
        description="record_mode events: keep recording this long after an event ends.",
    )

    @field_validator("masks")
    @classmethod
    def _polygons(cls, masks: list[list[Point]]) -> list[list[Point]]:
        for i, polygon in enumerate(masks):
            if len(polygon) < 3:
                raise ValueError(f"masks[{i}]: expected at least 3 [x, y] points")
            for x, y in polygon:
                if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    raise ValueError(
                        f"masks[{i}]: expected relative coordinates from 0 to 1, "
                        f"got [{x:g}, {y:g}]"
                    )
        return masks


def _check_rtsp_url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in _RTSP_SCHEMES:
        raise ValueError("expected an rtsp:// or rtsps:// URL")
    if not parts.hostname:
        raise ValueError("expected a host: rtsp://host[:port]/path")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("expected a port number from 1 to 65535") from None
    return value


class CameraConfig(_Strict):
    id: CameraId
    name: str = Field(default="", description="Display name; the id when empty.", max_length=100)
    # username and password come before the URLs: their validators read them.
    username: str | None = Field(default=None, description="RTSP user name.")
    password: SecretStr | None = Field(
        default=None, description="RTSP password; write ${ENV_VAR} to take it from the environment."
    )
    url: str = Field(description="Main stream, recorded: rtsp://host[:port]/path or rtsps://.")
    live_url: str | None = Field(
        default=None, description="Optional sub-stream used for live viewing (same credentials)."
    )
    site: str | None = Field(
        default=None,
        max_length=100,
        description="Cluster mode: only nodes of this site record the camera (empty: any).",
    )
    record: bool = Field(default=True, description="Record continuously from start-up.")
    enabled: bool = Field(default=True, description="A disabled camera is not connected at all.")
    transport: Literal["auto", "tcp", "udp"] = Field(
        default="auto",
        description=(
            "RTP transport: auto (TCP first, UDP for a camera that refuses TCP; what worked is "
            "remembered), tcp (interleaved, robust) or udp."
        ),
    )
    motion: MotionConfig = Field(
        default_factory=MotionConfig, description="Motion detection and events."
    )
    record_mode: Literal["continuous", "events"] = Field(
        default="continuous",
        description="continuous: record all the time (while recording is on). events: record "
        "only around motion events (storage.pre_record_seconds before, "
        "motion.post_record_seconds after); needs motion.enabled.",
    )
    rtp_jitterbuffer: Literal["auto", "stamp", "always"] = Field(
        default="auto",
        description=(
            "How a camera is received. auto: over TCP (in order, nothing lost) by the "
            "project's own source (nvrrtspsrc: the stream read in large chunks and depayloaded "
            "on one thread, the least CPU); over UDP by rtspsrc, whose jitterbuffer reorders "
            "and counts losses. stamp: over TCP rtspsrc with packets stamped in place instead "
            "of the jitterbuffer. always: rtspsrc with the jitterbuffer on every transport "
            "(the old path)."
        ),
    )

    @field_validator("url", "live_url")
    @classmethod
    def _valid_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        key = info.field_name or "url"
        _check_rtsp_url(value, key)
        parts = urlsplit(value)
        has_fields = bool(info.data.get("username") or info.data.get("password"))
        if (parts.username or parts.password) and has_fields:
            raise ValueError(
                f"credentials are embedded in {key} and also given as username/password; "
                "keep them in username/password only"
            )
        return value

    @model_validator(mode="after")
    def _password_needs_user(self) -> CameraConfig:
        if self.password is not None and not self.username:
            raise ValueError("password is set but username is not")
        return self

    @model_validator(mode="after")
    def _events_need_motion(self) -> CameraConfig:
        if self.record_mode == "events" and not self.motion.enabled:
            raise ValueError("record_mode is events but motion.enabled is false")
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) for the RTSP source, from the fields or from the URL."""
        if self.username:
            pw = self.password.get_secret_value() if self.password else ""
            return self.username, pw
        parts = urlsplit(self.url)
        if parts.username:
            return parts.username, parts.password or ""
        return None

    def live_credentials(self) -> tuple[str, str] | None:
        """Credentials for ``live_url``: its own, else the camera's."""
        if self.live_url and not self.username:
            parts = urlsplit(self.live_url)
            if parts.username:
                return parts.username, parts.password or ""
        return self.credentials()


class ServiceConfig(_Strict):
    loop_timeout_seconds: float = Field(
        default=10.0,
        ge=3.0,
        le=600.0,
        description="A loop of the program (the GStreamer loop, a camera's tick, the storage "
        "worker, the API server) that has not turned for this long makes the service unhealthy: "
        "/api/health says degraded, and systemd's watchdog is no longer pinged (the service is "
        "restarted).",
    )


class ExportsConfig(_Strict):
    folder: str = Field(
        default="exports",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$",
        description="Folder of exported MP4 files, inside the storage root (a plain name: "
        "letters, digits, '.', '-', '_'; not a camera id). One sub-folder per export job.",
    )
    keep_hours: float = Field(
        default=24.0,
        ge=0.1,
        le=8760.0,
        description="Remove a finished export (its files too) this many hours after it ended.",
    )
    max_minutes: int = Field(
        default=24 * 60,
        ge=1,
        le=7 * 24 * 60,
        description="The longest range one export may cover, in minutes.",
    )


class MqttConfig(_Strict):
    host: str = Field(min_length=1, description="MQTT broker's host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="MQTT broker's TCP port.")
    username: str | None = Field(default=None, description="MQTT user name.")
    password: SecretStr | None = Field(
        default=None, description="MQTT password; may be ${ENV_VAR}."
    )
    topic_prefix: str = Field(
        default="nvr",
        pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_/-]{0,62}$",
        description="Every topic starts with this (letters, digits, '_', '-', '/').",
    )
    client_id: str = Field(
        default="nvr", pattern=r"^[A-Za-z0-9_-]{1,23}$", description="MQTT client id."
    )
    discovery: bool = Field(
        default=True, description="Publish Home Assistant MQTT discovery (cameras appear there)."
    )
    discovery_prefix: str = Field(
        default="homeassistant",
        pattern=r"^[A-Za-z0-9_-]{1,63}$",
        description="Home Assistant's discovery prefix.",
    )


class NvrConfig(_Strict):
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Recordings.")
    catalog: CatalogConfig = Field(
        default_factory=CatalogConfig, description="The catalog (index) of the recordings."
    )
    reconnect: ReconnectConfig = Field(
        default_factory=ReconnectConfig, description="Reconnecting lost cameras."
    )
    api: ApiConfig = Field(default_factory=ApiConfig, description="HTTP API and metrics.")
    service: ServiceConfig = Field(
        default_factory=ServiceConfig, description="Liveness of the running service."
    )
    exports: ExportsConfig = Field(
        default_factory=ExportsConfig, description="MP4 exports made through the HTTP API."
    )
    cluster: ClusterConfig | None = Field(
        default=None,
        description="Recorder node of a cluster: nodes share catalog.url (PostgreSQL) and "
        "each camera is recorded by one node at a time, moved when its node is lost.",
    )
    mqtt: MqttConfig | None = Field(
        default=None, description="Publish to an MQTT broker (and Home Assistant)."
    )
    cameras: list[CameraConfig] = Field(min_length=1, description="The cameras to record.")

    @model_validator(mode="after")
    def _exports_folder_is_free(self) -> NvrConfig:
        folder = self.exports.folder
        if self.camera(folder) is not None:
            raise ValueError(
                f"exports.folder {folder!r} is also a camera id: the camera's recordings live "
                "in that folder; choose another name"
            )
        if folder.startswith("catalog.sqlite3"):
            raise ValueError(f"exports.folder {folder!r} is the name of the catalog's files")
        if self.cluster is not None and self.catalog.url is None:
            raise ValueError("cluster needs catalog.url: the nodes share one PostgreSQL catalog")
        return self

    def camera(self, camera_id: str) -> CameraConfig | None:
        return next((c for c in self.cameras if c.id == camera_id), None)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    key: str
    message: str

    def render(self, source: str) -> str:
        where = f"{source}: {self.key}: " if self.key else f"{source}: "
        return redact(where + self.message)


class ConfigError(Exception):
    """The config cannot be used; ``problems`` lists every reason found."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.render(source) for p in problems))


def _key_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} given twice (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)  # type: ignore[no-untyped-call]


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def _expand_env(
    value: Any, loc: tuple[str | int, ...], env: dict[str, str], problems: list[ConfigProblem]
) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, (*loc, str(k)), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*loc, i), env, problems) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                problems.append(
                    ConfigProblem(_key_path(loc), f"environment variable {name} is not set")
                )
                return ""
            return env[name]

        return _ENV_REF.sub(sub, value)
    return value


def _duplicate_ids(raw: dict[str, Any]) -> list[ConfigProblem]:
    cameras = raw.get("cameras")
    if not isinstance(cameras, list):
        return []
    first: dict[str, int] = {}
    problems = []
    for i, cam in enumerate(cameras):
        cam_id = cam.get("id") if isinstance(cam, dict) else None
        if not isinstance(cam_id, str):
            continue
        if cam_id in first:
            problems.append(
                ConfigProblem(
                    f"cameras[{i}].id",
                    f"duplicate camera id {cam_id!r} (also cameras[{first[cam_id]}].id); "
                    "ids must be unique",
                )
            )
        else:
            first[cam_id] = i
    return problems


def _register_secrets(raw: dict[str, Any]) -> None:
    cameras = raw.get("cameras")
    for cam in cameras if isinstance(cameras, list) else []:
        if isinstance(cam, dict):
            pw = cam.get("password")
            if isinstance(pw, str | int):
                register_secret(str(pw))
                # RTSP Basic auth sends base64("user:password"): GStreamer's debug log shows it.
                user = str(cam.get("username") or "")
                register_secret(base64.b64encode(f"{user}:{pw}".encode()).decode())
            for key in ("url", "live_url"):
                url = cam.get(key)
                if isinstance(url, str):
                    with contextlib.suppress(ValueError):
                        register_secret(urlsplit(url).password)
    api = raw.get("api")
    if isinstance(api, dict) and isinstance(api.get("token"), str):
        register_secret(api["token"])
    storage = raw.get("storage")
    remote = storage.get("remote") if isinstance(storage, dict) else None
    if isinstance(remote, dict) and isinstance(remote.get("secret_key"), str):
        register_secret(remote["secret_key"])
    catalog = raw.get("catalog")
    if isinstance(catalog, dict) and isinstance(catalog.get("url"), str):
        with contextlib.suppress(ValueError):
            register_secret(urlsplit(catalog["url"]).password)
    mqtt = raw.get("mqtt")
    if isinstance(mqtt, dict) and isinstance(mqtt.get("password"), str | int):
        register_secret(str(mqtt["password"]))


_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _field_at(loc: tuple[str | int, ...]) -> Any:
    """The pydantic FieldInfo a location points at, or None."""
    model: type[BaseModel] = NvrConfig
    info: Any = None
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        elif part == "cameras":
            model = CameraConfig
        elif part == "mqtt":
            model = MqttConfig
    return info


def _bounds_message(loc: tuple[str | int, ...]) -> str | None:
    info = _field_at(loc)
    if info is None:
        return None
    low = high = None
    low_incl = high_incl = True
    for m in info.metadata:
        if getattr(m, "ge", None) is not None:
            low = m.ge
        if getattr(m, "gt", None) is not None:
            low, low_incl = m.gt, False
        if getattr(m, "le", None) is not None:
            high = m.le
        if getattr(m, "lt", None) is not None:
            high, high_incl = m.lt, False
    if low is not None and high is not None and low_incl and high_incl:
        return f"expected a number from {low:g} to {high:g}"
    parts = []
    if low is not None:
        parts.append(f"{'at least' if low_incl else 'more than'} {low:g}")
    if high is not None:
        parts.append(f"{'at most' if high_incl else 'less than'} {high:g}")
    return "expected a number " + " and ".join(parts) if parts else None


_PATTERN_MESSAGES: dict[tuple[str | int, ...], str] = {
    ("mqtt", "topic_prefix"): "expected a topic prefix: letters, digits, '_', '-' and '/' "
    "(no wildcards, at most 63)",
    ("mqtt", "client_id"): "expected a client id: letters, digits, '_' and '-' (1 to 23)",
    ("mqtt", "discovery_prefix"): "expected letters, digits, '_' and '-' (at most 63)",
}


def _pydantic_problems(exc: ValidationError) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = tuple(err["loc"])
        msg = err["msg"]
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = "unknown key"
        elif kind == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        elif kind == "too_short":
            n = (err.get("ctx") or {}).get("min_length", 1)
            msg = f"expected at least {n} entr{'y' if n == 1 else 'ies'}"
        elif kind in _BOUND_ERRORS:
            msg = _bounds_message(loc) or msg
        elif kind == "string_pattern_mismatch" and loc and loc[-1] == "id":
            msg = "expected a slug: lower-case letters, digits, '-' and '_' (at most 63)"
        elif kind == "string_pattern_mismatch" and loc == ("exports", "folder"):
            msg = "expected a folder name: letters, digits, '.', '-' and '_' (at most 63)"
        elif kind == "string_pattern_mismatch" and loc in _PATTERN_MESSAGES:
            msg = _PATTERN_MESSAGES[loc]
        elif kind == "string_too_short":
            msg = "expected a non-empty value"
        else:
            msg = "expected " + msg[0].lower() + msg[1:] if msg.startswith("Input should") else msg
            msg = msg.replace("expected input should be", "expected")
        problems.append(ConfigProblem(_key_path(loc), msg))
    return problems


def _allowed_keys_hint(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    """Add the allowed keys to 'unknown key' problems: the fix is usually a typo."""
    models: dict[str, type[BaseModel]] = {
        "": NvrConfig,
        "storage": StorageConfig,
        "reconnect": ReconnectConfig,
        "api": ApiConfig,
        "service": ServiceConfig,
        "exports": ExportsConfig,
        "mqtt": MqttConfig,
    }
    out = []
    for p in problems:
        if p.message == "unknown key":
            parent = p.key.rsplit(".", 1)[0] if "." in p.key else ""
            if re.fullmatch(r"cameras\[\d+\]", parent):
                model: type[BaseModel] | None = CameraConfig
            elif re.fullmatch(r"cameras\[\d+\]\.motion", parent):
                model = MotionConfig
            else:
                model = models.get(parent)
            if model is not None:
                allowed = ", ".join(model.model_fields)
                p = ConfigProblem(p.key, f"unknown key (allowed here: {allowed})")
        out.append(p)
    return out


def parse_config(text: str, source: str, base_dir: Path, env: dict[str, str]) -> NvrConfig:
    """Validate config text; relative storage paths are taken from ``base_dir``."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = exc.problem or str(exc)
        raise ConfigError(source, [ConfigProblem("", f"invalid YAML at {line}{what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [ConfigProblem("", f"invalid YAML: {exc}")]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        expected = "expected a mapping with keys storage, reconnect, api, cameras"
        raise ConfigError(source, [ConfigProblem("", expected)])
    problems: list[ConfigProblem] = []
    raw = _expand_env(raw, (), env, problems)
    _register_secrets(raw)
    problems += _duplicate_ids(raw)
    config: NvrConfig | None = None
    try:
        config = NvrConfig.model_validate(raw)
    except ValidationError as exc:
        problems += _allowed_keys_hint(_pydantic_problems(exc))
    if problems or config is None:
        raise ConfigError(source, sorted(problems, key=lambda p: p.key))
    if not config.storage.path.is_absolute():
        storage = config.storage.model_copy(update={"path": (base_dir / config.storage.path)})
        config = config.model_copy(update={"storage": storage})
    return config


def load_config(path: Path, env: dict[str, str] | None = None) -> NvrConfig:
    """Read and validate a config file; :class:`ConfigError` names every problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(source, [ConfigProblem("", f"cannot read the file: {reason}")]) from None
    return parse_config(
        text, source, path.resolve().parent, dict(os.environ) if env is None else env
    )
