"""Export jobs: a time range of one or more cameras copied to one MP4 file per camera.

:class:`ExportBook` is the bookkeeping, pure: jobs, their states and progress, file names,
when each finished job expires; every time comes in as an argument. :class:`ExportService`
does the work around it: one worker thread runs one job at a time (the export itself is
injected, :func:`~nvr_gstreamer.gst.footage.export_mp4` in the application), writes each
file's SHA-256 next to it, sweeps expired jobs, and tells listeners (the web app's events
socket) about every change.

On disk, inside the storage root: ``<folder>/<job id>/<camera>_<start>_<end>.mp4`` (times in
UTC, ``20261129T101500Z``), ``<name>.mp4.sha256`` (``sha256sum -c`` reads it), and
``job.json``, written last: a job folder with it is a finished export and is listed again after
a restart; one without is what an interrupted job left, and is removed at start. Names are made
from validated camera ids and times only, never from other input.

States: queued → running → done | failed | cancelled; queued → cancelled. A finished job (any of
the last three) is removed with its files ``keep_hours`` after it ended.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from nvr_gstreamer.config import ExportsConfig
from nvr_gstreamer.core.clock import Clock
from nvr_gstreamer.storage.footage_runs import CONTIGUOUS_S, Footage, Part

logger = logging.getLogger(__name__)

JOB_ID = r"^[0-9a-f]{12}$"
_JOB_ID = re.compile(JOB_ID)
MANIFEST = "job.json"
SHA_SUFFIX = ".sha256"
MAX_QUEUED = 20  # jobs waiting or running at once; more are refused
SWEEP_INTERVAL_S = 60.0
PROGRESS_STEP = 0.01  # listeners hear of progress in steps this big
HASH_SHARE = 0.05  # of a file's progress: the SHA-256 after the copy
_HASH_CHUNK = 4 * 1024 * 1024


class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class Rejection(Enum):
    """Why a request for an export is refused (the HTTP layer maps each to a status)."""

    UNKNOWN_CAMERA = "unknown_camera"
    BAD_REQUEST = "bad_request"
    TOO_LONG = "too_long"
    NOTHING_RECORDED = "nothing_recorded"
    BUSY = "busy"
    STORAGE = "storage"


class ExportRejected(Exception):
    def __init__(self, kind: Rejection, message: str, cameras: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.cameras = tuple(cameras)


class ExportFailed(Exception):
    """An export that could not be made, for a reason to show as it is (nothing recorded,
    the recording changed its streams, cancelled...)."""


@dataclass(frozen=True, slots=True)
class ExportFile:
    camera: str
    name: str  # in the job's folder
    size_bytes: int | None = None  # None until written
    sha256: str | None = None
    duration_s: float | None = None
    start_utc: float | None = None  # the first frame shown
    keyframe_utc: float | None = None  # the first frame in the file (decoded, not shown)
    gaps: tuple[tuple[float, float], ...] = ()  # unrecorded spans inside the range, left out


@dataclass(frozen=True, slots=True)
class ExportJob:
    id: str
    cameras: tuple[str, ...]
    start_utc: float
    end_utc: float
    created_utc: float
    state: JobState = JobState.QUEUED
    progress: float = 0.0  # 0..1 over all its files
    files: tuple[ExportFile, ...] = ()
    error: str | None = None
    finished_utc: float | None = None
    expires_utc: float | None = None


@dataclass(frozen=True, slots=True)
class ExportChanged:
    job: ExportJob
    removed: bool = False  # the job and its files are gone


def utc_label(ts: float) -> str:
    """``20261129T101500Z``; with milliseconds when the time has them (``...T101500.250Z``)."""
    ms = round(ts * 1000)
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    frac = f".{ms % 1000:03d}" if ms % 1000 else ""
    return f"{dt:%Y%m%dT%H%M%S}{frac}Z"


def file_name(camera: str, start_utc: float, end_utc: float) -> str:
    return f"{camera}_{utc_label(start_utc)}_{utc_label(end_utc)}.mp4"


def gaps_in(
    parts: Sequence[Part], start_utc: float, end_utc: float
) -> tuple[tuple[float, float], ...]:
    """Spans of ``[start, end]`` that no part covers (holes shorter than the footage's
    contiguity tolerance are not gaps), from the range's first recorded instant on."""
    gaps = []
    ordered = sorted(parts, key=lambda p: p.start_utc)
    for a, b in itertools.pairwise(ordered):
        lo, hi = max(a.end_utc, start_utc), min(b.start_utc, end_utc)
        if hi - lo > CONTIGUOUS_S:
            gaps.append((lo, hi))
    if ordered and end_utc - ordered[-1].end_utc > CONTIGUOUS_S:
        gaps.append((max(ordered[-1].end_utc, start_utc), end_utc))
    return tuple(gaps)


