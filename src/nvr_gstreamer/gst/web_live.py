"""The browser live branch: the camera's video as fragmented MP4, without decoding.

``tee → queue (leaky) → parse → mp4mux (a fragment per frame) → appsink`` in a bin named
``web-N``. Buffers leave on the appsink's streaming thread, are joined into whole init
segments and fragments (:class:`~nvr_gstreamer.camera.fmp4.Fmp4Assembler`) and handed to the
camera's :class:`~nvr_gstreamer.camera.live_hub.LiveHub`, which serves every viewer.

The branch is attached while someone watches, and for :data:`~nvr_gstreamer.engine.web_view.
LINGER_S` after the last viewer left, so coming back (paging, a reload) starts at once from the
hub's GOP. It answers serialized queries at its entrance (:mod:`nvr_gstreamer.gst.hold`): the
camera's reading thread never waits for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from nvr_gstreamer.camera.fmp4 import Fmp4Assembler, Piece  # noqa: E402
from nvr_gstreamer.camera.media import PipelineSpec  # noqa: E402
from nvr_gstreamer.gst.faults import WEB_BIN  # noqa: E402
from nvr_gstreamer.gst.hold import answer_serialized_query  # noqa: E402
from nvr_gstreamer.gst.live import BinBranch, SubStream  # noqa: E402
from nvr_gstreamer.gst.weak import weak_cb  # noqa: E402

logger = logging.getLogger(__name__)

PARSERS = {"h264": "h264parse", "h265": "h265parse"}
DEPAYLOADERS = {"H264": ("h264", "rtph264depay"), "H265": ("h265", "rtph265depay")}


class WebLiveBranch(BinBranch):
    _count = 0

    def __init__(self, codec: str, deliver: Callable[[Piece], None]) -> None:
        WebLiveBranch._count += 1
        super().__init__(Gst.Bin.new(f"{WEB_BIN}-{WebLiveBranch._count}"))
        self._deliver = deliver
        self._assembler = Fmp4Assembler()
        queue = Gst.ElementFactory.make("queue", "web-queue")
        queue.set_property("leaky", 2)  # a slow consumer drops old frames, never blocks the tee
        queue.set_property("max-size-buffers", 0)
        queue.set_property("max-size-bytes", 0)
        queue.set_property("max-size-time", 2 * Gst.SECOND)
        parse = Gst.ElementFactory.make(PARSERS[codec], "web-parse")
        mux = Gst.ElementFactory.make("mp4mux", "web-mux")
        mux.set_property("fragment-duration", 1)  # ms: a fragment per frame
        mux.set_property("streamable", True)
        sink = Gst.ElementFactory.make("appsink", "web-sink")
        sink.set_property("emit-signals", True)
        sink.set_property("sync", False)
        sink.set_property("max-buffers", 0)
        for el in (queue, parse, mux, sink):
            self.bin.add(el)
        queue.link(parse)
        parse.link(mux)
        mux.link(sink)
        sink.connect("new-sample", weak_cb(self._new_sample_cb, Gst.FlowReturn.EOS))
        self.bin.add_pad(Gst.GhostPad.new("sink", queue.get_static_pad("sink")))
        # Never make the camera's reading thread wait for this branch (see gst/hold.py).
        queue.get_static_pad("sink").add_probe(
            Gst.PadProbeType.QUERY_DOWNSTREAM, answer_serialized_query
        )

    def _new_sample_cb(self, sink: Any) -> Any:  # the branch's streaming thread
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        buf = sample.get_buffer()
        data = buf.extract_dup(0, buf.get_size())
        for piece in self._assembler.feed(data, buf.has_flags(Gst.BufferFlags.DELTA_UNIT)):
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
