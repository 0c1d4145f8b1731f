"""Recorded footage as one continuous stream: a run of segments, played back or exported.

``splitmuxsrc`` reads a list of segment files as one stream, laid back to back, so playback
crosses a segment boundary without a jump and a seek can land in any file. A :class:`Footage`
maps between that stream's offset and wall-clock time (each part's catalogued start and
duration); gaps between runs are skipped, as in every NVR's timeline player.

:func:`export_mp4` copies a time range into one MP4 file (no re-encode: the copy starts at the
key frame at or before the range's start, as with ``ffmpeg -c copy``), written to a partial
name and renamed when complete. :class:`Player` decodes for display, on its own loop thread.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

from nvr_gstreamer.gst.live import LiveFrame, frame_from_sample  # noqa: E402
from nvr_gstreamer.gst.loop import GstLoop, Timer, init_gstreamer  # noqa: E402
from nvr_gstreamer.gst.remux import PARSERS  # noqa: E402
from nvr_gstreamer.gst.weak import weak_cb  # noqa: E402

logger = logging.getLogger(__name__)

CONTIGUOUS_S = 2.0  # parts closer than this play as one run


@dataclass(frozen=True, slots=True)
class Part:
    path: Path
    start_utc: float
    duration_s: float

    @property
    def end_utc(self) -> float:
        return self.start_utc + self.duration_s


class Footage:
    """Parts in time order, and the mapping between stream offset and wall-clock time."""

    def __init__(self, parts: Sequence[Part]) -> None:
        if not parts:
            raise ValueError("no footage")
        self.parts = tuple(sorted(parts, key=lambda p: p.start_utc))
        self._offsets: list[float] = []
        total = 0.0
        for p in self.parts:
            self._offsets.append(total)
            total += p.duration_s
        self.duration_s = total

    @property
    def start_utc(self) -> float:
        return self.parts[0].start_utc

    @property
    def end_utc(self) -> float:
        return self.parts[-1].end_utc

    def offset_of(self, wall: float) -> float:
        """Stream offset showing ``wall``; a time in a gap maps to the next part's start."""
        starts = [p.start_utc for p in self.parts]
        i = max(0, bisect.bisect_right(starts, wall) - 1)
        part = self.parts[i]
        if wall >= part.end_utc and i + 1 < len(self.parts):
            return self._offsets[i + 1]
        return self._offsets[i] + min(max(0.0, wall - part.start_utc), part.duration_s)

    def wall_of(self, offset: float) -> float:
        i = max(0, bisect.bisect_right(self._offsets, offset) - 1)
        return self.parts[i].start_utc + (offset - self._offsets[i])


def runs(parts: Sequence[Part], max_parts: int = 60) -> list[Footage]:
    """Split parts into runs that play without a gap (and bound the files opened at once)."""
    out: list[Footage] = []
    current: list[Part] = []
    for p in sorted(parts, key=lambda p: p.start_utc):
        if current and (
            p.start_utc - current[-1].end_utc > CONTIGUOUS_S or len(current) >= max_parts
        ):
            out.append(Footage(current))
            current = []
        current.append(p)
    if current:
        out.append(Footage(current))
    return out


def _source(footage: Footage) -> Any:
    src = Gst.ElementFactory.make("splitmuxsrc", "footage")
    locations = [str(p.path) for p in footage.parts]
    src.connect("format-location", lambda _el: locations)
    return src


def _video_caps_name(pad: Any) -> str:
    caps = pad.get_current_caps() or pad.query_caps(None)
    return str(caps.get_structure(0).get_name())


class ExportError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    duration_s: float
    first_utc: float  # wall time of the first frame (the key frame at or before the start)