class ExportBook:
    """Jobs and their states; pure (every time is given), not thread-safe on its own."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._jobs: dict[str, ExportJob] = {}

    def add(
        self, job_id: str, cameras: Sequence[str], start_utc: float, end_utc: float, now: float
    ) -> ExportJob:
        job = ExportJob(
            id=job_id,
            cameras=tuple(cameras),
            start_utc=start_utc,
            end_utc=end_utc,
            created_utc=now,
            files=tuple(ExportFile(c, file_name(c, start_utc, end_utc)) for c in cameras),
        )
        self._jobs[job_id] = job
        return job

    def restore(self, job: ExportJob) -> ExportJob:
        """A finished job read back from disk; it expires ``keep_s`` after it finished."""
        finished = job.finished_utc if job.finished_utc is not None else job.created_utc
        job = replace(job, finished_utc=finished, expires_utc=finished + self.keep_s)
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> ExportJob | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[ExportJob]:
        return sorted(self._jobs.values(), key=lambda j: (j.created_utc, j.id))

    def active(self) -> int:
        return sum(1 for j in self._jobs.values() if not j.state.finished)

    def next_queued(self) -> ExportJob | None:
        return next((j for j in self.jobs() if j.state is JobState.QUEUED), None)

    def _set(self, job: ExportJob) -> ExportJob:
        self._jobs[job.id] = job
        return job

    def started(self, job_id: str) -> ExportJob:
        return self._set(replace(self._jobs[job_id], state=JobState.RUNNING, progress=0.0))

    def progressed(self, job_id: str, progress: float) -> ExportJob:
        job = self._jobs[job_id]
        return self._set(replace(job, progress=max(job.progress, min(1.0, max(0.0, progress)))))

    def file_done(self, job_id: str, done: ExportFile) -> ExportJob:
        job = self._jobs[job_id]
        files = tuple(done if f.camera == done.camera else f for f in job.files)
        return self._set(replace(job, files=files))

    def _end(self, job_id: str, state: JobState, now: float, error: str | None) -> ExportJob:
        job = self._jobs[job_id]
        progress = 1.0 if state is JobState.DONE else job.progress
        return self._set(
            replace(
                job,
                state=state,
                progress=progress,
                error=error,
                finished_utc=now,
                expires_utc=now + self.keep_s,
            )
        )

    def done(self, job_id: str, now: float) -> ExportJob:
        return self._end(job_id, JobState.DONE, now, None)

    def failed(self, job_id: str, now: float, error: str) -> ExportJob:
        job = self._end(job_id, JobState.FAILED, now, error)
        return self._set(replace(job, files=tuple(ExportFile(f.camera, f.name) for f in job.files)))

    def cancelled(self, job_id: str, now: float) -> ExportJob:
        job = self._end(job_id, JobState.CANCELLED, now, "cancelled")
        return self._set(replace(job, files=tuple(ExportFile(f.camera, f.name) for f in job.files)))

    def expired(self, now: float) -> list[ExportJob]:
        return [
            j
            for j in self.jobs()
            if j.state.finished and j.expires_utc is not None and j.expires_utc <= now
        ]

    def remove(self, job_id: str) -> ExportJob | None:
        return self._jobs.pop(job_id, None)


# ---- the work ---------------------------------------------------------------------------------


class Exported(Protocol):
    """What an export reports of the file it wrote (ExportResult of gst/footage.py)."""

    @property
    def duration_s(self) -> float: ...

    @property
    def start_utc(self) -> float: ...

    @property
    def keyframe_utc(self) -> float: ...


class Exporter(Protocol):
    """Writes ``footage``'s ``[start_utc, end_utc]`` to ``dest``, blocking; raises
    :class:`ExportFailed` for a reason to show."""

    def __call__(
        self,
        footage: Footage,
        start_utc: float,
        end_utc: float,
        dest: Path,
        progress: Callable[[float], None],
        cancel: threading.Event,
    ) -> Exported: ...


PartsOf = Callable[[str, float, float], list[Part]]  # camera, start, end: closed segments
Listener = Callable[[ExportChanged], None]


def sha256_of(path: Path, progress: Callable[[float], None] | None = None) -> str:
    digest = hashlib.sha256()
    size = max(1, path.stat().st_size)
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done / size)
    return digest.hexdigest()


def _file_json(f: ExportFile) -> dict[str, Any]:
    return {
        "camera": f.camera,
        "name": f.name,
        "size_bytes": f.size_bytes,
        "sha256": f.sha256,
        "duration_s": f.duration_s,
        "start_utc": f.start_utc,
        "keyframe_utc": f.keyframe_utc,
        "gaps": [list(g) for g in f.gaps],
    }


def _manifest(job: ExportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "cameras": list(job.cameras),
        "start_utc": job.start_utc,
        "end_utc": job.end_utc,
        "created_utc": job.created_utc,
        "finished_utc": job.finished_utc,
        "files": [_file_json(f) for f in job.files],
    }


def _job_from_manifest(folder: Path, data: dict[str, Any]) -> ExportJob:
    """A finished job from its folder: done, or failed when a file changed since it was
    written (its size, or the SHA-256 in its ``.sha256``: the file stays, for whoever looks,
    until the job expires). ValueError, KeyError, TypeError or OSError when the record does
    not hold up (an interrupted job)."""
    if data["id"] != folder.name:
        raise ValueError("the record names another job")
    cameras = tuple(str(c) for c in data["cameras"])
    start, end = float(data["start_utc"]), float(data["end_utc"])
    files = []
    changed = []
    for raw in data["files"]:
        camera, name = str(raw["camera"]), str(raw["name"])
        if camera not in cameras or name != file_name(camera, start, end):
            raise ValueError(f"unexpected file {name!r}")
        sha = str(raw["sha256"])
        try:
            size = (folder / name).stat().st_size
            written = (folder / (name + SHA_SUFFIX)).read_text(encoding="utf-8").split()[:1]
        except OSError as exc:
            changed.append(f"{name}: {exc.strerror or exc}")
            size, written = 0, [sha]
        if size != raw["size_bytes"] or written != [sha]:
            changed.append(f"{name} changed on disk after the export")
        files.append(
            ExportFile(
                camera=camera,
                name=name,
                size_bytes=int(raw["size_bytes"]),
                sha256=sha,
                duration_s=float(raw["duration_s"]),
                start_utc=float(raw["start_utc"]),
                keyframe_utc=float(raw["keyframe_utc"]),
                gaps=tuple((float(a), float(b)) for a, b in raw.get("gaps", [])),
            )
        )
    return ExportJob(
        id=folder.name,
        cameras=cameras,
        start_utc=start,
        end_utc=end,
        created_utc=float(data["created_utc"]),
        state=JobState.FAILED if changed else JobState.DONE,
        progress=1.0,
        files=tuple(files),
        error="; ".join(changed) if changed else None,
        finished_utc=float(data["finished_utc"]),
    )


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class _Running:
    job_id: str
    cancel: threading.Event = field(default_factory=threading.Event)
    notified: float = -1.0  # progress last told to listeners


class ExportService:
    """Export jobs on one worker thread; every method may be called from any thread."""

    def __init__(
        self,
        config: ExportsConfig,
        root: Path,
        clock: Clock,
        parts_of: PartsOf,
        exporter: Exporter,
        known_cameras: Callable[[], Iterable[str]],
        unavailable: Callable[[], str | None] = lambda: None,
        room: Callable[[], int | None] = lambda: None,
        new_id: Callable[[], str] = lambda: secrets.token_hex(6),
    ) -> None:
        """``unavailable()`` says why nothing can be written now (storage gone, disk full),
        or None; ``room()`` how many bytes may be written before retention would delete
        recordings to make space (None: unknown); ``known_cameras()`` lists the camera ids
        exports may name."""
        self.config = config
        self.folder = root / config.folder
        self._clock = clock
        self._parts_of = parts_of
        self._exporter = exporter
        self._known = known_cameras
        self._unavailable = unavailable
        self._room = room
        self._new_id = new_id
        self._book = ExportBook(config.keep_hours * 3600.0)
        self._cond = threading.Condition()
        self._listeners: list[Listener] = []
        self._running: _Running | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0  # monotonic

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """List the finished exports found on disk, remove what interrupted jobs left, and
        start the worker."""
        self.load()
        self._thread = threading.Thread(target=self._work, name="nvr-exports", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Cancel the running job, drop the queued ones; idempotent."""
        with self._cond:
            self._stopping = True
            if self._running is not None:
                self._running.cancel.set()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def load(self) -> None:
        """List the finished jobs found in the exports folder, remove the folders of jobs a
        restart interrupted, and sweep the expired (at start)."""
        try:
            entries = sorted(self.folder.iterdir()) if self.folder.is_dir() else []
        except OSError as exc:
            logger.warning("exports: cannot list %s (%s)", self.folder, exc.strerror or exc)
            entries = []
        now = self._clock.wall().timestamp()
        for entry in entries:
            if not entry.is_dir() or not _JOB_ID.match(entry.name):
                continue
            try:
                data = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
                job = _job_from_manifest(entry, data)
            except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
                logger.info("exports: removing %s, left unfinished (%s)", entry.name, exc)
                shutil.rmtree(entry, ignore_errors=True)
                continue
            if job.error is not None:
                logger.warning("exports: %s: %s", entry.name, job.error)
            with self._cond:
                self._book.restore(job)
        with self._cond:
            listed = len(self._book.jobs())
        if listed:
            logger.info("exports: %d finished exports listed again", listed)
        self.sweep(now)

    # ---- requests -------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._cond:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._cond, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def jobs(self) -> list[ExportJob]:
        with self._cond:
            return self._book.jobs()

    def job(self, job_id: str) -> ExportJob | None:
        with self._cond:
            return self._book.get(job_id)

    def file_path(self, job_id: str, camera: str) -> Path | None:
        """The finished file of ``camera`` in job ``job_id``, or None."""
        job = self.job(job_id)
        if job is None or job.state is not JobState.DONE or not _JOB_ID.match(job_id):
            return None
        entry = next((f for f in job.files if f.camera == camera), None)
        if entry is None:
            return None
        path = (self.folder / job_id / entry.name).resolve()
        if not path.is_relative_to(self.folder.resolve()) or not path.is_file():
            return None
        return path

    def submit(self, cameras: Sequence[str], start_utc: float, end_utc: float) -> ExportJob:
        """Queue an export; :class:`ExportRejected` says why not."""
        known = set(self._known())
        unknown = [c for c in cameras if c not in known]
        if unknown:
            names = ", ".join(repr(c) for c in unknown)
            raise ExportRejected(Rejection.UNKNOWN_CAMERA, f"no camera {names}", unknown)
        if not cameras or len(set(cameras)) != len(cameras):
            raise ExportRejected(Rejection.BAD_REQUEST, "name each camera once, at least one")
        if end_utc <= start_utc:
            raise ExportRejected(Rejection.BAD_REQUEST, "start must be before end")
        longest = self.config.max_minutes * 60
        if end_utc - start_utc > longest:
            raise ExportRejected(
                Rejection.TOO_LONG,
                f"the range is {(end_utc - start_utc) / 60:.1f} minutes; at most "
                f"{self.config.max_minutes} minutes per export (exports.max_minutes)",
            )
        why = self._unavailable()
        if why is not None:
            raise ExportRejected(Rejection.STORAGE, f"cannot export now: {why}")
        empty = [c for c in cameras if not self._parts_of(c, start_utc, end_utc)]
        if empty:
            raise ExportRejected(
                Rejection.NOTHING_RECORDED,
                f"nothing recorded between {utc_label(start_utc)} and {utc_label(end_utc)} "
                f"for {', '.join(empty)} (the segment being written counts once it is closed)",
                empty,
            )
        with self._cond:
            if self._stopping:
                raise ExportRejected(Rejection.BUSY, "the recorder is shutting down")
            if self._book.active() >= MAX_QUEUED:
                raise ExportRejected(
                    Rejection.BUSY, f"{MAX_QUEUED} exports are queued already: try later"
                )
            job_id = self._new_id()
            if not _JOB_ID.match(job_id) or self._book.get(job_id) is not None:
                raise RuntimeError(f"bad or repeated job id {job_id!r}")
            job = self._book.add(job_id, cameras, start_utc, end_utc, self._now())
            self._tell(ExportChanged(job))
            self._cond.notify_all()
        logger.info(
            "export %s queued: %s, %s to %s",
            job.id,
            ", ".join(cameras),
            utc_label(start_utc),
            utc_label(end_utc),
        )
        return job

    def delete(self, job_id: str) -> ExportJob | None:
        """Cancel a queued or running job (returned, cancelled); remove a finished one and
        its files (None). KeyError if there is no such job."""
        with self._cond:
            job = self._book.get(job_id)
            if job is None:
                raise KeyError(job_id)
            if not job.state.finished:
                if self._running is not None and self._running.job_id == job_id:
                    self._running.cancel.set()  # the worker removes what it wrote
                job = self._book.cancelled(job_id, self._now())
                self._tell(ExportChanged(job))
                logger.info("export %s cancelled", job_id)
                return job
            self._book.remove(job_id)
            self._tell(ExportChanged(job, removed=True))
        self._remove_folder(job_id)
        logger.info("export %s removed", job_id)
        return None

    # ---- the worker -----------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.wall().timestamp()

    def _tell(self, change: ExportChanged) -> None:
        """Listeners hear every change in the order it happened: called with the lock held
        (re-entrant), right after the change; they must not block."""
        with self._cond:
            for listener in list(self._listeners):
                try:
                    listener(change)
                except Exception:
                    logger.exception("exports: a listener failed")

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and self._book.next_queued() is None:
                    wait = self._next_sweep - self._clock.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopping:
                    return
            try:
                if self._clock.monotonic() >= self._next_sweep:
                    self.sweep(self._now())
                self.run_next()
            except Exception:  # a bug: the worker must go on with the next job regardless
                logger.exception("exports: the worker failed")

    def run_next(self) -> ExportJob | None:
        """Run the oldest queued job to its end (on the calling thread); None if none."""
        with self._cond:
            job = self._book.next_queued()
            if job is None or self._stopping:
                return None
            job = self._book.started(job.id)
            running = self._running = _Running(job.id)
            self._tell(ExportChanged(job))
        logger.info("export %s running", job.id)
        try:
            self._run(job, running)
        except ExportFailed as exc:
            self._ended(running, error=str(exc))
        except Exception as exc:
            logger.exception("export %s failed", job.id)
            self._ended(running, error=f"export failed: {type(exc).__name__}: {exc}")
        else:
            self._ended(running, error=None)
        return self.job(job.id)

    def _run(self, job: ExportJob, running: _Running) -> None:
        folder = self.folder / job.id
        folder.mkdir(parents=True, exist_ok=True)
        count = len(job.files)
        for index, entry in enumerate(job.files):
            if running.cancel.is_set():
                return
            why = self._unavailable()
            if why is not None:
                raise ExportFailed(f"cannot export now: {why}")
            parts = self._parts_of(entry.camera, job.start_utc, job.end_utc)
            if not parts:
                raise ExportFailed(f"nothing recorded for {entry.camera} in that range any more")
            self._check_room(parts, job.start_utc, job.end_utc)

            def report(fraction: float, index: int = index) -> None:
                self._progress(running, (index + fraction) / count)

            dest = folder / entry.name
            result = self._exporter(
                Footage(parts),
                job.start_utc,
                job.end_utc,
                dest,
                lambda f: report(f * (1 - HASH_SHARE)),
                running.cancel,
            )
            if running.cancel.is_set():
                return
            digest = sha256_of(dest, lambda f: report(1 - HASH_SHARE + f * HASH_SHARE))
            _write_atomically(folder / (entry.name + SHA_SUFFIX), f"{digest}  {entry.name}\n")
            done = replace(
                entry,
                size_bytes=dest.stat().st_size,
                sha256=digest,
                duration_s=result.duration_s,
                start_utc=result.start_utc,
                keyframe_utc=result.keyframe_utc,
                gaps=gaps_in(parts, result.start_utc, job.end_utc),
            )
            with self._cond:
                if running.cancel.is_set() or self._book.get(job.id) is None:
                    return
                self._tell(ExportChanged(self._book.file_done(job.id, done)))

    def _check_room(self, parts: Sequence[Part], start_utc: float, end_utc: float) -> None:
        room = self._room()
        if room is None:
            return
        need = 0.0
        for p in parts:
            overlap = min(p.end_utc, end_utc) - max(p.start_utc, start_utc)
            if overlap > 0 and p.duration_s > 0:
                with contextlib.suppress(OSError):
                    need += p.path.stat().st_size * min(1.0, overlap / p.duration_s)
        if need > room:
            raise ExportFailed(
                f"not enough free space: the export needs about {need / 1e6:.0f} MB, and "
                f"{max(0, room) / 1e6:.0f} MB can be written before retention would delete "
                "recordings (storage.min_free_percent)"
            )

    def _progress(self, running: _Running, progress: float) -> None:
        with self._cond:
            job = self._book.get(running.job_id)
            if job is None or job.state is not JobState.RUNNING:
                return
            job = self._book.progressed(running.job_id, progress)
            if job.progress - running.notified < PROGRESS_STEP:
                return
            running.notified = job.progress
            self._tell(ExportChanged(job))

    def _ended(self, running: _Running, error: str | None) -> None:
        """The job's end: done once its record is on disk, else failed or cancelled (by a
        DELETE, or by stop()) with nothing of it left on disk."""
        job_id = running.job_id
        with self._cond:
            job = self._book.get(job_id)
            finishing = job is not None and job.state is JobState.RUNNING
            if finishing and running.cancel.is_set():  # stop(): nobody asked for its end
                error = "cancelled"
        now = self._now()
        if finishing and error is None and job is not None:
            done = replace(job, state=JobState.DONE, finished_utc=now)
            try:
                _write_atomically(self.folder / job_id / MANIFEST, json.dumps(_manifest(done)))
            except OSError as exc:
                error = f"cannot write the export's record: {exc.strerror or exc}"
        with self._cond:
            self._running = None
            job = self._book.get(job_id)
            if job is not None and job.state is JobState.RUNNING:  # not cancelled meanwhile
                if error is None:
                    job = self._book.done(job_id, now)
                elif running.cancel.is_set():
                    job = self._book.cancelled(job_id, now)
                else:
                    job = self._book.failed(job_id, now, error)
                self._tell(ExportChanged(job))
        if job is None or job.state is not JobState.DONE:
            self._remove_folder(job_id)  # nothing half-made stays (cancelled, failed, removed)
        if job is not None:
            logger.info(
                "export %s %s%s", job_id, job.state.value, f": {job.error}" if job.error else ""
            )

    def sweep(self, now: float) -> list[str]:
        """Remove the finished jobs whose time is up; returns their ids."""
        with self._cond:
            expired = self._book.expired(now)
            for job in expired:
                self._book.remove(job.id)
            self._next_sweep = self._clock.monotonic() + SWEEP_INTERVAL_S
            for job in expired:
                self._tell(ExportChanged(job, removed=True))
        for job in expired:
            self._remove_folder(job.id)
            logger.info("export %s expired and removed", job.id)
        return [j.id for j in expired]

    def _remove_folder(self, job_id: str) -> None:
        if _JOB_ID.match(job_id):
            shutil.rmtree(self.folder / job_id, ignore_errors=True)
