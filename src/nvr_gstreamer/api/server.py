"""HTTP API and Prometheus metrics (FastAPI on uvicorn), served from its own thread.

Paths are a contract: ``/api/health``, ``/api/cameras``, ``/api/cameras/{id}``,
``/api/cameras/{id}/recording/start|stop``, ``/api/recordings``, ``/api/recordings/{id}/file``,
``/api/timeline``, ``/metrics``. Inputs are validated (bad dates: 422); a file is served only
by catalog id and only if it resolves inside the storage root. With a token configured, every
endpoint but health requires ``Authorization: Bearer <token>``.

Longer than ~300 lines: the response models, the routes and the metrics collector of one HTTP
surface; the routes will move to their own modules as the web app grows.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

import psycopg
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import BaseModel

from nvr_gstreamer.api.events import add_events
from nvr_gstreamer.api.exports import add_exports
from nvr_gstreamer.api.live_socket import LiveViewers
from nvr_gstreamer.api.object_file import object_response
from nvr_gstreamer.api.recordings import add_recordings
from nvr_gstreamer.api.timeline import add_timeline
from nvr_gstreamer.api.web import Access, Sessions, add_web
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.camera.status import CameraStatus
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.cluster.status import cluster_status
from nvr_gstreamer.core.redact import redact
from nvr_gstreamer.storage.catalog import SegmentRow
from nvr_gstreamer.storage.layout import is_segment_path
from nvr_gstreamer.storage.timeline import day_bounds

logger = logging.getLogger(__name__)

CAMERA_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"
API_BEAT_S = 1  # the server's event loop beats "api" this often


@dataclass(frozen=True, slots=True)
class Confirm:
    """How long a recording switch waits for the engine's confirmation before answering 504:
    a start, for its session; a stop, for the last file to be final."""

    start_s: float = 5.0
    stop_s: float = 15.0


CameraQuery = Annotated[str, Query(pattern=CAMERA_ID)]


class ApiError(Exception):
    """The API cannot start (bad access settings, port in use)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---- response models ---------------------------------------------------------------------


class ErrorOut(BaseModel):
    kind: str
    message: str


class CameraOut(BaseModel):
    id: str
    name: str
    state: str
    since: datetime
    reason: str
    recording: bool
    recording_wanted: bool
    storage_state: str  # ok | unavailable | full | none (no storage configured)
    stalled: bool  # down because its video stopped while connected
    current_segment: str | None
    last_error: ErrorOut | None
    reconnect_attempt: int
    next_retry_in_s: float | None
    fps: float
    bitrate_bps: float
    frames: int
    bytes: int
    codec: str | None
    audio_codec: str | None
    transport: str
    receive_path: str | None  # stamp (TCP, in place) | jitterbuffer
    rtp_packets_lost: int
    rtp_packets_late: int
    motion: bool | None  # a motion event goes on; None: motion detection is off
    recorded_by: str | None = None  # cluster mode: the other node that records it now


class SegmentOut(BaseModel):
    id: int
    camera: str
    path: str
    start: datetime
    end: datetime | None
    duration_s: float | None
    size_bytes: int | None
    frames: int | None
    status: str


class GapOut(BaseModel):
    start: datetime
    end: datetime
    reason: str


class SpanOut(BaseModel):
    start: datetime
    end: datetime


class TimelineOut(BaseModel):
    """``footage`` and ``gaps`` partition the day up to now: every instant is in exactly one
    of them (holes shorter than 2 s between files count as footage)."""

    camera: str
    date: date
    start: datetime
    end: datetime
    segments: list[SegmentOut]
    footage: list[SpanOut]
    gaps: list[GapOut]


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def camera_out(s: CameraStatus, recorded_by: str | None = None) -> CameraOut:
    err = None
    if s.last_error_kind is not None:
        err = ErrorOut(kind=s.last_error_kind.value, message=s.last_error_message or "")
    return CameraOut(
        id=s.camera_id,
        name=s.name,
        state=s.state.value,
        since=s.since,
        reason=s.reason,
        recording=s.recording,
        recording_wanted=s.recording_wanted,
        storage_state=s.storage_state.value if s.storage_state is not None else "none",
        stalled=s.stalled,
        current_segment=s.current_segment,
        last_error=err,
        reconnect_attempt=s.reconnect_attempt,
        next_retry_in_s=round(s.next_retry_in_s, 2) if s.next_retry_in_s is not None else None,
        fps=round(s.fps, 2),
        bitrate_bps=round(s.bitrate_bps),
        frames=s.frames,
        bytes=s.bytes,
        codec=s.codec,
        audio_codec=s.audio_codec,
        transport=s.transport,
        receive_path=s.receive_path,
        rtp_packets_lost=s.rtp_packets_lost,
        rtp_packets_late=s.rtp_packets_late,
        motion=s.motion,
        recorded_by=recorded_by,
    )


