"""Export jobs over HTTP: a range of one or more cameras to one MP4 per camera.

* ``POST /api/exports`` ``{"cameras": [...], "start": ..., "end": ...}`` (ISO 8601 with a time
  zone) queues a job: 202 with the job. Refused: an unknown camera (404, naming it), a range
  out of order or longer than ``exports.max_minutes``, a camera with nothing recorded in the
  range (422, naming it), storage unavailable (503), too many jobs queued (429).
* ``GET /api/exports`` every job; ``GET /api/exports/{id}`` one: its state (queued, running,
  done, failed, cancelled), progress 0..1, error, and per file its name, size, SHA-256,
  duration, the wall time of its first shown frame and of the key frame it is decoded from.
* ``GET /api/exports/{id}/files/{camera}`` the MP4 (range requests: 206).
* ``DELETE /api/exports/{id}`` cancels a queued or running job (200, the job), or removes a
  finished one with its files (204).

Every change of a job also goes out on the events socket (``/api/ws/events``) as
``{"type": "export", "job": {...}, "removed": false}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Response
from fastapi.responses import FileResponse
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.engine.exports import (
    JOB_ID,
    ExportChanged,
    ExportFile,
    ExportJob,
    ExportRejected,
    JobState,
    Rejection,
)

CAMERA_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MAX_CAMERAS = 64

CameraId = Annotated[str, StringConstraints(pattern=CAMERA_ID)]
JobPath = Annotated[str, Path(pattern=JOB_ID, description="The job's id.")]
CameraPath = Annotated[str, Path(pattern=CAMERA_ID)]

_STATUS = {
    Rejection.UNKNOWN_CAMERA: 404,
    Rejection.BAD_REQUEST: 422,
    Rejection.TOO_LONG: 422,
    Rejection.NOTHING_RECORDED: 422,
    Rejection.BUSY: 429,
    Rejection.STORAGE: 503,
}


class ExportIn(BaseModel):
    cameras: list[CameraId] = Field(
        min_length=1, max_length=MAX_CAMERAS, description="Camera ids; one MP4 each."
    )
    start: AwareDatetime = Field(description="First instant, with a time zone (Z or ±hh:mm).")
    end: AwareDatetime = Field(description="Last instant, with a time zone; after start.")


class SpanOut(BaseModel):
    start: datetime
    end: datetime


class ExportFileOut(BaseModel):
    camera: str
    name: str = Field(description="File name: camera, start and end in UTC.")
    url: str = Field(description="Where to download it (once the job is done).")
    size_bytes: int | None
    sha256: str | None = Field(description="Of the whole file; also in <name>.sha256.")
    duration_s: float | None = Field(description="As players show it.")
    first_frame: datetime | None = Field(
        description="Wall time of the first frame shown: the one on screen at start."
    )
    keyframe: datetime | None = Field(
        description="Wall time of the key frame the file is decoded from (not shown: the MP4's "
        "edit list starts the presentation at first_frame)."
    )
    gaps: list[SpanOut] = Field(
        description="Spans in the range with no recording; the file goes on after each."
    )


class ExportJobOut(BaseModel):
    id: str
    cameras: list[str]
    start: datetime
    end: datetime
    state: str = Field(description="queued, running, done, failed or cancelled.")
    progress: float = Field(ge=0.0, le=1.0)
    error: str | None
    created: datetime
    finished: datetime | None
    expires: datetime | None = Field(description="When the job and its files are removed.")
    files: list[ExportFileOut]


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _utc(ts: float | None) -> datetime | None:
    return _at(ts) if ts is not None else None


def _file_out(job: ExportJob, f: ExportFile) -> ExportFileOut:
    return ExportFileOut(
        camera=f.camera,
        name=f.name,
        url=f"/api/exports/{job.id}/files/{f.camera}",
        size_bytes=f.size_bytes,
        sha256=f.sha256,
        duration_s=round(f.duration_s, 6) if f.duration_s is not None else None,
        first_frame=_utc(f.start_utc),
        keyframe=_utc(f.keyframe_utc),
        gaps=[SpanOut(start=_at(a), end=_at(b)) for a, b in f.gaps],
    )


def job_out(job: ExportJob) -> ExportJobOut:
    return ExportJobOut(
        id=job.id,
        cameras=list(job.cameras),
        start=_at(job.start_utc),
        end=_at(job.end_utc),
        state=job.state.value,
        progress=round(job.progress, 4),
        error=job.error,
        created=_at(job.created_utc),
        finished=_utc(job.finished_utc),
        expires=_utc(job.expires_utc),
        files=[_file_out(job, f) for f in job.files],
    )


def export_message(change: ExportChanged) -> dict[str, Any]:
    """The events socket's message for a change of an export job."""
    return {
        "type": "export",
        "job": job_out(change.job).model_dump(mode="json"),
        "removed": change.removed,
    }


def add_exports(api: FastAPI, app: NvrApp, auth: Sequence[Any]) -> None:
    exports = app.exports
    deps = list(auth)

    def found(job_id: str) -> ExportJob:
        job = exports.job(job_id)
        if job is None:
            raise HTTPException(404, f"no export {job_id!r}")
        return job

    @api.post("/api/exports", dependencies=deps, status_code=202)
    def create_export(body: ExportIn, response: Response) -> ExportJobOut:
        """Queue an export of ``[start, end]`` for each camera."""
        try:
            job = exports.submit(body.cameras, body.start.timestamp(), body.end.timestamp())
        except ExportRejected as exc:
            detail: Any = exc.message
            if exc.cameras:
                detail = {"message": exc.message, "cameras": list(exc.cameras)}
            raise HTTPException(_STATUS[exc.kind], detail) from None
        response.headers["Location"] = f"/api/exports/{job.id}"
        return job_out(job)

    @api.get("/api/exports", dependencies=deps)
    def list_exports() -> list[ExportJobOut]:
        return [job_out(j) for j in exports.jobs()]

    @api.get("/api/exports/{job_id}", dependencies=deps)
    def get_export(job_id: JobPath) -> ExportJobOut:
        return job_out(found(job_id))

    @api.get(
        "/api/exports/{job_id}/files/{camera_id}",
        dependencies=deps,
        response_class=FileResponse,
        responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "A byte range"}},
    )
    def export_file(job_id: JobPath, camera_id: CameraPath) -> FileResponse:
        """The MP4 of one camera of a finished job (HTTP range requests answered with 206)."""
        job = found(job_id)
        if camera_id not in job.cameras:
            raise HTTPException(404, f"export {job_id} has no camera {camera_id!r}")
        if job.state is not JobState.DONE:
            raise HTTPException(409, f"export {job_id} is {job.state.value}, not done")
        path = exports.file_path(job_id, camera_id)
        if path is None:
            raise HTTPException(410, f"the file of {camera_id} in export {job_id} is gone")
        return FileResponse(path, media_type="video/mp4", filename=path.name)

    @api.delete(
        "/api/exports/{job_id}",
        dependencies=deps,
        responses={
            200: {"model": ExportJobOut, "description": "Cancelled"},
            204: {"description": "Removed with its files"},
        },
    )
    def delete_export(job_id: JobPath) -> Response:
        """Cancel a queued or running job (200, the job); remove a finished one (204)."""
        try:
            job = exports.delete(job_id)
        except KeyError:
            raise HTTPException(404, f"no export {job_id!r}") from None
        if job is None:
            return Response(status_code=204)
        return Response(job_out(job).model_dump_json(), media_type="application/json")
