"""Motion detection of one camera: the motion view's frames through the detector and the
event tracker, and what comes out to the camera's runtime.

The frames are decoded small and slowly (:data:`MOTION_FORMAT`, ``motion.fps``) by a
:class:`~nvr_gstreamer.engine.live_view.LiveView` of their own: from ``live_url`` when the
camera has one, else a branch on the main stream's tee. A frame arrives on that view's
streaming thread, is looked at there (a fraction of a millisecond: see ``bench/RESULTS.md``)
and dropped; only an event's start and end go to the loop, through ``news``. The peak frame
of an event is kept (a copy) and becomes its thumbnail when the event ends.

Time: a frame is dated by the wall clock when it arrives. With no frames (camera down, view
failed), :meth:`MotionWatch.tick` advances the tracker, so an event still ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nvr_gstreamer.camera.events import (
    EventChange,
    EventEnded,
    EventPeaked,
    EventStarted,
    EventTracker,
)
from nvr_gstreamer.camera.media import LiveFormat, LiveFrame
from nvr_gstreamer.camera.motion import MotionDetector, MotionResult, MotionSettings
from nvr_gstreamer.config import MotionConfig
from nvr_gstreamer.core.clock import Clock
from nvr_gstreamer.core.logsetup import CameraLogger
from nvr_gstreamer.engine.live_view import LiveView
from nvr_gstreamer.gst.stills import StillError, jpeg_of_i420

Box = tuple[float, float, float, float]

# What the motion view decodes to: I420 at the stream's own size (nothing converted or scaled:
# the detector reads every n-th pixel of the Y plane, about DETECT_HEIGHT rows; the thumbnail
# is the whole colour picture), one decoder thread, frames dropped to motion.fps first.
DETECT_HEIGHT = 90
# Without a frame this long, the tracker is told that nothing moves (so an event ends).
_QUIET_AFTER_S = 1.0
# A picture that changed as a whole (recalibrated) is logged at most this often.
_RELEARNT_SAID_EVERY_S = 60.0


def motion_format(config: MotionConfig) -> LiveFormat:
    return LiveFormat(0, 0, config.fps, "I420", decoder_threads=1)


def motion_settings(config: MotionConfig) -> MotionSettings:
    return MotionSettings(
        threshold=config.threshold,
        min_area=config.min_area,
        masks=tuple(tuple((x, y) for x, y in polygon) for polygon in config.masks),
    )


@dataclass(frozen=True, slots=True)
class MotionStarted:
    event_id: int
    start_utc: float
    score: float
    boxes: tuple[Box, ...]


@dataclass(frozen=True, slots=True)
class MotionEnded:
    event_id: int
    start_utc: float
    end_utc: float
    score: float  # the peak
    peak_utc: float
    boxes: tuple[Box, ...]  # at the peak
    reason: str
    thumbnail: bytes | None  # JPEG of the peak frame


MotionNews = MotionStarted | MotionEnded


class MotionWatch:
    def __init__(
        self,
        config: MotionConfig,
        view: LiveView,
        clock: Clock,
        new_id: Callable[[], int],
        news: Callable[[MotionNews], None],
        log: CameraLogger,
    ) -> None:
        """``news`` is called on the view's streaming thread (or the caller's, for
        :meth:`tick` and :meth:`stop`); it must hand the news to its own thread."""
        self._view = view
        self._clock = clock
        self._new_id = new_id
        self._news = news
        self._log = log
        self._settings = motion_settings(config)
        self._detector: MotionDetector | None = None  # made for the first frame's size
        self._size = (0, 0, 1)  # decoded width, height, and the step between pixels looked at
        self._tracker = EventTracker(config.off_delay_seconds, config.max_event_seconds)
        self._lock = threading.Lock()  # the tracker: frames (streaming) vs tick/stop (loop)
        self._token: int | None = None
        self._event_id: int | None = None
        self._peak_frame: LiveFrame | None = None
        self._peak_boxes: tuple[Box, ...] = ()
        self._last_frame_at: float | None = None
        self._last_t = 0.0  # the tracker's time never goes back (the wall clock may)
        self._relearnt_said = -_RELEARNT_SAID_EVERY_S
        self.frames = 0
        self.recalibrations = 0  # frames that changed as a whole (not motion: learnt anew)

    @property
    def active(self) -> bool:
        """An event goes on."""
        return self._event_id is not None

    def start(self) -> None:
        """Loop thread: look at the camera's frames from now on."""
        if self._token is None:
            self._token = self._view.add_viewer(self._frame)

    def stop(self) -> None:
        """Loop thread: stop looking; an event going on ends now."""
        if self._token is not None:
            self._view.remove_viewer(self._token)
            self._token = None
        with self._lock:
            end = self._tracker.close(self._time())
            if self._detector is not None:
                self._detector.reset()
            self._last_frame_at = None
        if end is not None:
            self._emit([end])

    def tick(self) -> None:
        """Loop thread (the engine's poll): no frames for a while counts as no motion."""
        with self._lock:
            now = self._time()
            last = self._last_frame_at
            if last is not None and now - last < _QUIET_AFTER_S:
                return
            out = self._tracker.update(MotionResult(now, 0.0))
            if self._detector is not None:
                self._detector.reset()  # the next frame starts a fresh average
        self._emit(out)

    # ---- the view's streaming thread ------------------------------------------------------

    def _time(self) -> float:
        """Now (wall clock, held under the lock), never before the tracker's last time."""
        self._last_t = max(self._last_t, self._clock.wall().timestamp())
        return self._last_t

    def _frame(self, frame: LiveFrame) -> None:
        w, h = frame.width, frame.height
        stride = (w + 3) & ~3  # GStreamer's I420: rows of the Y plane padded to 4 bytes
        if frame.format != "I420" or h < 2 or len(frame.data) < stride * h:
            return
        step = max(1, h // DETECT_HEIGHT)
        luma = np.frombuffer(frame.data, np.uint8, count=stride * h).reshape(h, stride)
        small = np.ascontiguousarray(luma[: h - h % step : step, : w - w % step : step])
        with self._lock:
            now = self._time()
            self.frames += 1
            self._last_frame_at = now
            if self._detector is None or self._size != (w, h, step):
                self._size = (w, h, step)
                self._detector = MotionDetector(w // step, h // step, self._settings)
            result = self._detector.feed(small, now)
            out = self._tracker.update(result)
            for item in out:
                if isinstance(item, EventPeaked):
                    self._peak_frame = frame  # frames are immutable copies: keep a reference
                    self._peak_boxes = item.boxes
            self.recalibrations += result.recalibrated
            relearnt = result.recalibrated and now - self._relearnt_said >= _RELEARNT_SAID_EVERY_S
            if relearnt:
                self._relearnt_said = now
        if relearnt:  # a user who misses an event can see why (lights, infrared, a moved camera)
            self._log.info(
                "motion: the whole picture changed at once; not motion, the scene is learnt "
                "anew (said at most every %.0f s)",
                _RELEARNT_SAID_EVERY_S,
            )
        self._emit(out)

    def _emit(self, items: list[EventChange] | list[EventEnded]) -> None:
        for item in items:
            if isinstance(item, EventStarted):
                self._event_id = self._new_id()
                self._news(MotionStarted(self._event_id, item.start, item.score, item.boxes))
            elif isinstance(item, EventEnded) and self._event_id is not None:
                event_id, self._event_id = self._event_id, None
                frame, self._peak_frame = self._peak_frame, None
                self._news(
                    MotionEnded(
                        event_id, item.start, item.end, item.peak_score, item.peak_t,
                        self._peak_boxes, item.reason.value, self._thumbnail(frame),
                    )
                )  # fmt: skip

    def _thumbnail(self, frame: LiveFrame | None) -> bytes | None:
        if frame is None:
            return None
        try:
            return jpeg_of_i420(frame.width, frame.height, frame.data)
        except StillError as e:
            self._log.warning("no thumbnail for the motion event: %s", e)
            return None
