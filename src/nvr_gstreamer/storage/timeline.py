"""A camera's timeline: where there is footage, and why there is none everywhere else. Pure.

The catalog keeps three kinds of facts, and :func:`build_timeline` turns them into what a
user sees:

* **segments** — footage, from the first to the last frame of each file;
* **interruptions** — spans when the recorder knew it was not recording a camera, and why
  (camera down, recording switched off, storage unavailable, disk full);
* **runs** — spans when the recorder process was running (a heartbeat keeps each run's end
  current; start-up recovery extends a crashed run to its last written frame).

Guarantees, for any facts (property-tested in ``tests/unit/test_timeline.py``):

* footage spans and gaps partition ``[start, horizon)``, where the horizon is the end of the
  range or *now*, whichever is earlier (the future is neither footage nor a gap);
* holes between files shorter than ``min_gap_s`` (a frame interval at a file boundary) are
  footage, every other hole is one or more gaps of positive length, and two adjacent gaps never
  share a reason;
* ``nvr_stopped`` is given only where no run of the recorder covers the instant;
* an outage starts at the last frame: time the recorder was running without footage and
  without a recorded reason (the seconds before a stall or a dead connection was noticed) takes
  the reason of the interruption that follows it in the same hole, else of the one before it,
  else ``camera_down`` (a camera that delivered nothing while it was wanted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from itertools import pairwise
from typing import TypeVar


class GapReason(Enum):
    CAMERA_DOWN = "camera_down"
    RECORDING_OFF = "recording_off"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    DISK_FULL = "disk_full"
    NVR_STOPPED = "nvr_stopped"  # the recorder was not running
    NO_MOTION = "no_motion"  # record_mode events: nothing moved
    FAILOVER = "failover"  # its recorder node was lost; another node took the camera over


@dataclass(frozen=True, slots=True)
class Interruption:
    reason: GapReason
    start_utc: float
    end_utc: float | None  # None: still going on


@dataclass(frozen=True, slots=True)
class Gap:
    camera: str
    start_utc: float
    end_utc: float
    reason: GapReason


Span = tuple[float, float]
T = TypeVar("T")


def day_bounds(day: date) -> tuple[float, float]:
    """Local midnight to the next local midnight, as UTC timestamps (23 or 25 hours on the
    days the clocks change)."""
    start = datetime.combine(day, time()).astimezone()
    end = datetime.combine(day + timedelta(days=1), time()).astimezone()
    return start.timestamp(), end.timestamp()


def footage_spans(
    segments: Iterable[tuple[float, float | None]], now: float, min_gap_s: float
) -> list[Span]:
    """Merged (start, end) of footage: overlapping files joined, holes shorter than
    ``min_gap_s`` bridged. A file still being written (end None) reaches ``now``."""
    ends = ((s, now if e is None else e) for s, e in segments)
    spans = sorted((s, e) for s, e in ends if e > s)  # a file of no duration covers no time
    out: list[Span] = []
    for s, e in spans:
        if out and s - out[-1][1] < min_gap_s:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def sorted_footage(
    segments: Iterable[tuple[float, float | None]], now: float, min_gap_s: float, since: float
) -> tuple[list[Span], int]:
    """:func:`footage_spans` of segments given in order of start (as the catalog's index
    yields them), in one pass that holds none of them; and how many of them end after
    ``since`` (a file still being written ends now)."""
    out: list[Span] = []
    count = 0
    first = last = 0.0  # the span being merged, when ``out`` holds its start
    merging = False
    for s, end in segments:
        e = now if end is None else end
        if e > since:
            count += 1
        if e <= s:
            continue  # a file of no duration covers no time
        if merging and s - last < min_gap_s:
            if e > last:
                last = e
        else:
            if merging:
                out.append((first, last))
            first, last, merging = s, e, True
    if merging:
        out.append((first, last))
    return out, count


def _clip(spans: Iterable[Span], start: float, end: float) -> list[Span]:
    return [(max(s, start), min(e, end)) for s, e in spans if min(e, end) > max(s, start)]


def _holes(footage: Sequence[Span], start: float, end: float) -> list[Span]:
    holes: list[Span] = []
    cursor = start
    for s, e in footage:
        if s > cursor:
            holes.append((cursor, s))
        cursor = max(cursor, e)
    if end > cursor:
        holes.append((cursor, end))
    return holes


def _near(
    holes: Sequence[Span],
    items: Sequence[T],
    start_of: Callable[[T], float],
    end_of: Callable[[T], float],
) -> Iterator[list[T]]:
    """For each hole (in order, disjoint), the items that may overlap it (begun before its
    end, ended after its start), in their given order. One sweep: a week of a camera that
    reconnected every few minutes has thousands of holes and as many interruptions."""
    order = sorted(range(len(items)), key=lambda i: start_of(items[i]))
    active: list[int] = []
    k = 0
    for a, b in holes:
        while k < len(order) and start_of(items[order[k]]) < b:
            active.append(order[k])
            k += 1
        active = [i for i in active if end_of(items[i]) > a]  # ended: for every later hole too
        yield [items[i] for i in sorted(active)]


def _covering(
    x: float, y: float, spans: Sequence[tuple[GapReason, float, float]]
) -> GapReason | None:
    """The reason of the latest-begun interruption covering all of [x, y]."""
    best: tuple[float, GapReason] | None = None
    for reason, s, e in spans:
        if s <= x and e >= y and (best is None or s >= best[0]):
            best = (s, reason)
    return best[1] if best else None


def _explain_hole(
    a: float,
    b: float,
    interruptions: Sequence[tuple[GapReason, float, float]],
    runs: Sequence[Span],
) -> list[tuple[GapReason, float, float]]:
    inside = [(r, max(s, a), min(e, b)) for r, s, e in interruptions if min(e, b) > max(s, a)]
    running = _clip(runs, a, b)
    cuts = {a, b}
    for _r, s, e in inside:
        cuts.update((s, e))
    for s, e in running:
        cuts.update((s, e))
    points = sorted(cuts)
    # Elementary pieces: an interruption's reason, NVR_STOPPED outside every run, or None
    # (running, no footage, no recorded reason) to be resolved from the neighbours.
    pieces: list[tuple[GapReason | None, float, float]] = []
    for x, y in pairwise(points):
        reason = _covering(x, y, inside)
        if reason is None and not any(s <= x and e >= y for s, e in running):
            reason = GapReason.NVR_STOPPED
        pieces.append((reason, x, y))
    resolved: list[tuple[GapReason, float, float]] = []
    for i, (reason, x, y) in enumerate(pieces):
        if reason is None:
            reason = _unexplained(pieces, i)
        resolved.append((reason, x, y))
    return resolved


def _is_interruption(reason: GapReason | None) -> bool:
    return reason is not None and reason is not GapReason.NVR_STOPPED


def _unexplained(pieces: Sequence[tuple[GapReason | None, float, float]], i: int) -> GapReason:
    """The reason for time the recorder ran without footage and without a recorded reason."""
    after = pieces[i + 1][0] if i + 1 < len(pieces) else None
    before = pieces[i - 1][0] if i > 0 else None
    if _is_interruption(after):
        assert after is not None
        return after  # the seconds before an outage was noticed belong to it
    if _is_interruption(before):
        assert before is not None
        return before
    return GapReason.CAMERA_DOWN


def _merge(gaps: Iterable[tuple[GapReason, float, float]]) -> list[tuple[GapReason, float, float]]:
    out: list[tuple[GapReason, float, float]] = []
    for reason, s, e in gaps:
        if e <= s:
            continue
        if out and out[-1][0] is reason and out[-1][2] >= s:
            out[-1] = (reason, out[-1][1], max(out[-1][2], e))
        else:
            out.append((reason, s, e))
    return out


def build_gaps(
    camera: str,
    start_utc: float,
    end_utc: float,
    segments: Iterable[tuple[float, float | None]],
    interruptions: Iterable[Interruption],
    runs: Iterable[tuple[float, float]],
    now_utc: float,
    min_gap_s: float = 2.0,
) -> tuple[list[Span], list[Gap]]:
    """(footage spans, gaps) of ``[start_utc, min(end_utc, now_utc))``; see the module doc.
    ``segments`` should include files that end up to ``min_gap_s`` before the range, so a
    file boundary at the range's start is not mistaken for a gap."""
    horizon = min(end_utc, now_utc)
    if horizon <= start_utc:
        return [], []
    footage_all = footage_spans(segments, now_utc, min_gap_s)
    footage = _clip(footage_all, start_utc, horizon)
    spans = [
        (i.reason, i.start_utc, now_utc if i.end_utc is None else max(i.start_utc, i.end_utc))
        for i in interruptions
    ]
    run_spans = [(s, max(s, e)) for s, e in runs]
    holes = _holes(footage, start_utc, horizon)
    near = _near(holes, spans, lambda x: x[1], lambda x: x[2])
    running = _near(holes, run_spans, lambda x: x[0], lambda x: x[1])
    gaps: list[Gap] = []
    for (a, b), hole_spans, hole_runs in zip(holes, near, running, strict=True):
        for reason, s, e in _merge(_explain_hole(a, b, hole_spans, hole_runs)):
            gaps.append(Gap(camera, s, e, reason))
    return footage, gaps