def segment_out(r: SegmentRow) -> SegmentOut:
    return SegmentOut(
        id=r.id,
        camera=r.camera,
        path=r.path,
        start=_utc(r.start_utc),
        end=_utc(r.end_utc) if r.end_utc is not None else None,
        duration_s=r.duration_s,
        size_bytes=r.size_bytes,
        frames=r.frames,
        status=r.status.value,
    )


# ---- metrics -----------------------------------------------------------------------------


class NvrCollector:
    """Reads the engine's and storage's snapshots at scrape time."""

    def __init__(self, app: NvrApp, live_viewers: LiveViewers) -> None:
        self._app = app
        self._live_viewers = live_viewers

    def collect(self) -> Any:
        statuses = self._app.engine.statuses()
        state = GaugeMetricFamily(
            "nvr_camera_state", "1 for the camera's current state", labels=["camera", "state"]
        )
        recording = GaugeMetricFamily(
            "nvr_camera_recording", "1 while recording", labels=["camera"]
        )
        frames = CounterMetricFamily(
            "nvr_camera_frames", "video frames received", labels=["camera"]
        )
        nbytes = CounterMetricFamily("nvr_camera_bytes", "video bytes received", labels=["camera"])
        disconnects = CounterMetricFamily(
            "nvr_camera_disconnects", "outages of a streaming camera", labels=["camera"]
        )
        attempts = CounterMetricFamily(
            "nvr_camera_reconnect_attempts", "reconnect attempts", labels=["camera"]
        )
        stalls = CounterMetricFamily("nvr_camera_stalls", "stalls detected", labels=["camera"])
        rtp_lost = CounterMetricFamily(
            "nvr_camera_rtp_packets_lost", "RTP packets lost (UDP)", labels=["camera"]
        )
        rtp_late = CounterMetricFamily(
            "nvr_camera_rtp_packets_late",
            "RTP packets reordered beyond the jitter buffer (UDP)",
            labels=["camera"],
        )
        errors = CounterMetricFamily(
            "nvr_camera_errors", "errors by kind", labels=["camera", "kind"]
        )
        for cid, s in statuses.items():
            for st in CameraState:
                state.add_metric([cid, st.value], 1.0 if s.state is st else 0.0)
            recording.add_metric([cid], 1.0 if s.recording else 0.0)
            frames.add_metric([cid], s.frames)
            nbytes.add_metric([cid], s.bytes)
            disconnects.add_metric([cid], s.disconnects)
            attempts.add_metric([cid], s.reconnect_attempts)
            stalls.add_metric([cid], s.stalls)
            rtp_lost.add_metric([cid], s.rtp_packets_lost)
            rtp_late.add_metric([cid], s.rtp_packets_late)
            for kind in ErrorKind:
                errors.add_metric([cid, kind.value], s.error_count(kind))
        yield from (state, recording, frames, nbytes, disconnects, attempts, stalls, errors)
        yield from (rtp_lost, rtp_late)
        viewers = GaugeMetricFamily(
            "nvr_web_live_viewers",
            "browsers watching a camera live over MSE, by how the video reaches them (socket: "
            "written by the live sink in C; pass_through: relayed by the web server)",
            labels=["camera", "via"],
        )
        for (cid, via), n in sorted(self._live_viewers.counts().items()):
            viewers.add_metric([cid, via], n)
        yield viewers
        node = GaugeMetricFamily(
            "nvr_node_info", "this recorder: its node id in a cluster (- alone)", labels=["node"]
        )
        node.add_metric([self._app.storage.catalog.node or "-"], 1.0)
        yield node
        storage = self._app.storage
        check = storage.state
        free = GaugeMetricFamily("nvr_storage_free_bytes", "free bytes on the storage volume")
        free.add_metric([], check.usage.free_bytes if check.usage else 0)
        yield free
        ok = GaugeMetricFamily("nvr_storage_available", "1 when recordings can be written")
        ok.add_metric([], 1.0 if check.state.value == "ok" else 0.0)
        yield ok
        counters = storage.counters
        written = CounterMetricFamily("nvr_segments_written", "segments closed and catalogued")
        written.add_metric([], counters.segments_written)
        yield written
        deleted = CounterMetricFamily("nvr_retention_deletions", "segments deleted by retention")
        deleted.add_metric([], counters.retention_deletions)
        yield deleted
        catalog = storage.catalog_health
        pending = GaugeMetricFamily(
            "nvr_catalog_pending_writes",
            "catalog writes waiting for the database (or the volume) to be back",
            labels=["backend"],
        )
        pending.add_metric([catalog.backend], catalog.pending_writes)
        yield pending
        refused = CounterMetricFamily(
            "nvr_catalog_refused_writes",
            "catalog writes refused because the camera's lease had moved to another node",
        )
        refused.add_metric([], storage.refused_writes)
        yield refused
        remote = storage.remote_health
        if remote is not None:
            waiting = GaugeMetricFamily(
                "nvr_remote_waiting_bytes", "bytes of segments waiting for upload (the spool)"
            )
            waiting.add_metric([], remote.waiting_bytes)
            yield waiting
            uploaded = CounterMetricFamily(
                "nvr_remote_uploaded_segments", "segments uploaded and verified since start"
            )
            uploaded.add_metric([], remote.uploaded)
            yield uploaded
        loops = GaugeMetricFamily(
            "nvr_loop_heartbeat_age_seconds",
            "seconds since each loop of the program last turned",
            labels=["loop"],
        )
        for name, age in self._app.heartbeats.ages().items():
            loops.add_metric([name], round(age, 3))
        yield loops


