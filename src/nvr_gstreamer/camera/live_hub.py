"""One camera's browser live stream, fanned out to any number of viewers: pure, thread-safe.

The hub keeps the init segment and the fragments since the last keyframe, so a new viewer
starts at once (init, then that keyframe and what followed) instead of waiting up to a GOP.
A viewer that cannot take a fragment (its queue is full: a slow network) is not buffered for:
it skips to the next keyframe, so it never falls further behind.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass

from nvr_gstreamer.camera.fmp4 import Fragment, InitSegment, Piece

# A GOP longer than this many frames is not kept whole (a camera misconfigured to 60 s GOPs).
MAX_GOP_FRAMES = 600

Deliver = Callable[[Piece], bool]  # False: the viewer cannot take it now
CaughtUp = Callable[[int], None]


@dataclass(slots=True)
class _Viewer:
    deliver: Deliver
    waiting_for_key: bool = True  # started, or fell behind: only a keyframe may come next


class LiveHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._init: InitSegment | None = None
        self._gop: list[Fragment] = []
        self._viewers: dict[int, _Viewer] = {}
        self._tokens = itertools.count(1)

    @property
    def viewers(self) -> int:
        with self._lock:
            return len(self._viewers)

    def add(self, deliver: Deliver, caught_up: CaughtUp | None = None) -> int:
        """A new viewer: it gets the init segment and the current GOP at once; then
        ``caught_up(n)`` hears how many pieces that was (a burst its sender should allow)."""
        with self._lock:
            token = next(self._tokens)
            viewer = _Viewer(deliver)
            self._viewers[token] = viewer
            sent = 0
            if self._init is not None and deliver(self._init):
                sent = 1
                for fragment in self._gop:
                    if not deliver(fragment):
                        break
                    sent += 1
                viewer.waiting_for_key = sent != 1 + len(self._gop) or not self._gop
            if caught_up is not None:
                caught_up(sent)
            return token

    def remove(self, token: int) -> int:
        """The viewer left; returns how many are still watching."""
        with self._lock:
            self._viewers.pop(token, None)
            return len(self._viewers)

    def reset(self) -> None:
        """The stream ended (the camera went away): nothing cached is valid any more."""
        with self._lock:
            self._init = None
            self._gop = []
            for viewer in self._viewers.values():
                viewer.waiting_for_key = True

    def drop_gop(self) -> None:
        """The frames kept are no longer the newest (the branch slept): forget them, keep the
        init segment (the same stream goes on)."""
        with self._lock:
            self._gop = []

    def feed(self, piece: Piece) -> None:
        """The branch produced ``piece`` (a streaming thread)."""
        with self._lock:
            if isinstance(piece, InitSegment):
                self._init, self._gop = piece, []
                for viewer in self._viewers.values():
                    viewer.waiting_for_key = True
                    viewer.deliver(piece)
                return
            if piece.key:
                self._gop = [piece]
            elif self._gop and len(self._gop) < MAX_GOP_FRAMES:
                self._gop.append(piece)
            for viewer in self._viewers.values():
                if viewer.waiting_for_key and not piece.key:
                    continue
                viewer.waiting_for_key = not viewer.deliver(piece)
