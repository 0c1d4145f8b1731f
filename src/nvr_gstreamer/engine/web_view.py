"""The browser live view of one camera (loop thread), feeding the camera's :class:`LiveHub`,
which serves every viewer.

From the main stream: a web branch on the camera's tee, attached while the camera streams and
asleep while nobody watches (its queue keeps the last seconds of video, nothing else runs). A
first viewer wakes it; the kept video flows through at once, and the viewer joins the hub once
that backlog is through (:data:`DRAIN_POLL_S`), so it starts from the newest keyframe with a
GOP's frames instead of waiting for the next keyframe, and without a burst of old video. The
last viewer leaving puts it back to sleep.

From the camera's ``live_url`` when it has one: a sub-stream in a pipeline of its own while
someone watches and :data:`LINGER_S` after (a viewer coming back starts at once from the hub's
GOP), retried after :data:`~nvr_gstreamer.engine.live_view.LIVE_RETRY_S` when it fails.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from nvr_gstreamer.camera.live_hub import CaughtUp, Deliver, LiveHub
from nvr_gstreamer.camera.media import (
    Cancellable,
    LiveStreamLike,
    Media,
    PipelineSpec,
    Scheduler,
    WebBranchLike,
)
from nvr_gstreamer.core.logsetup import CameraLogger
from nvr_gstreamer.engine.live_view import LIVE_RETRY_S

LINGER_S = 30.0
DRAIN_POLL_S = 0.01
DRAIN_MAX_POLLS = 50  # half a second at most: a viewer is let in after that in any case


class WebView:
    def __init__(
        self,
        media: Media,
        scheduler: Scheduler,
        log: CameraLogger,
        live_spec: PipelineSpec | None = None,
        on_failed: Callable[[], None] = lambda: None,
    ) -> None:
        self._media = media
        self._scheduler = scheduler
        self._log = log
        self._live_spec = live_spec
        self._on_failed = on_failed
        self.hub = LiveHub()
        self.linger_s = LINGER_S
        self._pipeline: Any = None  # the camera's pipeline while it streams
        self._codec: str | None = None
        self._transport = "tcp"  # how the main stream last worked: the sub-stream goes so too
        self._branch: WebBranchLike | None = None  # from the main stream
        self._stream: LiveStreamLike | None = None  # from live_url
        self._retry: Cancellable | None = None
        self._linger: Cancellable | None = None
        self._tokens = itertools.count(1)
        self._joined: dict[int, int] = {}  # our token → the hub's
        self._waiting: dict[int, tuple[Deliver, CaughtUp | None]] = {}  # until drained
        self._drain: Cancellable | None = None
        self._polls = 0

    @property
    def attached(self) -> bool:
        return self._branch is not None or self._stream is not None

    @property
    def awake(self) -> bool:
        """Video flows to the hub (a woken branch, or the sub-stream)."""
        return self._stream is not None or (self._branch is not None and self._branch.awake)

    @property
    def source(self) -> str | None:
        """Where the browser's video comes from: "live_url", "main", or None."""
        if self._stream is not None:
            return "live_url"
        return "main" if self._branch is not None else None

    @property
    def viewers(self) -> int:
        return len(self._joined) + len(self._waiting)

    def backlog(self) -> int:
        """Frames the branch keeps (asleep) or has still to pass on (just woken)."""
        return self._branch.backlog() if self._branch is not None else 0

    def owns(self, branch: object) -> bool:
        return branch is not None and branch is self._branch

    def add_viewer(self, deliver: Deliver, caught_up: CaughtUp | None = None) -> int:
        self._stop_linger()
        token = next(self._tokens)
        if self._branch is not None and (not self._branch.awake or self._drain is not None):
            self._waiting[token] = (deliver, caught_up)
            self._wake()
        else:
            self._joined[token] = self.hub.add(deliver, caught_up)
            self._attach()
        return token

    def remove_viewer(self, token: int) -> None:
        self._waiting.pop(token, None)
        hub_token = self._joined.pop(token, None)
        if hub_token is not None:
            self.hub.remove(hub_token)
        if self.viewers:
            return
        if self._branch is not None:
            self._sleep()
        elif self._stream is not None and self._linger is None:
            self._linger = self._scheduler.timeout(self.linger_s, self._unwatched)

    def pipeline_streaming(self, pipeline: Any, codec: str | None, transport: str = "tcp") -> None:
        """The camera's video flows (its codec is known): viewers get it from here."""
        self._pipeline, self._codec, self._transport = pipeline, codec, transport
        self._attach()

    def pipeline_going(self) -> None:
        """The camera's pipeline goes, and the branch with it (a sub-stream is closed too);
        viewers wait for the next."""
        self._stop_timers()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.release()
        self._branch = None
        self._pipeline = None
        self.hub.reset()

    def rebuild(self) -> None:
        """The branch failed: a fresh one (the camera and its recording are untouched)."""
        self._detach()
        self._attach()

    # ---- inside -----------------------------------------------------------------------------

    def _attach(self) -> None:
        if self.attached or self._pipeline is None:
            return
        if self._live_spec is not None:
            if self.viewers == 0:
                return
            spec = replace(self._live_spec, transport=self._transport)
            self._stream = self._media.web_stream(spec, self.hub.feed, self._stream_failed)
            self._stream.start()
            self._log.debug("browser live view on, from live_url")
            return
        if self._codec not in ("h264", "h265"):
            return
        self._branch = self._media.web_branch(self._codec, self.hub.feed)
        self._pipeline.attach(self._branch)
        self._log.debug("browser live view ready (%s), asleep", self._codec)
        if self.viewers:
            self._wake()

    def _wake(self) -> None:
        if self._branch is None or self._branch.awake:
            return
        self.hub.drop_gop()  # its streaming thread is held: nothing is fed meanwhile
        self._branch.wake()
        self._polls = 0
        self._drain = self._scheduler.timeout(DRAIN_POLL_S, self._drained)
        self._log.debug("browser live view awake")

    def _drained(self) -> None:
        self._drain = None
        if self._branch is None:
            return
        self._polls += 1
        if self._branch.backlog() > 1 and self._polls < DRAIN_MAX_POLLS:
            self._drain = self._scheduler.timeout(DRAIN_POLL_S, self._drained)
            return
        waiting, self._waiting = self._waiting, {}
        for token, (deliver, caught_up) in waiting.items():
            self._joined[token] = self.hub.add(deliver, caught_up)

    def _sleep(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        if self._branch is not None and self._branch.awake:
            self._branch.sleep()
            self.hub.drop_gop()
            self._log.debug("browser live view asleep: nobody watches")

    def _stream_failed(self, why: str) -> None:
        self._log.warning(
            "browser live view (live_url) failed: %s; retrying in %g s", why, LIVE_RETRY_S
        )
        self._stream = None
        self.hub.reset()
        self._on_failed()
        self._stop_timers()
        self._retry = self._scheduler.timeout(LIVE_RETRY_S, self._attach)

    def _unwatched(self) -> None:
        self._linger = None
        if self.viewers == 0:
            self._detach()
            self._log.debug("browser live view off: nobody watches")

    def _stop_linger(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _stop_timers(self) -> None:
        self._stop_linger()
        for timer in (self._retry, self._drain):
            if timer is not None:
                timer.cancel()
        self._retry = self._drain = None

    def _detach(self) -> None:
        self._stop_timers()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.release()
        branch, self._branch = self._branch, None
        if branch is not None and self._pipeline is not None:
            self._pipeline.detach(branch)
        self.hub.reset()