# ---- the application ---------------------------------------------------------------------


def build_api(app: NvrApp, token: str | None, confirm: Confirm | None = None) -> FastAPI:
    waits = confirm or Confirm()
    api = FastAPI(
        title="nvr_gstreamer",
        description="Network video recorder: cameras, recording, recordings, timeline, metrics.",
        version="1",
    )
    registry = CollectorRegistry(auto_describe=False)
    live_viewers = LiveViewers()
    registry.register(NvrCollector(app, live_viewers))  # type: ignore[arg-type]

    @api.exception_handler(sqlite3.Error)
    @api.exception_handler(psycopg.Error)
    def catalog_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        # The catalog's database is down or its volume gone: say so, never a bare 500.
        return JSONResponse(
            {"detail": f"the catalog is unavailable now: {redact(str(exc))}"}, status_code=503
        )

    access = Access(token, Sessions())
    auth = [Depends(access.check)]

    def out(s: CameraStatus) -> CameraOut:
        cluster = app.cluster
        return camera_out(s, cluster.recorded_elsewhere(s.camera_id) if cluster else None)

    add_web(api, app, access, lambda s: out(s).model_dump(mode="json"), live_viewers)
    add_exports(api, app, auth)
    add_timeline(api, app, auth)
    add_events(api, app, auth)

    def status_of(camera_id: str) -> CameraStatus:
        statuses = app.engine.statuses()
        if camera_id not in statuses:
            raise HTTPException(404, f"no camera {camera_id!r}")
        return statuses[camera_id]

    add_recordings(api, app, auth, status_of)

    def confirmed(
        camera_id: str, predicate: Callable[[CameraStatus], bool], timeout_s: float, what: str
    ) -> CameraOut:
        """The status once the engine confirms; 504 with the status as it is otherwise."""
        ok, s = app.engine.wait_status(camera_id, predicate, timeout_s)
        if not ok:
            raise HTTPException(
                504,
                {
                    "message": f"the engine did not confirm {what} within {timeout_s:g} s",
                    "camera": out(s).model_dump(mode="json"),
                },
            )
        return out(s)

    @api.get("/api/health")
    def health() -> dict[str, Any]:
        statuses = app.engine.statuses()
        bad = [
            c
            for c, s in statuses.items()
            if s.state not in (CameraState.STREAMING, CameraState.DISABLED)
        ]
        storage_state = app.storage.state.state.value
        ages = app.heartbeats.ages()
        timeout = app.config.service.loop_timeout_seconds
        stuck = [name for name, age in ages.items() if age >= timeout]
        catalog = app.storage.catalog_health
        remote = app.storage.remote_health
        healthy = not bad and storage_state == "ok" and not stuck and catalog.error is None
        healthy = healthy and (remote is None or remote.state.value == "ok")
        extra: dict[str, Any] = {}
        if remote is not None:
            # Segments not yet in object storage wait on the local disk (the spool).
            extra["remote"] = {
                "state": remote.state.value,
                "reason": remote.reason,
                "waiting_segments": remote.waiting,
                "waiting_bytes": remote.waiting_bytes,
                "uploaded": remote.uploaded,
            }
        if app.cluster is not None:
            extra["cluster"] = {
                "node": app.cluster.settings.node_id,
                "cameras": sorted(app.cluster.held()),
                "database": app.cluster.trouble or "ok",
            }
        return {
            "status": "ok" if healthy else "degraded",
            "cameras": {c: s.state.value for c, s in statuses.items()},
            "storage": {"state": storage_state, "reason": app.storage.state.reason},
            # Writes that failed (database unreachable, disk gone) wait here, in order.
            "catalog": {
                "backend": catalog.backend,
                "state": "ok" if catalog.error is None else "unreachable",
                "reason": catalog.error,
                "pending_writes": catalog.pending_writes,
            },
            # Seconds since each loop last turned; one older than the timeout is stuck.
            "loops": {name: round(age, 2) for name, age in ages.items()},
            "stuck_loops": stuck,
            **extra,
        }

    @api.get("/api/cluster", dependencies=auth)
    def cluster() -> dict[str, Any]:
        if app.cluster is None:
            raise HTTPException(404, "not a cluster node (config: cluster)")
        lease_s = app.cluster.settings.lease_s
        with app.storage.catalog.transaction() as db:
            status = cluster_status(db, lease_s)
        return {
            "node": app.cluster.settings.node_id,
            "database": app.cluster.trouble or "ok",
            "nodes": [asdict(n) for n in status.nodes],
            "cameras": [asdict(c) for c in status.leases],
        }

    @api.get("/api/cameras", dependencies=auth)
    def cameras() -> list[CameraOut]:
        return [out(s) for s in app.engine.statuses().values()]

    @api.get("/api/cameras/{camera_id}", dependencies=auth)
    def camera(camera_id: str) -> CameraOut:
        return out(status_of(camera_id))

    @api.post("/api/cameras/{camera_id}/recording/start", dependencies=auth)
    def start_recording(camera_id: str) -> CameraOut:
        status_of(camera_id)
        if not app.engine.start_recording(camera_id):
            raise HTTPException(
                409, f"cannot record now: storage is {app.storage.state.state.value}"
            )
        # Confirmed: writing a file, or switched on and waiting for a camera that is down.
        return confirmed(
            camera_id,
            lambda s: s.recording or (s.recording_wanted and s.state is not CameraState.STREAMING),
            waits.start_s,
            "recording",
        )

    @api.post("/api/cameras/{camera_id}/recording/stop", dependencies=auth)
    def stop_recording(camera_id: str) -> CameraOut:
        status_of(camera_id)
        app.engine.stop_recording(camera_id)
        # Confirmed once the last file is final.
        return confirmed(camera_id, lambda s: not s.recording, waits.stop_s, "the final file")

    @api.get("/api/recordings", dependencies=auth)
    def recordings(
        camera: Annotated[str | None, Query(pattern=CAMERA_ID)] = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[SegmentOut]:
        rows = app.storage.catalog.segments(
            camera, start.timestamp() if start else None, end.timestamp() if end else None
        )
        return [segment_out(r) for r in rows]

    @api.get("/api/recordings/{segment_id}/file", dependencies=auth)
    def recording_file(segment_id: int, request: Request) -> Response:
        row = app.storage.catalog.segment(segment_id)
        if row is None:
            raise HTTPException(404, f"no recording {segment_id}")
        root = app.storage.root.resolve()
        path = (root / row.path).resolve()
        if is_segment_path(root, path) and path.is_file():
            return FileResponse(path, media_type="video/x-matroska", filename=path.name)
        if row.object_key is not None and app.storage.objects is not None:
            # Uploaded: read from object storage, ranges passed through.
            return object_response(
                app.storage.objects, row.object_key, path.name, request.headers.get("range")
            )
        raise HTTPException(404, f"recording {segment_id} has no file")

    @api.get("/api/timeline", dependencies=auth)
    def timeline(camera: CameraQuery, date: date) -> TimelineOut:
        status_of(camera)
        start_utc, end_utc = day_bounds(date)
        tl = app.storage.timeline(camera, start_utc, end_utc)
        return TimelineOut(
            camera=camera,
            date=date,
            start=datetime.fromtimestamp(start_utc).astimezone(),
            end=datetime.fromtimestamp(end_utc).astimezone(),
            segments=[segment_out(r) for r in tl.segments],
            footage=[SpanOut(start=_utc(s), end=_utc(e)) for s, e in tl.footage],
            gaps=[
                GapOut(start=_utc(g.start_utc), end=_utc(g.end_utc), reason=g.reason.value)
                for g in tl.gaps
            ],
        )

    @api.get("/metrics", dependencies=auth)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    if os.environ.get(TEST_HOOKS_ENV) == "1":
        _add_test_hooks(api, app)
    return api


TEST_HOOKS_ENV = "NVR_TEST_HOOKS"


def _add_test_hooks(api: FastAPI, app: NvrApp) -> None:
    """Faults on request, for the tests of liveness only: present when ``NVR_TEST_HOOKS=1``."""
    logger.warning("%s=1: test hooks are on (never in production)", TEST_HOOKS_ENV)

    @api.post("/api/debug/wedge/{loop}")
    async def wedge(loop: str, seconds: float = 10.0) -> dict[str, Any]:
        """Block one loop of the program for ``seconds``, as a deadlock would."""
        if loop == "gst-loop":
            app.engine.loop.call(time.sleep, seconds)
        elif loop == "storage":
            app.storage.submit(lambda: time.sleep(seconds))
        elif loop == "api":  # after this answer has gone out
            asyncio.get_running_loop().call_later(0.2, time.sleep, seconds)
        else:
            raise HTTPException(404, f"no loop {loop!r} (gst-loop, storage, api)")
        logger.warning("test hook: loop %s wedged for %g s", loop, seconds)
        return {"wedged": loop, "seconds": seconds}


class ApiServer:
    """uvicorn in a thread, on an already bound socket (so 'port in use' fails early)."""

    def __init__(self, app: NvrApp, confirm: Confirm | None = None) -> None:
        api_cfg = app.config.api
        token = api_cfg.token.get_secret_value() if api_cfg.token else None
        if not is_loopback(api_cfg.host) and not token:
            raise ApiError(
                f"api.host is {api_cfg.host}, not loopback: set api.token to expose the API"
            )
        family = socket.AF_INET6 if ":" in api_cfg.host else socket.AF_INET
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted connections only for
        # a socket whose protocol says TCP; with 0, every small answer waited ~40 ms for the
        # client's delayed ACK (uvicorn writes the head and the body apart).
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((api_cfg.host, api_cfg.port))
        except OSError as exc:
            self._sock.close()
            raise ApiError(
                f"cannot listen on {api_cfg.host}:{api_cfg.port}: {exc.strerror}"
            ) from None
        self._sock.listen(128)
        self.host = api_cfg.host
        self.port = self._sock.getsockname()[1]
        heartbeats = app.heartbeats

        async def beat() -> None:  # on the server's event loop, every API_BEAT_S while it turns
            heartbeats.beat("api")

        self._api = build_api(app, token, confirm)
        config = uvicorn.Config(
            self._api,
            log_level="warning",
            access_log=False,
            lifespan="off",
            callback_notify=beat,
            timeout_notify=API_BEAT_S,
            # Compressed video does not compress: deflating every live fragment took half the
            # web server's CPU (py-spy, 16 live tiles). The events socket's JSON is small.
            ws_per_message_deflate=False,
            # The protocol whose sockets a live view may write to directly (api/live_socket.py).
            ws="websockets-sansio",
        )
        self._heartbeats = heartbeats
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="nvr-api", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> None:
        self._heartbeats.beat("api")  # watched from now on, even if it never turns
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise ApiError("the HTTP server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)
        self._sock.close()
        for release in getattr(self._api.state, "on_stop", ()):
            release()  # what the routes hold open (the preview readers' files)
        self._heartbeats.forget("api")  # stopped on purpose
