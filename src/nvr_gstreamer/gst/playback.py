"""Recorded footage for the browser: keyframe-aligned fragmented MP4 chunks, made on the fly.

A :class:`Chunk` is a complete fragmented MP4 (init segment, then fragments) of one recorded
segment from the key frame at or before an instant, for about ``span_s`` seconds, ending just
before a key frame or at the segment's end (the next segment starts with a key frame), so the
next chunk starts exactly where this one stopped: the page appends chunk after chunk to one
MediaSource buffer without overlap. Nothing is re-encoded: ``matroskademux`` reads the file,
the parser hands the frames to ``mp4mux`` in fragmented mode. Each chunk says the wall time of
its first frame (the catalog's start of the segment plus the frame's time in the file) and
where its frames sit in the MP4's own timeline, so the page plays on a wall-clock timeline.

One file per chunk, not ``splitmuxsrc`` over several: it opens every file of its list to
measure it, and a part that gives no video (seen in tests: a segment's frames missing, the
later ones shifted by its length) would silently put every later frame at the wrong time.

Video only for now: the browser's MP4 audio (AAC, Opus) goes along in a later step.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from nvr_gstreamer.camera.fmp4 import codec_string, first_presentation_s  # noqa: E402
from nvr_gstreamer.gst.footage import (  # noqa: E402
    ExportError,
    _bus_error,
    _discard,
    _SeekGate,
)
from nvr_gstreamer.gst.loop import init_gstreamer  # noqa: E402
from nvr_gstreamer.gst.remux import PARSERS, caps_name  # noqa: E402
from nvr_gstreamer.storage.footage_runs import Part  # noqa: E402

logger = logging.getLogger(__name__)

FRAGMENT_MS = 1000  # mp4mux fragment duration: one moof per second of footage
# A request at a key frame's own time must start at that key frame, not the one before:
# wall ↔ offset arithmetic is floating point, a frame interval is ≥ 16 ms.
SNAP_TOLERANCE_S = 0.001


class PlaybackError(ExportError):
    pass


@dataclass(frozen=True, slots=True)
class Chunk:
    data: bytes  # fragmented MP4: ftyp + moov, then moof + mdat pairs
    codec: str  # RFC 6381, for MediaSource.isTypeSupported
    first_utc: float  # wall time of the first frame (a key frame at or before the start)
    media_start_s: float  # that frame's presentation time in the MP4's timeline
    end_utc: float  # wall time just after the last frame
    next_utc: float | None  # wall time of the key frame it stopped before (None: the file ended)
    frames: int


class _Cut:
    """On the parser's output: notes the first frame and stops before the first key frame at
    or after ``stop_s`` (stream time), by ending the stream there."""

    def __init__(self, stop_s: float) -> None:
        self.stop_s = stop_s
        self.first_s: float | None = None
        self.last_end_s: float | None = None
        self.next_s: float | None = None
        self.frames = 0

    def probe_cb(self, pad: Any, info: Any) -> Any:  # streaming thread
        if self.next_s is not None:
            return Gst.PadProbeReturn.OK  # the muxer is at EOS: the reader stops on FLOW_EOS
        buf = info.get_buffer()
        seg = pad.get_sticky_event(Gst.EventType.SEGMENT, 0)
        if buf is None or seg is None or buf.pts == Gst.CLOCK_TIME_NONE:
            return Gst.PadProbeReturn.OK
        t = seg.parse_segment().to_stream_time(Gst.Format.TIME, buf.pts) / Gst.SECOND
        key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        if self.frames and key and t >= self.stop_s:
            self.next_s = t
            pad.push_event(Gst.Event.new_eos())
            return Gst.PadProbeReturn.DROP
        if self.first_s is None:
            self.first_s = t
        self.frames += 1
        duration = buf.duration / Gst.SECOND if buf.duration != Gst.CLOCK_TIME_NONE else 0.0
        self.last_end_s = t + duration
        return Gst.PadProbeReturn.OK


def make_chunk(part: Part, start_utc: float, span_s: float, timeout_s: float = 10.0) -> Chunk:
    """The chunk of the segment ``part`` from the key frame at or before ``start_utc``, up to
    the first key frame ``span_s`` later or the segment's end (blocking)."""
    init_gstreamer()
    start = min(max(0.0, start_utc - part.start_utc + SNAP_TOLERANCE_S), part.duration_s)
    cut = _Cut(start + span_s)
    pipeline = Gst.Pipeline.new("playback-chunk")
    src = Gst.ElementFactory.make("filesrc", None)
    src.set_property("location", str(part.path))
    demux = Gst.ElementFactory.make("matroskademux", None)
    mux = Gst.ElementFactory.make("mp4mux", None)
    mux.set_property("fragment-duration", FRAGMENT_MS)
    mux.set_property("streamable", True)
    sink = Gst.ElementFactory.make("appsink", None)
    sink.set_property("sync", False)
    sink.set_property("max-buffers", 0)
    sink.set_property("wait-on-eos", False)  # else its EOS waits for the samples to be pulled
    for el in (src, demux, mux, sink):
        pipeline.add(el)
    src.link(demux)
    mux.link(sink)
    gate = _SeekGate()
    taken = threading.Event()

    def pad_added_cb(_demux: Any, pad: Any) -> None:  # streaming thread
        parser_name = PARSERS.get(caps_name(pad))
        if parser_name is None or taken.is_set():
            _discard(pad)
            return
        taken.set()
        parser = Gst.ElementFactory.make(parser_name, None)
        pipeline.add(parser)
        parser.get_static_pad("src").link(mux.request_pad_simple("video_%u"))
        parser.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, cut.probe_cb)
        parser.sync_state_with_parent()
        gate.watch(pad, timing=False)
        pad.link(parser.get_static_pad("sink"))

    handler = demux.connect("pad-added", pad_added_cb)
    bus = pipeline.get_bus()
    try:
        pipeline.set_state(Gst.State.PAUSED)
        if not gate.opened.wait(timeout_s):
            raise PlaybackError(_bus_error(bus) or f"{part.path.name} could not be opened")
        # The muxer must see nothing before the seek (the gate holds everything back until
        # the seek's flush): it cannot take a flush once it started.
        flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT | Gst.SeekFlags.SNAP_BEFORE
        if not demux.seek_simple(Gst.Format.TIME, flags, int(start * Gst.SECOND)):
            raise PlaybackError(f"seeking in {part.path.name} failed")
        pipeline.set_state(Gst.State.PLAYING)
        msg = bus.timed_pop_filtered(
            int(timeout_s * Gst.SECOND), Gst.MessageType.EOS | Gst.MessageType.ERROR
        )
        if msg is None:
            raise PlaybackError(f"the chunk took longer than {timeout_s:g} s")
        if msg.type == Gst.MessageType.ERROR:
            err, _dbg = msg.parse_error()
            raise PlaybackError(f"reading {part.path.name} failed: {err.message}")
        pieces: list[bytes] = []
        while (sample := sink.emit("try-pull-sample", 0)) is not None:
            buf = sample.get_buffer()
            pieces.append(buf.extract_dup(0, buf.get_size()))
    finally:
        pipeline.set_state(Gst.State.NULL)
        demux.disconnect(handler)
    if cut.first_s is None or cut.last_end_s is None:
        raise PlaybackError(f"no video in {part.path.name} there")
    data = b"".join(pieces)
    return Chunk(
        data=data,
        codec=codec_string(data),
        first_utc=part.start_utc + cut.first_s,
        media_start_s=first_presentation_s(data),
        end_utc=part.start_utc + cut.last_end_s,
        next_utc=None if cut.next_s is None else part.start_utc + cut.next_s,
        frames=cut.frames,
    )
