"""The browser live branch: the camera's video as fragmented MP4, without decoding.

``tee → queue (leaky) → parse → mp4mux (a fragment per frame) → appsink`` in a bin named
``web-N``. Buffers leave on the appsink's streaming thread, are joined into whole init
segments and fragments (:class:`~nvr_gstreamer.camera.fmp4.Fmp4Assembler`) and handed to the
camera's :class:`~nvr_gstreamer.camera.live_hub.LiveHub`, which serves every viewer.

The branch is attached while the camera streams but sleeps while nobody watches: the queue's
output is blocked, so nothing downstream runs (no parsing, no muxing, no Python) and the queue
only keeps the last :data:`WARM_SECONDS` of video, dropping the oldest in C. A first viewer
wakes it: that backlog flows at once, so the hub has the current GOP within milliseconds
instead of the viewer waiting up to a GOP for the next keyframe. It answers serialized queries
at its entrance (:mod:`nvr_gstreamer.gst.hold`): the camera's reading thread never waits for
it, asleep or awake.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from nvr_gstreamer.camera.fmp4 import (  # noqa: E402
    Fmp4Assembler,
    Fragment,
    InitSegment,
    Piece,
    codec_string,
)
from nvr_gstreamer.camera.media import PipelineSpec  # noqa: E402
from nvr_gstreamer.gst.faults import WEB_BIN  # noqa: E402
from nvr_gstreamer.gst.hold import answer_serialized_query, keep_blocked  # noqa: E402
from nvr_gstreamer.gst.live import BinBranch, SubStream  # noqa: E402
from nvr_gstreamer.gst.weak import weak_cb  # noqa: E402

logger = logging.getLogger(__name__)

PARSERS = {"h264": "h264parse", "h265": "h265parse"}
WARM_SECONDS = 6.0  # a sleeping branch keeps this much video: GOPs up to ~5 s start at once
WARM_BYTES = 8 * 1024 * 1024
DEPAYLOADERS = {"H264": ("h264", "rtph264depay"), "H265": ("h265", "rtph265depay")}


class WebLiveBranch(BinBranch):
    _count = 0

    def __init__(
        self,
        codec: str,
        deliver: Callable[[Piece], None],
        *,
        asleep: bool = False,
        fragmenter: bool = True,
    ) -> None:
        WebLiveBranch._count += 1
        super().__init__(Gst.Bin.new(f"{WEB_BIN}-{WebLiveBranch._count}"))
        self._deliver = deliver
        queue = Gst.ElementFactory.make("queue", "web-queue")
        queue.set_property("leaky", 2)  # a slow consumer drops old frames, never blocks the tee
        queue.set_property("max-size-buffers", 0)
        queue.set_property("max-size-bytes", WARM_BYTES)
        queue.set_property("max-size-time", int(WARM_SECONDS * Gst.SECOND))
        parse = Gst.ElementFactory.make(PARSERS[codec], "web-parse")
        mux = Gst.ElementFactory.make("mp4mux", "web-mux")
        mux.set_property("fragment-duration", 1)  # ms: a fragment per frame
        mux.set_property("streamable", True)
        sink = Gst.ElementFactory.make("appsink", "web-sink")
        sink.set_property("emit-signals", True)
        sink.set_property("sync", False)
        sink.set_property("max-buffers", 0)
        # One whole piece per buffer, joined in C (native/nvrfmp4frag.c), else in Python.
        frag = Gst.ElementFactory.make("nvrfmp4frag", "web-frag") if fragmenter else None
        if fragmenter and frag is None:
            _warn_no_fragmenter()
        self._assembler = None if frag is not None else Fmp4Assembler()
        chain = [el for el in (queue, parse, mux, frag, sink) if el is not None]
        for el in chain:
            self.bin.add(el)
        for upstream, downstream in itertools.pairwise(chain):
            upstream.link(downstream)
        sink.connect("new-sample", weak_cb(self._new_sample_cb, Gst.FlowReturn.EOS))
        self.bin.add_pad(Gst.GhostPad.new("sink", queue.get_static_pad("sink")))
        # Never make the camera's reading thread wait for this branch (see gst/hold.py).
        queue.get_static_pad("sink").add_probe(
            Gst.PadProbeType.QUERY_DOWNSTREAM, answer_serialized_query
        )
        self._queue = queue
        self._out = queue.get_static_pad("src")
        self._block: int | None = None
        if asleep:
            self.sleep()

    @property
    def awake(self) -> bool:
        return self._block is None

    def sleep(self) -> None:
        """Nobody watches: hold the queue's output (loop thread)."""
        if self._block is None:
            self._block = self._out.add_probe(Gst.PadProbeType.BLOCK_DOWNSTREAM, keep_blocked)

    def wake(self) -> None:
        """Someone watches: let the kept video and what follows through (loop thread)."""
        block, self._block = self._block, None
        if block is not None:
            self._out.remove_probe(block)

    def backlog(self) -> int:
        """Frames queued (a woken branch has passed its kept video on when this is ~0)."""
        level: int = self._queue.get_property("current-level-buffers")
        return level

    def _new_sample_cb(self, sink: Any) -> Any:  # the branch's streaming thread
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        buf = sample.get_buffer()
        data = buf.extract_dup(0, buf.get_size())
        delta = buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        if self._assembler is not None:
            pieces = self._assembler.feed(data, delta)
        elif buf.has_flags(Gst.BufferFlags.HEADER):
            pieces = [InitSegment(data, codec_string(data))]
        else:
            pieces = [Fragment(data, key=not delta)]
        for piece in pieces:
            try:
                self._deliver(piece)
            except Exception:
                logger.exception("web live viewer failed")
        return Gst.FlowReturn.OK


class WebStream(SubStream):
    """The browser live view from a camera's own ``live_url`` (a sub-stream, often H.264 where
    the main stream is H.265): ``rtspsrc → depayloader → WebLiveBranch``, built once the
    sub-stream says its codec."""

    def __init__(
        self,
        loop: Any,
        spec: PipelineSpec,
        deliver: Callable[[Piece], None],
        on_failed: Callable[[str], None],
        teardown: Any,
    ) -> None:
        super().__init__(loop, spec, on_failed, teardown, "web")
        self._deliver = deliver
        self.branch: WebLiveBranch | None = None

    def _link_video(self, pad: Any, structure: Any) -> None:  # rtspsrc's streaming thread
        if self.branch is not None:
            return
        known = DEPAYLOADERS.get(structure.get_string("encoding-name") or "")
        if known is None:
            self._loop.call(self._fail, "the live_url's video is neither H.264 nor H.265")
            return
        codec, depay_name = known
        depay = Gst.ElementFactory.make(depay_name, "web-depay")
        branch = WebLiveBranch(codec, self._deliver)
        self.branch = branch
        for element in (depay, branch.bin):
            self.pipeline.add(element)
            element.sync_state_with_parent()  # running before linked (see attach_branch)
        depay.link(branch.bin)
        pad.link(depay.get_static_pad("sink"))


@functools.cache
def _warn_no_fragmenter() -> None:
    logger.warning(
        "nvrfmp4frag is not built (scripts/setup builds it): the browser live view joins "
        "fragments in Python, at about three times the CPU"
    )
