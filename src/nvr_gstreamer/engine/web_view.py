"""The browser live view of one camera (loop thread): a web branch on the camera's tee while
anyone watches, feeding the camera's :class:`LiveHub`, which serves every viewer."""

from __future__ import annotations

from typing import Any

from nvr_gstreamer.camera.live_hub import Deliver, LiveHub
from nvr_gstreamer.camera.media import Media
from nvr_gstreamer.core.logsetup import CameraLogger


class WebView:
    def __init__(self, media: Media, log: CameraLogger) -> None:
        self._media = media
        self._log = log
        self.hub = LiveHub()
        self._pipeline: Any = None  # the camera's pipeline while it streams
        self._codec: str | None = None
        self._branch: Any = None

    @property
    def attached(self) -> bool:
        return self._branch is not None

    def owns(self, branch: object) -> bool:
        return branch is not None and branch is self._branch

    def add_viewer(self, deliver: Deliver) -> int:
        token = self.hub.add(deliver)
        self._attach()
        return token

    def remove_viewer(self, token: int) -> None:
        if self.hub.remove(token) == 0:
            self._detach()

    def pipeline_streaming(self, pipeline: Any, codec: str | None) -> None:
        """The camera's video flows (its codec is known): viewers get it from here."""
        self._pipeline, self._codec = pipeline, codec
        self._attach()

    def pipeline_going(self) -> None:
        """The camera's pipeline goes, and the branch with it; viewers wait for the next."""
        self._branch = None
        self._pipeline = None
        self.hub.reset()

    def rebuild(self) -> None:
        self._detach()
        self._attach()

    def _attach(self) -> None:
        if self._branch is not None or self._pipeline is None or self.hub.viewers == 0:
            return
        if self._codec not in ("h264", "h265"):
            return
        self._branch = self._media.web_branch(self._codec, self.hub.feed)
        self._pipeline.attach(self._branch)
        self._log.debug("browser live view on (%s)", self._codec)

    def _detach(self) -> None:
        branch, self._branch = self._branch, None
        if branch is not None and self._pipeline is not None:
            self._pipeline.detach(branch)
            self.hub.reset()
            self._log.debug("browser live view off: nobody watches")