def export_mp4(
    footage: Footage,
    start_utc: float,
    end_utc: float,
    dest: Path,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    timeout_s: float = 600.0,
) -> ExportResult:
    """Copy ``[start_utc, end_utc]`` of ``footage`` into one MP4 at ``dest`` (blocking)."""
    init_gstreamer()
    if end_utc <= start_utc:
        raise ExportError("the range is empty")
    start = footage.offset_of(start_utc)
    stop = footage.offset_of(end_utc)
    if stop <= start:
        raise ExportError("nothing was recorded in that range")
    partial = dest.with_name(dest.name + ".partial")
    pipeline = Gst.Pipeline.new("export")
    src = _source(footage)
    mux = Gst.ElementFactory.make("mp4mux", "mux")
    sink = Gst.ElementFactory.make("filesink", "sink")
    sink.set_property("location", str(partial))
    for el in (src, mux, sink):
        pipeline.add(el)
    mux.link(sink)
    gate = _SeekGate()

    def pad_added(_src: Any, pad: Any) -> None:
        parser_name = PARSERS.get(_video_caps_name(pad))
        if parser_name is None:
            return
        parser = Gst.ElementFactory.make(parser_name, None)
        pipeline.add(parser)
        parser.sync_state_with_parent()
        pad.add_probe(
            Gst.PadProbeType.BUFFER
            | Gst.PadProbeType.EVENT_DOWNSTREAM
            | Gst.PadProbeType.EVENT_FLUSH,
            gate.probe_cb,
        )
        pad.link(parser.get_static_pad("sink"))
        parser.link(mux)

    handler = src.connect("pad-added", pad_added)
    bus = pipeline.get_bus()
    try:
        pipeline.set_state(Gst.State.PAUSED)
        if not gate.opened.wait(10.0):
            raise ExportError(_bus_error(bus) or "the recording could not be opened")
        # The muxer must see nothing before the seek: it cannot take a flush once it started.
        # To the source: the seek must not meet filesink's byte segment on its way up.
        flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT | Gst.SeekFlags.SNAP_BEFORE
        if not src.seek(
            1.0,
            Gst.Format.TIME,
            flags,
            Gst.SeekType.SET,
            int(start * Gst.SECOND),
            Gst.SeekType.SET,
            int(stop * Gst.SECOND),
        ):
            raise ExportError("seeking in the recording failed")
        pipeline.set_state(Gst.State.PLAYING)
        span = stop - start
        waited = 0.0
        while True:
            msg = bus.timed_pop_filtered(
                100 * Gst.MSECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
            )
            if msg is not None and msg.type == Gst.MessageType.ERROR:
                err, _dbg = msg.parse_error()
                raise ExportError(f"export failed: {err.message}")
            if msg is not None:
                break
            waited += 0.1
            if cancel is not None and cancel.is_set():
                raise ExportError("export cancelled")
            if waited > timeout_s:
                raise ExportError("export timed out")
            if progress is not None:
                ok, pos = pipeline.query_position(Gst.Format.TIME)
                if ok and pos >= 0:
                    progress(min(1.0, max(0.0, (pos / Gst.SECOND - start) / span)))
    except BaseException:
        pipeline.set_state(Gst.State.NULL)
        src.disconnect(handler)
        partial.unlink(missing_ok=True)
        raise
    pipeline.set_state(Gst.State.NULL)
    src.disconnect(handler)
    os.replace(partial, dest)
    if progress is not None:
        progress(1.0)
    first = gate.first_s if gate.first_s is not None else start
    return ExportResult(dest, stop - first, footage.wall_of(first))


class _SeekGate:
    """Holds back every buffer and flush until the export's seek has flushed the source."""

    def __init__(self) -> None:
        self.opened = threading.Event()  # the source produced data: it can seek now
        self.flushed = False
        self.first_s: float | None = None

    def probe_cb(self, pad: Any, info: Any) -> Any:
        if not info.type & Gst.PadProbeType.BUFFER:
            event = info.get_event()
            if event.type == Gst.EventType.FLUSH_STOP and not self.flushed:
                self.flushed = True
                return Gst.PadProbeReturn.DROP
            if event.type in (Gst.EventType.FLUSH_START, Gst.EventType.FLUSH_STOP):
                return Gst.PadProbeReturn.DROP if not self.flushed else Gst.PadProbeReturn.OK
            return Gst.PadProbeReturn.OK
        if not self.flushed:
            self.opened.set()
            return Gst.PadProbeReturn.DROP
        buf = info.get_buffer()
        seg = pad.get_sticky_event(Gst.EventType.SEGMENT, 0)
        if buf is not None and seg is not None and buf.pts != Gst.CLOCK_TIME_NONE:
            t = seg.parse_segment().to_stream_time(Gst.Format.TIME, buf.pts)
            self.first_s = t / Gst.SECOND
            return Gst.PadProbeReturn.REMOVE  # no Python call for the rest of the copy
        return Gst.PadProbeReturn.OK


def _bus_error(bus: Any) -> str | None:
    msg = bus.pop_filtered(Gst.MessageType.ERROR)
    if msg is None:
        return None
    err, _dbg = msg.parse_error()
    return str(err.message)


PositionCallback = Callable[[float, bool], None]  # (stream offset s, playing)


