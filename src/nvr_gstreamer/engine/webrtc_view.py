"""The WebRTC live views of one camera (loop thread): a branch per browser on the camera's tee.

A viewer joins with a thread-safe ``send`` for what the server says (:mod:`..camera.webrtc`).
While the camera streams H.264 it gets its own branch (the branch makes the offer); a camera in
another codec answers "unsupported" (the page uses MSE). A viewer that joins before the camera
streams waits for it. The session ends (the viewer hears :class:`Ended` and is forgotten) when
the camera's pipeline goes or the branch fails; neither ever disturbs the camera or its
recording. :class:`WebRtcSession` is the handle the API holds: its calls hop onto the loop.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from nvr_gstreamer.camera.media import Media, Scheduler
from nvr_gstreamer.camera.webrtc import (
    WEBRTC_CODECS,
    Answer,
    BrowserMessage,
    Ended,
    IceCandidate,
    SendSignal,
)
from nvr_gstreamer.core.logsetup import CameraLogger


@dataclass(slots=True)
class _Viewer:
    send: SendSignal
    branch: Any = None  # attached to the current pipeline


class WebRtcView:
    def __init__(self, media: Media, log: CameraLogger) -> None:
        self._media = media
        self._log = log
        self._viewers: dict[int, _Viewer] = {}
        self._pipeline: Any = None  # the camera's pipeline while it streams
        self._codec: str | None = None
        # Detached branches still finishing: a late fault of theirs is theirs, not the
        # desktop live view's.
        self._gone: weakref.WeakSet[Any] = weakref.WeakSet()

    @property
    def branches(self) -> int:
        """How many branches are attached now."""
        return sum(1 for v in self._viewers.values() if v.branch is not None)

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def owns(self, branch: object) -> bool:
        if branch is None:
            return False
        return branch in self._gone or any(v.branch is branch for v in self._viewers.values())

    def add_viewer(self, token: int, send: SendSignal) -> None:
        self._viewers[token] = _Viewer(send)
        self._attach(token)

    def remove_viewer(self, token: int) -> None:
        viewer = self._viewers.pop(token, None)
        if viewer is not None:
            self._detach(viewer, "viewer left")

    def from_browser(self, token: int, message: BrowserMessage) -> None:
        viewer = self._viewers.get(token)
        if viewer is None or viewer.branch is None:
            return  # ended already (the browser hears it), or a message before the offer
        if isinstance(message, Answer):
            if not viewer.branch.set_answer(message.sdp):
                self._end(token, "the answer is not valid SDP")
        elif isinstance(message, IceCandidate):
            viewer.branch.add_ice(message)

    def pipeline_streaming(self, pipeline: Any, codec: str | None) -> None:
        """The camera's video flows (its codec is known): waiting viewers start."""
        self._pipeline, self._codec = pipeline, codec
        for token in list(self._viewers):
            self._attach(token)

    def pipeline_going(self) -> None:
        """The camera's pipeline goes, and the branches with it (release finishes them):
        their sessions end; viewers that still wait keep waiting."""
        self._pipeline = None
        for token, viewer in list(self._viewers.items()):
            if viewer.branch is not None:
                self._gone.add(viewer.branch)
                viewer.branch = None
                self._end(token, "the camera's stream restarted")

    def branch_failed(self, branch: object, why: str) -> None:
        """A fault of one viewer's branch: that session ends, nothing else."""
        for token, viewer in list(self._viewers.items()):
            if viewer.branch is branch:
                self._detach(viewer, f"branch failed: {why}")
                self._end(token, "the live stream failed")

    def _attach(self, token: int) -> None:
        viewer = self._viewers[token]
        if viewer.branch is not None:
            return
        # The codec is known while the camera streams, and kept while it reconnects: a viewer
        # of an H.265 camera hears "unsupported" at once, not after its first-frame timeout.
        known = self._pipeline is not None or self._codec is not None
        if known and self._codec not in WEBRTC_CODECS:
            self._end(token, f"no WebRTC for {self._codec or 'this codec'}", unsupported=True)
            return
        if self._pipeline is None:
            return
        try:
            branch = self._media.webrtc_branch(viewer.send)
        except RuntimeError as exc:  # not installed here: the page uses MSE
            self._log.warning("no WebRTC live view: %s", exc)
            self._end(token, "WebRTC is not available on this server", unsupported=True)
            return
        viewer.branch = branch
        self._pipeline.attach(branch)
        self._log.debug("WebRTC viewer %d on", token)

    def _detach(self, viewer: _Viewer, why: str) -> None:
        branch, viewer.branch = viewer.branch, None
        if branch is not None:
            self._gone.add(branch)
        if branch is not None and self._pipeline is not None:
            self._pipeline.detach(branch)
            self._log.info("WebRTC branch detached (%s)", why)

    def _end(self, token: int, reason: str, unsupported: bool = False) -> None:
        viewer = self._viewers.pop(token, None)
        if viewer is None:
            return
        self._detach(viewer, reason)
        viewer.send(Ended(reason, unsupported))


class WebRtcSession:
    """One browser's WebRTC session, as the API holds it (any thread; calls hop to the loop)."""

    def __init__(self, scheduler: Scheduler, view: WebRtcView, token: int) -> None:
        self._scheduler = scheduler
        self._view = view
        self.token = token

    def from_browser(self, message: BrowserMessage) -> None:
        self._scheduler.call(self._view.from_browser, self.token, message)

    def close(self) -> None:
        """Idempotent: the branch (if any) is detached."""
        self._scheduler.call(self._view.remove_viewer, self.token)
