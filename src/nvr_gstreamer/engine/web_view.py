"""The browser live view of one camera (loop thread): a web branch on the camera's tee while
anyone watches, feeding the camera's :class:`LiveHub`, which serves every viewer. From the
camera's ``live_url`` (a sub-stream in a pipeline of its own, retried after
:data:`~nvr_gstreamer.engine.live_view.LIVE_RETRY_S` when it fails) when it has one.

The branch stays :data:`LINGER_S` after the last viewer left: a viewer coming back (paging
through the grid, a reload, the single view and back) starts at once from the hub's GOP
instead of waiting for the next keyframe. After that nothing runs for the camera's browser
view until someone watches again.
"""

from __future__ import annotations

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
)
from nvr_gstreamer.core.logsetup import CameraLogger
from nvr_gstreamer.engine.live_view import LIVE_RETRY_S

LINGER_S = 30.0


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
        self._transport = "tcp"  # how the main stream last worked: the sub-stream goes so too
        self._stream: LiveStreamLike | None = None
        self._retry: Cancellable | None = None
        self.hub = LiveHub()
        self.linger_s = LINGER_S
        self._pipeline: Any = None  # the camera's pipeline while it streams
        self._codec: str | None = None
        self._branch: Any = None
        self._linger: Cancellable | None = None

    @property
    def attached(self) -> bool:
        return self._branch is not None or self._stream is not None

    @property
    def source(self) -> str | None:
        """Where the browser's video comes from: "live_url", "main", or None."""
        if self._stream is not None:
            return "live_url"
        return "main" if self._branch is not None else None

    def owns(self, branch: object) -> bool:
        return branch is not None and branch is self._branch

    def add_viewer(self, deliver: Deliver, caught_up: CaughtUp | None = None) -> int:
        self._stop_linger()
        token = self.hub.add(deliver, caught_up)
        self._attach()
        return token

    def remove_viewer(self, token: int) -> None:
        if self.hub.remove(token) == 0 and self.attached and self._linger is None:
            self._linger = self._scheduler.timeout(self.linger_s, self._unwatched)

    def pipeline_streaming(self, pipeline: Any, codec: str | None, transport: str = "tcp") -> None:
        """The camera's video flows (its codec is known): viewers get it from here."""
        self._pipeline, self._codec, self._transport = pipeline, codec, transport
        self._attach()

    def pipeline_going(self) -> None:
        """The camera's pipeline goes, and the branch with it (a sub-stream is closed too);
        viewers wait for the next."""
        self._stop_linger()
        self._stop_retry()
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

    def _attach(self) -> None:
        if self.attached or self._pipeline is None or self.hub.viewers == 0:
            return
        if self._live_spec is not None:
            spec = replace(self._live_spec, transport=self._transport)
            self._stream = self._media.web_stream(spec, self.hub.feed, self._stream_failed)
            self._stream.start()
            self._log.debug("browser live view on, from live_url")
            return
        if self._codec not in ("h264", "h265"):
            return
        self._branch = self._media.web_branch(self._codec, self.hub.feed)
        self._pipeline.attach(self._branch)
        self._log.debug("browser live view on (%s)", self._codec)

    def _stream_failed(self, why: str) -> None:
        self._log.warning(
            "browser live view (live_url) failed: %s; retrying in %g s", why, LIVE_RETRY_S
        )
        self._stream = None
        self.hub.reset()
        self._on_failed()
        self._stop_retry()
        self._retry = self._scheduler.timeout(LIVE_RETRY_S, self._attach)

    def _stop_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _unwatched(self) -> None:
        self._linger = None
        if self.hub.viewers == 0:
            self._detach()
            self._log.debug("browser live view off: nobody watches")

    def _stop_linger(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _detach(self) -> None:
        self._stop_linger()
        self._stop_retry()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.release()
        branch, self._branch = self._branch, None
        if branch is not None and self._pipeline is not None:
            self._pipeline.detach(branch)
        self.hub.reset()
