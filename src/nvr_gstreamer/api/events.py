"""Motion events: ``GET /api/events`` lists them, ``GET /api/events/{id}/thumbnail`` shows the
peak frame of one. Events as they happen also reach the web app's WebSocket (``/api/ws/events``,
messages of ``"type": "motion"``) and MQTT.

Times as in the rest of the API: ISO 8601, and seconds since the epoch (``*_utc``) for the
timeline's arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Response
from pydantic import BaseModel, Field

from nvr_gstreamer.api.timeline import CameraIds, When
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.status import MotionEvent
from nvr_gstreamer.storage.event_store import EventRow

MAX_RANGE = timedelta(days=31)
MAX_EVENTS = 5000


class EventOut(BaseModel):
    id: int
    camera: str
    start: datetime
    end: datetime | None = Field(description="None while the event goes on")
    start_utc: float
    end_utc: float | None
    score: float = Field(description="the peak: share of the picture that changed (0..1)")
    peak: datetime | None = Field(default=None, description="when the peak was")
    boxes: list[list[float]] = Field(
        description="where it moved at the peak: [x, y, width, height] relative to the picture"
    )
    end_reason: str | None = Field(
        default=None,
        description="motion_stopped | max_length (the next event goes on) | closed (camera or "
        "recorder stopped) | crash; None while going on",
    )
    thumbnail: str | None = Field(description="URL of the peak frame's JPEG, if there is one")


class EventsOut(BaseModel):
    events: list[EventOut]
    truncated: bool = Field(description=f"more than {MAX_EVENTS} events: narrow the range")


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def event_out(r: EventRow) -> EventOut:
    return EventOut(
        id=r.id,
        camera=r.camera,
        start=_utc(r.start_utc),
        end=_utc(r.end_utc) if r.end_utc is not None else None,
        start_utc=r.start_utc,
        end_utc=r.end_utc,
        score=round(r.score, 4),
        peak=_utc(r.peak_utc),
        boxes=[list(b) for b in r.boxes],
        end_reason=r.end_reason,
        thumbnail=f"/api/events/{r.id}/thumbnail" if r.has_thumbnail else None,
    )


def motion_message(event: MotionEvent) -> dict[str, Any]:
    """The WebSocket's message for an event as it happens."""
    return {
        "type": "motion",
        "phase": "start" if event.started else "end",
        "event": event_out(
            EventRow(
                event.event_id, event.camera_id, event.start_utc, event.end_utc, event.score,
                event.start_utc, event.boxes, None, event.thumbnail is not None,
            )
        ).model_dump(mode="json", exclude={"peak"}),
    }  # fmt: skip


def add_events(api: FastAPI, app: NvrApp, auth: list[Any]) -> None:
    @api.get("/api/events", dependencies=auth, response_model=EventsOut)
    def events(start: When, end: When, cameras: CameraIds = None) -> Response:
        """Motion events overlapping ``start``..``end`` (at most 31 days), oldest first."""
        start_utc, end_utc = start.timestamp(), end.timestamp()
        if end_utc <= start_utc:
            raise HTTPException(422, "end must be after start")
        if end_utc - start_utc > MAX_RANGE.total_seconds():
            raise HTTPException(422, f"the range may be at most {MAX_RANGE.days} days long")
        known = app.engine.statuses()
        wanted = list(dict.fromkeys(cameras)) if cameras else list(known)
        for camera in wanted:
            if camera not in known:
                raise HTTPException(404, f"no camera {camera!r}")
        rows: list[EventRow] = []
        for camera in wanted:
            rows += app.storage.events.events(camera, start_utc, end_utc, limit=MAX_EVENTS + 1)
        rows.sort(key=lambda r: (r.start_utc, r.id))
        answer = EventsOut(
            events=[event_out(r) for r in rows[:MAX_EVENTS]], truncated=len(rows) > MAX_EVENTS
        )
        return Response(answer.model_dump_json(), media_type="application/json")

    @api.get(
        "/api/events/{event_id}/thumbnail",
        dependencies=auth,
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    def thumbnail(event_id: Annotated[int, Path(ge=1)]) -> Response:
        """The JPEG of the event's peak frame."""
        jpeg = app.storage.events.thumbnail(event_id)
        if jpeg is None:
            raise HTTPException(404, f"no thumbnail of event {event_id}")
        return Response(
            jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
        )
