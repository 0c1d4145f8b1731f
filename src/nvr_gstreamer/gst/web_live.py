"""The browser live view, served from C: ``nvrlivesink`` (native/nvrlivesink.c).

On the camera's tee, which carries whole H.264/H.265 access units in the MP4 sample format
(``avc``/``hvc1``, the parser's output), the branch is the sink alone in a bin named ``web-N``:
it writes fragmented MP4 as WebSocket messages straight to every viewer's socket, keeps the
frames since the last keyframe so a new viewer starts at once, and lets a viewer that falls
behind skip to a keyframe. No parser, no muxer, no queue and no Python per frame; with nobody
watching it only keeps a reference to each frame of the current GOP.

From a camera's ``live_url`` (:class:`WebStream`): ``rtspsrc → depayloader → parser →
capsfilter (avc/hvc1) → nvrlivesink`` in a pipeline of its own.

Viewers are sockets: :meth:`WebSink.add_client` hands the sink a descriptor it owns from then on
(it closes it when the viewer is removed or the sink goes).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from nvr_gstreamer.camera.media import PipelineSpec  # noqa: E402
from nvr_gstreamer.gst.faults import WEB_BIN  # noqa: E402
from nvr_gstreamer.gst.hold import answer_serialized_query  # noqa: E402
from nvr_gstreamer.gst.live import BinBranch, SubStream  # noqa: E402

PARSERS = {"h264": "h264parse", "h265": "h265parse"}
SAMPLE_CAPS = {
    "h264": "video/x-h264,stream-format=avc,alignment=au",
    "h265": "video/x-h265,stream-format=hvc1,alignment=au",
}
DEPAYLOADERS = {"H264": ("h264", "rtph264depay"), "H265": ("h265", "rtph265depay")}


def live_sink() -> Any:
    sink = Gst.ElementFactory.make("nvrlivesink", "web-sink")
    if sink is None:
        raise RuntimeError("nvrlivesink is not built: run scripts/setup")
    return sink


class WebLiveBranch(BinBranch):
    """The sink on the camera's tee; ``codec`` given: after a depayloader, so a parser puts the
    frames into the sample format first."""

    _count = itertools.count(1)

    def __init__(self, codec: str | None = None) -> None:
        super().__init__(Gst.Bin.new(f"{WEB_BIN}-{next(WebLiveBranch._count)}"))
        self.sink = live_sink()
        chain = [self.sink]
        if codec is not None:
            parse = Gst.ElementFactory.make(PARSERS[codec], "web-parse")
            caps = Gst.ElementFactory.make("capsfilter", "web-format")
            caps.set_property("caps", Gst.Caps.from_string(SAMPLE_CAPS[codec]))
            chain = [parse, caps, self.sink]
        for el in chain:
            self.bin.add(el)
        for upstream, downstream in itertools.pairwise(chain):
            upstream.link(downstream)
        entrance = chain[0].get_static_pad("sink")
        self.bin.add_pad(Gst.GhostPad.new("sink", entrance))
        # Never make the camera's reading thread wait for this branch (see gst/hold.py).
        entrance.add_probe(Gst.PadProbeType.QUERY_DOWNSTREAM, answer_serialized_query)

    def add_client(self, fd: int) -> None:
        """A viewer's socket (any thread); the sink owns ``fd`` from now on."""
        self.sink.emit("add-client", fd)

    def remove_client(self, fd: int) -> None:
        """The viewer left: ``fd`` is closed when this returns (any thread)."""
        self.sink.emit("remove-client", fd)

    @property
    def clients(self) -> int:
        count: int = self.sink.get_property("clients")
        return count

    @property
    def skipped(self) -> int:
        """Frames viewers that were behind did not get."""
        count: int = self.sink.get_property("skipped")
        return count

    @property
    def frames(self) -> int:
        """Frames that reached the sink (any thread)."""
        count: int = self.sink.get_property("frames")
        return count


class WebStream(SubStream):
    """The browser live view from a camera's own ``live_url`` (a sub-stream, often H.264 where
    the main stream is H.265): ``rtspsrc → depayloader → WebLiveBranch``, built once the
    sub-stream says its codec. Viewers handed over before that wait here."""

    def __init__(
        self, loop: Any, spec: PipelineSpec, on_failed: Callable[[str], None], teardown: Any
    ) -> None:
        super().__init__(loop, spec, on_failed, teardown, "web")
        self._lock = threading.Lock()
        self._waiting: list[int] = []
        self.branch: WebLiveBranch | None = None

    def add_client(self, fd: int) -> None:
        with self._lock:
            if self.branch is None:
                self._waiting.append(fd)
                return
            self.branch.add_client(fd)

    def remove_client(self, fd: int) -> None:
        with self._lock:
            if fd in self._waiting:
                self._waiting.remove(fd)
                os.close(fd)
            elif self.branch is not None:
                self.branch.remove_client(fd)

    @property
    def frames(self) -> int:
        """Frames that reached the sink; 0 until the sub-stream has said its codec."""
        branch = self.branch
        return 0 if branch is None else branch.frames

    def release(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for fd in waiting:
            os.close(fd)
        super().release()

    def _link_video(self, pad: Any, structure: Any) -> None:  # rtspsrc's streaming thread
        if self.branch is not None:
            return
        known = DEPAYLOADERS.get(structure.get_string("encoding-name") or "")
        if known is None:
            self._loop.call(self._fail, "the live_url's video is neither H.264 nor H.265")
            return
        codec, depay_name = known
        depay = Gst.ElementFactory.make(depay_name, "web-depay")
        branch = WebLiveBranch(codec)
        for element in (depay, branch.bin):
            self.pipeline.add(element)
            element.sync_state_with_parent()  # running before linked (see attach_branch)
        depay.link(branch.bin)
        pad.link(depay.get_static_pad("sink"))
        with self._lock:
            self.branch = branch
            waiting, self._waiting = self._waiting, []
            for fd in waiting:
                branch.add_client(fd)
