"""The browser live view of one camera (loop thread): which sink serves its viewers' sockets.

From the main stream: a web branch on the camera's tee (``nvrlivesink``), attached whenever the
camera streams, watched or not: unwatched it only keeps the current GOP, so a first viewer
starts at once. From the camera's ``live_url`` when it has one: a sub-stream in a pipeline of its
own while someone watches and :data:`LINGER_S` after, retried after
:data:`~nvr_gstreamer.engine.live_view.LIVE_RETRY_S` when it fails.

A viewer is a socket descriptor the view owns (the web server hands over a duplicate). Each sink
gets a duplicate of its own, which the sink closes when the viewer is taken back; so when the
camera's pipeline is rebuilt, every viewer is handed to the new sink and sees the new stream.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from nvr_gstreamer.camera.media import (
    CameraPipelineLike,
    Cancellable,
    Media,
    PipelineSpec,
    Scheduler,
    WebSinkLike,
    WebStreamLike,
)
from nvr_gstreamer.core.logsetup import CameraLogger
from nvr_gstreamer.engine.live_view import LIVE_RETRY_S, SilenceWatch

LINGER_S = 30.0

Dup = Callable[[int], int]
Close = Callable[[int], None]


@dataclass(slots=True)
class _Viewer:
    fd: int  # ours
    given: int | None = None  # the duplicate the current sink owns


class WebView:
    def __init__(
        self,
        media: Media,
        scheduler: Scheduler,
        log: CameraLogger,
        live_spec: PipelineSpec | None = None,
        on_failed: Callable[[], None] = lambda: None,
        dup: Dup = os.dup,
        close: Close = os.close,
    ) -> None:
        self._media = media
        self._scheduler = scheduler
        self._log = log
        self._live_spec = live_spec
        self._on_failed = on_failed
        self._dup = dup
        self._close = close
        self.linger_s = LINGER_S
        self._pipeline: CameraPipelineLike | None = None  # while the camera streams
        self._codec: str | None = None
        self._transport = "tcp"  # how the main stream last worked: the sub-stream goes so too
        self._branch: WebSinkLike | None = None  # from the main stream
        self._stream: WebStreamLike | None = None  # from live_url
        self._retry: Cancellable | None = None
        self._linger: Cancellable | None = None
        self._tokens = itertools.count(1)
        self._viewers: dict[int, _Viewer] = {}
        self._silence = SilenceWatch()

    @property
    def attached(self) -> bool:
        return self._sink is not None

    @property
    def source(self) -> str | None:
        """Where the browser's video comes from: "live_url", "main", or None."""
        if self._stream is not None:
            return "live_url"
        return "main" if self._branch is not None else None

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    @property
    def _sink(self) -> WebSinkLike | None:
        return self._stream if self._stream is not None else self._branch

    def owns(self, branch: object) -> bool:
        return branch is not None and branch is self._branch

    def add_viewer(self, fd: int) -> int:
        """A viewer's socket; the view owns ``fd`` from now on (closed by :meth:`remove_viewer`)."""
        self._stop_linger()
        token = next(self._tokens)
        viewer = _Viewer(fd)
        self._viewers[token] = viewer
        if self._sink is not None:
            self._hand(viewer)
        else:
            self._attach()
        return token

    def remove_viewer(self, token: int) -> None:
        viewer = self._viewers.pop(token, None)
        if viewer is None:
            return
        self._take_back(viewer)
        self._close(viewer.fd)
        if not self._viewers and self._stream is not None and self._linger is None:
            self._linger = self._scheduler.timeout(self.linger_s, self._unwatched)

    def pipeline_streaming(
        self, pipeline: CameraPipelineLike, codec: str | None, transport: str = "tcp"
    ) -> None:
        """The camera's video flows (its codec is known): viewers get it from here."""
        self._pipeline, self._codec, self._transport = pipeline, codec, transport
        self._attach()

    def pipeline_going(self) -> None:
        """The camera's pipeline goes, and the branch with it (a sub-stream is closed too);
        viewers wait for the next."""
        self._detach()
        self._pipeline = None

    def check_stall(self, now: float, stall_s: float, connect_s: float) -> None:
        """Loop thread, from the camera's poll: a ``live_url`` sub-stream that brings no frame
        for ``stall_s`` (``connect_s`` before its first) is closed and tried again after
        :data:`LIVE_RETRY_S`, as the decoded view's is; the branch on the main stream is
        covered by the camera's own watchdog."""
        stream = self._stream
        if stream is None:
            return
        silent = self._silence.stalled(stream.frames, now, stall_s, connect_s)
        if silent is not None:
            self._stream_failed(f"no video for {silent:.1f} s (stalled)")

    def rebuild(self) -> None:
        """The branch failed: a fresh one (the camera and its recording are untouched)."""
        self._detach()
        self._attach()

    # ---- inside -----------------------------------------------------------------------------

    def _hand(self, viewer: _Viewer) -> None:
        sink = self._sink
        if sink is not None and viewer.given is None:
            viewer.given = self._dup(viewer.fd)
            sink.add_client(viewer.given)

    def _take_back(self, viewer: _Viewer) -> None:
        sink, given, viewer.given = self._sink, viewer.given, None
        if sink is not None and given is not None:
            sink.remove_client(given)

    def _attach(self) -> None:
        if self.attached or self._pipeline is None:
            return
        if self._live_spec is not None:
            if not self._viewers:
                return
            spec = replace(self._live_spec, transport=self._transport)
            stream = self._media.web_stream(spec, self._stream_failed)
            self._stream = stream
            self._silence.restart(stream.frames)
            stream.start()
            self._log.debug("browser live view on, from live_url")
        elif self._codec in ("h264", "h265"):
            branch = self._media.web_branch()
            self._branch = branch
            self._pipeline.attach(branch)
            self._log.debug("browser live view ready (%s)", self._codec)
        for viewer in self._viewers.values():
            self._hand(viewer)

    def _stream_failed(self, why: str) -> None:
        self._log.warning(
            "browser live view (live_url) failed: %s; retrying in %g s", why, LIVE_RETRY_S
        )
        self._detach()
        self._on_failed()
        self._retry = self._scheduler.timeout(LIVE_RETRY_S, self._attach)

    def _unwatched(self) -> None:
        self._linger = None
        if not self._viewers:
            self._detach()
            self._log.debug("browser live view off: nobody watches")

    def _stop_linger(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _stop_timers(self) -> None:
        self._stop_linger()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _detach(self) -> None:
        self._stop_timers()
        for viewer in self._viewers.values():
            self._take_back(viewer)
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.release()
        branch, self._branch = self._branch, None
        if branch is not None and self._pipeline is not None:
            self._pipeline.detach(branch)
