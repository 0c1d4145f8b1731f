"""A segment in object storage served over HTTP like a local file: whole, or the byte range
the client asks for (players and browsers seek by ranges)."""

from __future__ import annotations

import re

from fastapi import HTTPException
from fastapi.responses import StreamingResponse

from nvr_gstreamer.core.redact import redact
from nvr_gstreamer.storage.remote import S3_ERRORS, ObjectStore

__all__ = ["byte_range", "object_response"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive of a single ``Range: bytes=`` header; None: the whole file.
    Raises ValueError for a range that cannot be served."""
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or (not m[1] and not m[2]):
        raise ValueError(header)
    if not m[1]:  # the last N bytes
        n = int(m[2])
        if n == 0:
            raise ValueError(header)
        return max(0, size - n), size - 1
    first = int(m[1])
    last = min(int(m[2]), size - 1) if m[2] else size - 1
    if first >= size or last < first:
        raise ValueError(header)
    return first, last


def object_response(
    store: ObjectStore, key: str, filename: str, range_header: str | None
) -> StreamingResponse:
    try:
        size = store.size(key)
    except S3_ERRORS as exc:
        raise HTTPException(503, f"object storage unavailable now: {redact(str(exc))}") from None
    try:
        span = byte_range(range_header, size)
    except ValueError:
        raise HTTPException(
            416, f"range {range_header!r} not satisfiable", {"Content-Range": f"bytes */{size}"}
        ) from None
    first, last = span if span is not None else (0, size - 1)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(last - first + 1),
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        store.read(key, first, last) if size else iter(()),
        status_code=206 if span is not None else 200,
        media_type="video/x-matroska",
        headers=headers,
    )
