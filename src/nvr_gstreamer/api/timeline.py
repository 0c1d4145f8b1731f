"""``GET /api/timeline/range``: the footage and gaps of several cameras over days, for the web
app's timeline (cameras stacked on one time axis, up to a week at a time).

Each camera's answer is what ``GET /api/timeline`` says of the same time — footage spans and
gaps with their reasons, a partition of ``[start, horizon)`` — with the number of segments
instead of the segments: a week of 60 s files is 10,080 rows per camera, and the page draws
spans, not files. Times are ISO 8601 as in the rest of the API, and also seconds since the
epoch (``*_utc``, the catalog's own numbers): the page places every edge on its axis by
arithmetic on them, with no date parsing (JavaScript's ``Date`` would also round them to the
millisecond)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Response
from pydantic import BaseModel, Field

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.config import CameraId
from nvr_gstreamer.storage.timeline import GapReason

MAX_RANGE = timedelta(days=31)

CameraIds = Annotated[
    list[CameraId] | None,
    Query(
        alias="camera",
        description="A camera id; repeat for several (`camera=a&camera=b`). None: every camera.",
    ),
]
When = Annotated[
    datetime,
    Query(
        description="ISO 8601; without a UTC offset it is local time (write `+` as `%2B`, or "
        "use `Z`)."
    ),
]


class RangeSpanOut(BaseModel):
    start: datetime
    end: datetime
    start_utc: float = Field(description="start, in seconds since the epoch")
    end_utc: float = Field(description="end, in seconds since the epoch")


class RangeGapOut(RangeSpanOut):
    reason: GapReason


class CameraRangeOut(BaseModel):
    """``footage`` and ``gaps`` partition ``[start, horizon)``: every instant is in exactly one
    of them (holes shorter than 2 s between files count as footage)."""

    camera: str
    segment_count: int = Field(description="how many segments overlap the range")
    footage: list[RangeSpanOut]
    gaps: list[RangeGapOut]


class TimelineRangeOut(BaseModel):
    start: datetime
    end: datetime
    horizon: datetime = Field(description="where the timeline stops: end, or now if earlier")
    start_utc: float
    end_utc: float
    horizon_utc: float
    cameras: list[CameraRangeOut]


def _local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).astimezone()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def add_timeline(api: FastAPI, app: NvrApp, auth: list[Any]) -> None:
    """The range timeline; ``auth``: the dependencies that guard every other endpoint."""

    # The answer is serialised here, once: returned as a model, FastAPI would validate and
    # convert it again (a third of the request for a flapping camera's ten thousand pieces).
    @api.get("/api/timeline/range", dependencies=auth, response_model=TimelineRangeOut)
    def timeline_range(start: When, end: When, cameras: CameraIds = None) -> Response:
        """Footage and gaps of the cameras from ``start`` to ``end`` (at most 31 days)."""
        start_utc, end_utc = start.timestamp(), end.timestamp()
        if end_utc <= start_utc:
            raise HTTPException(422, "end must be after start")
        if end_utc - start_utc > MAX_RANGE.total_seconds():
            raise HTTPException(422, f"the range may be at most {MAX_RANGE.days} days long")
        known = list(app.engine.statuses())
        wanted = list(dict.fromkeys(cameras)) if cameras else known
        for camera in wanted:
            if camera not in known:
                raise HTTPException(404, f"no camera {camera!r}")
        now = app.clock.wall().timestamp()  # one horizon for every camera
        horizon_utc = min(end_utc, max(start_utc, now))
        out = []
        for tl in app.storage.footage_timelines(wanted, start_utc, end_utc, now):
            camera = tl.camera
            out.append(
                CameraRangeOut(
                    camera=camera,
                    segment_count=tl.segment_count,
                    footage=[
                        RangeSpanOut(start=_utc(s), end=_utc(e), start_utc=s, end_utc=e)
                        for s, e in tl.footage
                    ],
                    gaps=[
                        RangeGapOut(
                            start=_utc(g.start_utc),
                            end=_utc(g.end_utc),
                            start_utc=g.start_utc,
                            end_utc=g.end_utc,
                            reason=g.reason,
                        )
                        for g in tl.gaps
                    ],
                )
            )
        answer = TimelineRangeOut(
            start=_local(start_utc),
            end=_local(end_utc),
            horizon=_local(horizon_utc),
            start_utc=start_utc,
            end_utc=end_utc,
            horizon_utc=horizon_utc,
            cameras=out,
        )
        return Response(answer.model_dump_json(), media_type="application/json")
