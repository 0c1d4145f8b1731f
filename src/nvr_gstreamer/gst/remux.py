"""Read and repair Matroska segments offline (start-up recovery), with GStreamer.

:func:`inspect_segment` counts the video frames and measures the video's duration (audio
is read past, never counted); :func:`remux_segment` copies every video frame and every audio
stream, untouched, into a fresh Matroska file (restoring duration and cues that a crash left
out) and replaces the original atomically. A file truncated by ``kill -9`` ends in a partial
cluster: the demuxer stops there (1.22: with EOS; an error is handled alike), and every
complete frame before it is kept. (A file's tracks, from its header alone and without
GStreamer: :func:`nvr_gstreamer.storage.matroska.track_layout`.)
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from nvr_gstreamer.gst.loop import init_gstreamer  # noqa: E402

logger = logging.getLogger(__name__)

PARSERS = {"video/x-h264": "h264parse", "video/x-h265": "h265parse"}


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    frames: int
    duration_s: float
    keyframe_first: bool


class _Counter:
    def __init__(self) -> None:
        self.frames = 0
        self.first_pts: int | None = None
        self.last_end: int | None = None
        self.keyframe_first: bool | None = None
        self.lock = threading.Lock()

    def probe_cb(self, _pad: Any, info: Any) -> Any:
        buf = info.get_buffer()
        if buf is None:
            return Gst.PadProbeReturn.OK
        with self.lock:
            self.frames += 1
            if self.keyframe_first is None:
                self.keyframe_first = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
            pts = buf.pts
            if pts != Gst.CLOCK_TIME_NONE:
                if self.first_pts is None or pts < self.first_pts:
                    self.first_pts = pts
                dur = buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else 0
                end = pts + dur
                if self.last_end is None or end > self.last_end:
                    self.last_end = end
        return Gst.PadProbeReturn.OK

    def info(self, fps_hint: float) -> SegmentInfo:
        duration = 0.0
        if self.first_pts is not None and self.last_end is not None:
            duration = (self.last_end - self.first_pts) / Gst.SECOND
            if self.frames > 1 and duration <= 0:
                duration = self.frames / fps_hint
        return SegmentInfo(self.frames, duration, bool(self.keyframe_first))


def caps_name(pad: Any) -> str:
    """The media type of a pad: ``video/x-h264``, ``audio/x-alaw``..."""
    caps = pad.get_current_caps() or pad.query_caps(None)
    return str(caps.get_structure(0).get_name())


def _unbounded_queue() -> Any:
    # matroskamux collects from every pad on the demuxer's one thread: without a queue per
    # stream, two video frames in a row would block it while the audio pad waits for data.
    # Unbounded, as a bound could deadlock the same way; it holds at most the file's size.
    queue = Gst.ElementFactory.make("queue", None)
    for prop in ("max-size-buffers", "max-size-bytes", "max-size-time"):
        queue.set_property(prop, 0)
    return queue


def _drop() -> Any:
    # async=false: the demuxer feeds every sink from one thread, so a sink that waited for
    # preroll would block it before the other streams' sinks got their first buffer.
    sink = Gst.ElementFactory.make("fakesink", None)
    sink.set_property("async", False)
    return sink


def _run(source: Path, dest: Path | None, timeout_s: float) -> tuple[SegmentInfo, bool]:
    """Demux ``source`` (optionally re-muxing into ``dest``); (info, ended cleanly).

    Video frames are counted; audio streams are copied untouched into ``dest`` (or read and
    dropped), never counted. Any other stream is dropped.
    """
    init_gstreamer()
    pipeline = Gst.Pipeline.new("remux")
    src = Gst.ElementFactory.make("filesrc", None)
    src.set_property("location", str(source))
    demux = Gst.ElementFactory.make("matroskademux", None)
    pipeline.add(src)
    pipeline.add(demux)
    src.link(demux)
    mux: Any = None
    if dest is not None:
        mux = Gst.ElementFactory.make("matroskamux", None)
        mux.set_property("writing-app", "nvr_gstreamer (recovered)")
        sink = Gst.ElementFactory.make("filesink", None)
        sink.set_property("location", str(dest))
        pipeline.add(mux)
        pipeline.add(sink)
        mux.link(sink)
    counter = _Counter()
    heads: list[Any] = []  # the first sink pad of each branch into the muxer

    def branch(pad: Any, elements: list[Any], mux_template: str | None) -> bool:
        for el in elements:
            pipeline.add(el)
        for a, b in itertools.pairwise(elements):
            a.link(b)
        ok = True
        if mux_template is not None:
            mux_pad = mux.request_pad_simple(mux_template)
            ok = elements[-1].get_static_pad("src").link(mux_pad) == Gst.PadLinkReturn.OK
            if ok:
                heads.append(elements[0].get_static_pad("sink"))
            else:
                mux.release_request_pad(mux_pad)
                fakesink = _drop()
                pipeline.add(fakesink)
                elements[-1].link(fakesink)
                elements.append(fakesink)
        for el in elements:
            el.sync_state_with_parent()
        pad.link(elements[0].get_static_pad("sink"))
        return ok

    def pad_added_cb(_demux: Any, pad: Any) -> None:
        name = caps_name(pad)
        parser_name = PARSERS.get(name)
        if parser_name is not None:
            # Reading only: count straight off the demuxer. Copying: parse, then mux.
            parse = Gst.ElementFactory.make(parser_name if mux is not None else "identity", None)
            parse.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, counter.probe_cb)
            if mux is not None:
                branch(pad, [_unbounded_queue(), parse], "video_%u")
            else:
                branch(pad, [parse, _drop()], None)
        elif name.startswith("audio/") and mux is not None:
            if not branch(pad, [_unbounded_queue()], "audio_%u"):
                logger.warning("recovering %s: %s audio cannot be kept", source.name, name)
        else:
            branch(pad, [_drop()], None)

    handler = demux.connect("pad-added", pad_added_cb)
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    clean = False
    msg = bus.timed_pop_filtered(
        int(timeout_s * Gst.SECOND), Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    if msg is not None and msg.type == Gst.MessageType.EOS:
        clean = True
    elif msg is not None and mux is not None:
        # A truncated end: finish the copy with what was read so far. Every stream must end
        # (behind the data its queue holds), or the muxer waits for the one that did not.
        err, _dbg = msg.parse_error()
        logger.info("recovering %s: reading stopped at %s", source.name, err.message)
        for head in heads:
            head.send_event(Gst.Event.new_eos())
        bus.timed_pop_filtered(5 * Gst.SECOND, Gst.MessageType.EOS)
    pipeline.set_state(Gst.State.NULL)
    # The handler's closure holds the pipeline: without this the pair is a cycle through C
    # that Python never frees (two file descriptors and the elements, per file read).
    demux.disconnect(handler)
    return counter.info(15.0), clean


def inspect_segment(path: Path, timeout_s: float = 60.0) -> SegmentInfo:
    info, _ = _run(path, None, timeout_s)
    return info


def remux_segment(path: Path, timeout_s: float = 120.0) -> SegmentInfo:
    """Repair ``path`` in place; returns what the repaired file holds."""
    tmp = path.with_name(path.name + ".repair")
    try:
        info, _clean = _run(path, tmp, timeout_s)
        if info.frames == 0:
            tmp.unlink(missing_ok=True)
            return info
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return inspect_segment(path, timeout_s)
