"""Runs of recorded segments that play as one stream, and their offset ↔ wall-clock mapping.

``splitmuxsrc`` (:mod:`nvr_gstreamer.gst.footage`) reads a list of segment files as one
stream, laid back to back, so playback crosses a segment boundary without a jump and a seek
can land in any file. A :class:`Footage` maps between that stream's offset and wall-clock
time (each part's catalogued start and duration); :func:`runs` splits a day's segments where
they cannot play as one (a gap, too many files, the tracks change). Pure: no GStreamer.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nvr_gstreamer.storage.catalog import SegmentRow, SegmentStatus

CONTIGUOUS_S = 2.0  # parts closer than this play as one run


@dataclass(frozen=True, slots=True)
class Part:
    path: Path
    start_utc: float
    duration_s: float

    @property
    def end_utc(self) -> float:
        return self.start_utc + self.duration_s


def closed_parts(rows: Iterable[SegmentRow], root: Path) -> list[Part]:
    """The catalogued segments that can be read as footage: closed or recovered, with a
    duration (the one being written is not, until it closes)."""
    return [
        Part(root / r.path, r.start_utc, r.duration_s)
        for r in rows
        if r.status is not SegmentStatus.RECORDING and r.duration_s
    ]


class Footage:
    """Parts in time order, and the mapping between stream offset and wall-clock time."""

    def __init__(self, parts: Sequence[Part]) -> None:
        if not parts:
            raise ValueError("no footage")
        self.parts = tuple(sorted(parts, key=lambda p: p.start_utc))
        self._offsets: list[float] = []
        total = 0.0
        for p in self.parts:
            self._offsets.append(total)
            total += p.duration_s
        self.duration_s = total

    @property
    def start_utc(self) -> float:
        return self.parts[0].start_utc

    @property
    def end_utc(self) -> float:
        return self.parts[-1].end_utc

    def offset_of(self, wall: float) -> float:
        """Stream offset showing ``wall``; a time in a gap maps to the next part's start."""
        starts = [p.start_utc for p in self.parts]
        i = max(0, bisect.bisect_right(starts, wall) - 1)
        part = self.parts[i]
        if wall >= part.end_utc and i + 1 < len(self.parts):
            return self._offsets[i + 1]
        return self._offsets[i] + min(max(0.0, wall - part.start_utc), part.duration_s)

    def wall_of(self, offset: float) -> float:
        i = max(0, bisect.bisect_right(self._offsets, offset) - 1)
        return self.parts[i].start_utc + (offset - self._offsets[i])


def runs(
    parts: Sequence[Part],
    max_parts: int = 60,
    layout_of: Callable[[Path], object] | None = None,
) -> list[Footage]:
    """Split parts into runs that play without a gap (and bound the files opened at once).
    With ``layout_of`` (a file's tracks, e.g. :func:`~nvr_gstreamer.storage.matroska.track_layout`),
    a run also ends where the tracks change (audio that stopped or began between files):
    splitmuxsrc takes its streams from a run's first file and cannot read on past such a
    change. None means unknown."""
    out: list[Footage] = []
    current: list[Part] = []
    last_layout: object = None
    for p in sorted(parts, key=lambda p: p.start_utc):
        layout = layout_of(p.path) if layout_of is not None else None
        changed = layout is not None and last_layout is not None and layout != last_layout
        if current and (
            p.start_utc - current[-1].end_utc > CONTIGUOUS_S or len(current) >= max_parts or changed
        ):
            out.append(Footage(current))
            current = []
        current.append(p)
        last_layout = layout if layout is not None else last_layout
    if current:
        out.append(Footage(current))
    return out
