"""Motion events: a pure state machine that turns motion results into events.

Results in (one :class:`~nvr_gstreamer.camera.motion.MotionResult` a frame), events out
(:class:`EventStarted`, :class:`EventPeaked`, :class:`EventEnded`). Time comes only from the
results; a result older than the one before is a ``ValueError`` (the caller mixed up clocks).

* **Start.** A result with motion starts an event at its time. Recalibrated results have no
  motion and start nothing. With ``min_length_s``, the event is tentative until its motion has
  spanned that long: :class:`EventStarted` (with the start of its first motion) comes then, and
  a tentative event whose motion stops sooner is dropped without a word.
* **End.** An event ends at the time of its last motion. That is known once ``off_delay_s`` has
  passed without motion: the first result that shows it emits :class:`EventEnded`
  (``MOTION_STOPPED``). Gaps shorter than ``off_delay_s`` do not split an event.
* **Capped length.** Motion at ``max_length_s`` or more after an event's start ends that event
  at its motion before (``MAX_LENGTH``) and starts the next one with this result, so a scene
  that never settles makes a chain of events, each shorter than ``max_length_s``.
* **Peak.** Each event remembers its peak (highest score), its number of frames with motion
  and the union of its boxes. :class:`EventPeaked` says "this result is the event's new peak":
  the caller keeps that frame for the thumbnail. Its first motion frame is the first peak; a
  tentative event's peaks come before its :class:`EventStarted`, under the id it will have
  (a dropped event's id goes to the next).
* **Close.** :meth:`EventTracker.close` (camera stopped, shutdown) ends the event in progress
  at once, still at its last motion (``CLOSED``, or ``MOTION_STOPPED`` if the off delay has
  passed anyway); a tentative one is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from nvr_gstreamer.camera.motion import Box, MotionResult


class EndReason(Enum):
    MOTION_STOPPED = "motion_stopped"  # off_delay_s without motion
    MAX_LENGTH = "max_length"  # the motion went on: the next event has started
    CLOSED = "closed"  # the camera stopped, or the recorder


@dataclass(frozen=True, slots=True)
class EventStarted:
    event_id: int
    start: float  # the time of the event's first motion
    score: float  # of that first motion result
    boxes: tuple[Box, ...]


@dataclass(frozen=True, slots=True)
class EventPeaked:
    """The result at ``t`` is the event's highest score so far: keep its frame."""

    event_id: int
    t: float
    score: float
    boxes: tuple[Box, ...]


@dataclass(frozen=True, slots=True)
class EventEnded:
    event_id: int
    start: float
    end: float  # the time of the event's last motion
    reason: EndReason
    peak_score: float
    peak_t: float
    motion_frames: int  # results with motion in the event
    area: Box  # the union of all its boxes


EventChange = EventStarted | EventPeaked | EventEnded


class _Event:
    """The event in progress (mutable, private)."""

    __slots__ = ("area", "event_id", "first", "last_motion", "motion_frames", "peak", "started")

    def __init__(self, event_id: int, first: MotionResult) -> None:
        self.event_id = event_id
        self.first = first
        self.started = False  # EventStarted was emitted (its motion spans min_length_s)
        self.peak = first
        self.last_motion = first.t
        self.motion_frames = 1
        self.area = _union(first.boxes)

    def add(self, result: MotionResult) -> bool:
        """Count one more result with motion; True if it is the new peak."""
        self.last_motion = result.t
        self.motion_frames += 1
        self.area = _union((self.area, *result.boxes))
        if result.score <= self.peak.score:
            return False
        self.peak = result
        return True

    def ended(self, reason: EndReason) -> EventEnded:
        return EventEnded(
            self.event_id,
            self.first.t,
            self.last_motion,
            reason,
            self.peak.score,
            self.peak.t,
            self.motion_frames,
            self.area,
        )


def _union(boxes: Sequence[Box]) -> Box:
    left = min(x for x, _, _, _ in boxes)
    top = min(y for _, y, _, _ in boxes)
    right = max(x + w for x, _, w, _ in boxes)
    bottom = max(y + h for _, y, _, h in boxes)
    return (left, top, right - left, bottom - top)


class EventTracker:
    def __init__(self, off_delay_s: float, max_length_s: float, min_length_s: float = 0.0) -> None:
        if not off_delay_s > 0.0:
            raise ValueError(f"off_delay_s must be more than 0, not {off_delay_s}")
        if not 0.0 <= min_length_s < max_length_s:
            raise ValueError(
                f"need 0 <= min_length_s < max_length_s, not {min_length_s} and {max_length_s}"
            )
        self._off_delay_s = off_delay_s
        self._max_length_s = max_length_s
        self._min_length_s = min_length_s
        self._event: _Event | None = None
        self._next_id = 1
        self._last_t = -math.inf

    def update(self, result: MotionResult) -> list[EventChange]:
        t = result.t
        self._advance(t)
        out: list[EventChange] = []
        event = self._event
        reason = None if event is None else self._end_reason(event, result)
        if event is not None and reason is not None:
            out.extend(self._finish(event, reason))
            event = None
        if not result.motion:
            return out
        if event is None:
            event = self._event = _Event(self._next_id, result)
            peaked = True
        else:
            peaked = event.add(result)
        if not event.started and t - event.first.t >= self._min_length_s:
            event.started = True
            self._next_id += 1
            first = event.first
            out.append(EventStarted(event.event_id, first.t, first.score, first.boxes))
        if peaked:
            out.append(EventPeaked(event.event_id, t, result.score, result.boxes))
        return out

    def close(self, t: float) -> EventEnded | None:
        """End the event in progress (the camera stops); None if there is none to report."""
        self._advance(t)
        event = self._event
        if event is None:
            return None
        quiet = t - event.last_motion >= self._off_delay_s
        ended = self._finish(event, EndReason.MOTION_STOPPED if quiet else EndReason.CLOSED)
        return ended[0] if ended else None

    def _end_reason(self, event: _Event, result: MotionResult) -> EndReason | None:
        """Why this result ends the event, if it does."""
        if result.t - event.last_motion >= self._off_delay_s:
            return EndReason.MOTION_STOPPED
        if result.motion and result.t - event.first.t >= self._max_length_s:
            return EndReason.MAX_LENGTH
        return None

    def _advance(self, t: float) -> None:
        if not t >= self._last_t:  # (NaN too)
            raise ValueError(f"time {t} s is before the previous result's {self._last_t} s")
        self._last_t = t

    def _finish(self, event: _Event, reason: EndReason) -> list[EventEnded]:
        """Forget the event; its end if it had started (a tentative one ends unseen)."""
        self._event = None
        return [event.ended(reason)] if event.started else []
