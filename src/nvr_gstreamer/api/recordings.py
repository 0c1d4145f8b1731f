"""Recorded footage for the web app: playback chunks and scrubbing previews.

``GET /api/cameras/{id}/playback?start=&span=`` answers a fragmented MP4 of the camera's
footage from the key frame at or before ``start`` for about ``span`` seconds, with the
recording's audio when it comes out as one of ``audio`` (default ``aac,opus``; the page lists
what its browser plays, empty for video only; see :mod:`nvr_gstreamer.gst.playback`);
``X-Nvr-Codec`` lists the codecs (``avc1.42c016,mp4a.40.2``); other headers say where it sits
on the wall clock and where the next chunk starts (``X-Nvr-Next``), which is past a gap when
the footage stops. The page appends chunk after chunk to one MediaSource.

``GET /api/cameras/{id}/preview?at=`` answers a small JPEG of the key frame at or before
``at`` (``X-Nvr-Frame``: its wall time), cached.

Files are read only through the catalog, only inside the storage root.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query
from fastapi.responses import Response

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.gst.playback import (
    AUDIO_CODECS,
    SNAP_TOLERANCE_S,
    PlaybackError,
    make_chunk,
)
from nvr_gstreamer.gst.preview import PreviewCache, PreviewError, PreviewReaders, preview_jpeg
from nvr_gstreamer.storage.catalog import SegmentRow, SegmentStatus
from nvr_gstreamer.storage.footage_runs import Part
from nvr_gstreamer.storage.layout import is_segment_path

logger = logging.getLogger(__name__)

SPAN_DEFAULT_S = 20.0
SPAN_MAX_S = 120.0
AUDIO_PATTERN = r"^([a-z0-9]+(,[a-z0-9]+)*)?$"  # "aac,opus", "opus", "" (video only)

CameraPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


def _playable(row: SegmentRow) -> bool:
    """Closed files, and the one being written (it is read as far as it is on disk)."""
    return row.status is SegmentStatus.RECORDING or bool(row.duration_s)


def add_recordings(
    api: FastAPI, app: NvrApp, auth: Sequence[Any], known: Callable[[str], Any]
) -> None:
    """The playback and preview routes; ``known`` raises 404 for an unknown camera."""
    previews = PreviewCache()
    readers = PreviewReaders()
    api.state.on_stop = [*getattr(api.state, "on_stop", ()), readers.close]

    def parts_of(rows: Sequence[SegmentRow]) -> list[tuple[Part, bool]]:
        """The files of ``rows`` that can be read, each with whether it is being written."""
        root = app.storage.root.resolve()
        now = app.clock.wall().timestamp()
        out = []
        for r in rows:
            path = (root / r.path).resolve()
            if _playable(r) and is_segment_path(root, path) and path.is_file():
                live = r.status is SegmentStatus.RECORDING
                duration = max(0.0, now - r.start_utc) if live else r.duration_s or 0.0
                out.append((Part(path, r.start_utc, duration), live))
            elif _playable(r) and r.object_key is not None:  # uploaded: fetched, then cached
                out.extend((part, False) for part in app.storage.readable_parts([r]))
        return out

    def footage_after(camera_id: str, t: float) -> float | None:
        """Start of the first playable segment that ends after ``t``."""
        for r in app.storage.catalog.segments(camera_id, t, None, limit=8):
            if _playable(r) and r.start_utc >= t - 0.5:
                return r.start_utc
        return None

    @api.get(
        "/api/cameras/{camera_id}/playback",
        dependencies=list(auth),
        response_class=Response,
        responses={200: {"content": {"video/mp4": {}}}},
    )
    def playback(
        camera_id: CameraPath,
        start: datetime,
        span: Annotated[float, Query(gt=0, le=SPAN_MAX_S)] = SPAN_DEFAULT_S,
        audio: Annotated[str, Query(pattern=AUDIO_PATTERN)] = ",".join(sorted(AUDIO_CODECS)),
    ) -> Response:
        """Fragmented MP4 of the footage from the key frame at or before ``start``, with its
        audio if that is one of ``audio`` (what the browser plays; empty: video only)."""
        known(camera_id)
        t = start.timestamp()
        # The segment that holds ``t``, else the first one after it (``t`` is in a gap).
        parts = parts_of(app.storage.catalog.segments(camera_id, t, None, limit=8))
        if not parts or t > app.clock.wall().timestamp() + 1.0:
            raise HTTPException(404, f"nothing recorded by {camera_id} from {start.isoformat()}")
        # The newest that starts by ``t`` (a file's catalogued end may overlap the next start).
        i = max(0, sum(1 for p, _ in parts if p.start_utc <= t + SNAP_TOLERANCE_S) - 1)
        (part, live), later = parts[i], [p for p, _ in parts[i + 1 :]]
        try:
            accepted = frozenset(audio.split(",")) & AUDIO_CODECS
            chunk = make_chunk(part, max(t, part.start_utc), span, accepted)
        except PlaybackError as e:
            logger.warning("playback of %s at %s: %s", camera_id, start.isoformat(), e)
            raise HTTPException(500, f"cannot play {camera_id} there: {e}") from e
        nxt = chunk.next_utc
        if nxt is None and not live:  # the file ended: the next one, right after it or past a gap
            nxt = next((p.start_utc for p in later), None) or footage_after(camera_id, part.end_utc)
        headers = {
            "X-Nvr-Codec": chunk.codec,
            "X-Nvr-First": f"{chunk.first_utc:.6f}",
            "X-Nvr-Media-Start": f"{chunk.media_start_s:.6f}",
            "X-Nvr-End": f"{chunk.end_utc:.6f}",
            "X-Nvr-Frames": str(chunk.frames),
            "Cache-Control": "no-store",
        }
        if nxt is not None:
            headers["X-Nvr-Next"] = f"{nxt:.6f}"
        if live and nxt is None:  # the file is being written: ask again from the end later
            headers["X-Nvr-Live"] = "1"
        return Response(chunk.data, media_type="video/mp4", headers=headers)

    @api.get(
        "/api/cameras/{camera_id}/preview",
        dependencies=list(auth),
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    def preview(camera_id: CameraPath, at: datetime) -> Response:
        """Small JPEG of the key frame at or before ``at``."""
        known(camera_id)
        t = at.timestamp()
        # A file starting at ``t`` counts despite the float of a wall time (an instant from the
        # catalog's ISO start is rounded to the microsecond; seen: the file before's last key
        # frame, a whole GOP early), as for playback.
        rows = app.storage.catalog.segments(camera_id, t, t + SNAP_TOLERANCE_S)
        rows = [r for r in rows if r.start_utc <= t + SNAP_TOLERANCE_S]
        parts = parts_of(rows)
        if not parts:
            raise HTTPException(404, f"nothing recorded by {camera_id} at {at.isoformat()}")
        part, live = parts[-1]
        # The instant itself, not a step below it: a key frame between the step and the
        # instant would be passed over for the one before (seen: a whole GOP early). A key
        # frame at the instant counts despite the float arithmetic (as for playback).
        offset = max(0.0, min(t - part.start_utc, part.duration_s)) + SNAP_TOLERANCE_S
        key = (str(part.path), round(offset, 3))
        shot = previews.get(key)
        if shot is None:
            try:
                shot = preview_jpeg(part.path, offset) if live else readers.shot(part.path, offset)
            except PreviewError as e:
                raise HTTPException(500, f"no preview of {camera_id} there: {e}") from e
            if not live:  # a file being written may not have the frame yet
                previews.put(key, shot)
        return Response(
            shot.jpeg,
            media_type="image/jpeg",
            headers={
                "X-Nvr-Frame": f"{part.start_utc + shot.frame_s:.6f}",
                "Cache-Control": "no-store" if live else "private, max-age=3600",
            },
        )