class Player:
    """Plays one :class:`Footage` for display; every GStreamer call runs on ``loop``.

    Frames (RGB, at most ``max_width`` wide) go to ``on_frame`` on a streaming thread, the
    position to ``on_position`` on the loop thread every 200 ms, and the end of the run to
    ``on_end``. Control methods are safe from any thread.
    """

    def __init__(
        self,
        loop: GstLoop,
        on_frame: Callable[[LiveFrame], None],
        on_position: PositionCallback,
        on_end: Callable[[], None],
        on_error: Callable[[str], None],
        max_width: int = 960,
    ) -> None:
        self._loop = loop
        self._on_frame = on_frame
        self._on_position = on_position
        self._on_end = on_end
        self._on_error = on_error
        self._max_width = max_width
        self._pipeline: Any = None
        self._convert: Any = None
        self._tick: Timer | None = None
        self._playing = False
        self._pending_seek: float | None = None
        self._camera = ""

    # ---- from any thread ------------------------------------------------------------------

    def open(self, camera_id: str, footage: Footage, offset_s: float, play: bool) -> None:
        self._loop.call(self._open, camera_id, footage, offset_s, play)

    def play(self) -> None:
        self._loop.call(self._set_playing, True)

    def pause(self) -> None:
        self._loop.call(self._set_playing, False)

    def seek(self, offset_s: float) -> None:
        self._loop.call(self._seek, offset_s)

    def close(self) -> None:
        self._loop.call(self._close)

    # ---- on the loop ----------------------------------------------------------------------

    def _open(self, camera_id: str, footage: Footage, offset_s: float, play: bool) -> None:
        self._close()
        self._camera = camera_id
        pipeline = Gst.Pipeline.new("playback")
        src = _source(footage)
        decode = Gst.ElementFactory.make("decodebin", "decode")
        convert = Gst.ElementFactory.make("videoconvert", "convert")
        scale = Gst.ElementFactory.make("videoscale", "scale")
        caps = Gst.ElementFactory.make("capsfilter", "caps")
        caps.set_property(
            "caps",
            Gst.Caps.from_string(
                f"video/x-raw,format=RGB,pixel-aspect-ratio=1/1,width=[16,{self._max_width}]"
            ),
        )
        sink = Gst.ElementFactory.make("appsink", "video")
        sink.set_property("emit-signals", True)
        sink.set_property("max-buffers", 2)
        sink.set_property("sync", True)
        for el in (src, decode, convert, scale, caps, sink):
            pipeline.add(el)
        convert.link(scale)
        scale.link(caps)
        caps.link(sink)
        src.connect("pad-added", weak_cb(self._src_pad_cb))
        decode.connect("pad-added", weak_cb(self._decoded_pad_cb))
        sink.connect("new-sample", weak_cb(self._new_sample_cb, Gst.FlowReturn.EOS))
        sink.connect("new-preroll", weak_cb(self._new_preroll_cb, Gst.FlowReturn.EOS))
        self._decode = decode
        self._convert = convert
        # add_watch attaches to the thread-default context: the loop's own, on its thread.
        pipeline.get_bus().add_watch(GLib.PRIORITY_DEFAULT, weak_cb(self._bus_cb, False))
        self._pipeline = pipeline
        self._pending_seek = offset_s
        self._playing = play
        pipeline.set_state(Gst.State.PAUSED)
        self._tick = self._loop.every(0.2, self._report_position)

    def _src_pad_cb(self, _src: Any, pad: Any) -> None:
        if _video_caps_name(pad) in PARSERS:
            pad.link(self._decode.get_static_pad("sink"))

    def _decoded_pad_cb(self, _decode: Any, pad: Any) -> None:
        if _video_caps_name(pad).startswith("video/"):
            pad.link(self._convert.get_static_pad("sink"))

    def _bus_cb(self, _bus: Any, msg: Any) -> bool:
        if msg.type == Gst.MessageType.ASYNC_DONE and self._pending_seek is not None:
            offset, self._pending_seek = self._pending_seek, None
            self._do_seek(offset)
            if self._playing:
                self._pipeline.set_state(Gst.State.PLAYING)
        elif msg.type == Gst.MessageType.EOS:
            self._playing = False
            self._on_end()
        elif msg.type == Gst.MessageType.ERROR:
            err, _dbg = msg.parse_error()
            logger.warning("[%s] playback failed: %s", self._camera, err.message)
            self._on_error(str(err.message))
            self._close()
            return False
        return True

    def _do_seek(self, offset_s: float) -> None:
        flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.ACCURATE
        self._pipeline.seek_simple(Gst.Format.TIME, flags, int(max(0.0, offset_s) * Gst.SECOND))

    def _seek(self, offset_s: float) -> None:
        if self._pipeline is None:
            return
        if self._pending_seek is not None:
            self._pending_seek = offset_s
            return
        self._do_seek(offset_s)

    def _set_playing(self, playing: bool) -> None:
        self._playing = playing
        if self._pipeline is not None and self._pending_seek is None:
            self._pipeline.set_state(Gst.State.PLAYING if playing else Gst.State.PAUSED)

    def _report_position(self) -> None:
        if self._pipeline is None:
            return
        ok, pos = self._pipeline.query_position(Gst.Format.TIME)
        if ok and pos >= 0:
            self._on_position(pos / Gst.SECOND, self._playing)

    def _close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if self._pipeline is not None:
            self._pipeline.get_bus().remove_watch()
            self._pipeline.set_state(Gst.State.NULL)
            self._pipeline = None
        self._playing = False

    # ---- streaming threads ----------------------------------------------------------------

    def _new_preroll_cb(self, sink: Any) -> Any:
        self._deliver(sink.emit("pull-preroll"))
        return Gst.FlowReturn.OK

    def _new_sample_cb(self, sink: Any) -> Any:
        self._deliver(sink.emit("pull-sample"))
        return Gst.FlowReturn.OK

    def _deliver(self, sample: Any) -> None:
        frame = frame_from_sample(self._camera, sample)
        if frame is not None:
            self._on_frame(frame)
