"""A Matroska segment's tracks, read from its header alone: no GStreamer, one small read.

Enough EBML to walk to the track list: playback uses it to end a run of segments where the
tracks change (:func:`nvr_gstreamer.storage.footage_runs.runs`), export to see which audio a
run carries.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# Matroska element ids (EBML): enough to list a file's tracks from its header.
_SEGMENT, _TRACKS, _TRACK_ENTRY, _CLUSTER = 0x18538067, 0x1654AE6B, 0xAE, 0x1F43B675
_TRACK_TYPE, _CODEC_ID, _CODEC_PRIVATE = 0x83, 0x86, 0x63A2
_TRACK_KINDS = {1: "video", 2: "audio", 17: "subtitle"}


def _ebml_children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, first byte, end) of each element in ``data[start:end]``; stops where data ends."""
    i = start
    while i < end:
        eid, j, _n = _vint(data, i, keep_marker=True)
        size, k, n = _vint(data, j, keep_marker=False)
        stop = end if size == (1 << (7 * n)) - 1 else min(end, k + size)  # unknown size
        yield eid, k, stop
        i = stop


def _vint(data: bytes, i: int, keep_marker: bool) -> tuple[int, int, int]:
    first = data[i]  # IndexError past the end ends the walk
    n = 1
    while n <= 8 and not first & (0x80 >> (n - 1)):
        n += 1
    value = first if keep_marker else first & ((0x80 >> (n - 1)) - 1)
    for b in data[i + 1 : i + n]:
        value = (value << 8) | b
    if i + n > len(data):
        raise IndexError("element header cut off")
    return value, i + n, n


def track_layout(path: Path, limit_bytes: int = 256 * 1024) -> tuple[tuple[str, str], ...] | None:
    """(kind, Matroska codec id) of each track, in file order, read from the header alone
    (``("video", "V_MPEG4/ISO/AVC"), ("audio", "A_AAC")``...); None if no track list was
    found in the first ``limit_bytes``. Cheap: no GStreamer, one small read."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit_bytes)
        for eid, start, end in _ebml_children(data, 0, len(data)):
            if eid != _SEGMENT:
                continue
            for child, c_start, c_end in _ebml_children(data, start, end):
                if child == _CLUSTER:
                    return None
                if child == _TRACKS and c_end <= len(data):
                    return tuple(
                        _track(data, t_start, t_end)
                        for t_id, t_start, t_end in _ebml_children(data, c_start, c_end)
                        if t_id == _TRACK_ENTRY
                    )
    except (OSError, IndexError):
        return None
    return None


def _track(data: bytes, start: int, end: int) -> tuple[str, str]:
    kind, codec, private = "unknown", "", b""
    for eid, v_start, v_end in _ebml_children(data, start, end):
        if eid == _TRACK_TYPE:
            kind = _TRACK_KINDS.get(int.from_bytes(data[v_start:v_end], "big"), "unknown")
        elif eid == _CODEC_ID:
            codec = data[v_start:v_end].rstrip(b"\0").decode("ascii", "replace")
        elif eid == _CODEC_PRIVATE:
            private = data[v_start:v_end]
    if codec == "A_MS/ACM" and len(private) >= 2:  # WAVEFORMATEX: 6 is A-law, 7 is µ-law
        codec += f"/{int.from_bytes(private[:2], 'little')}"
    return kind, codec
