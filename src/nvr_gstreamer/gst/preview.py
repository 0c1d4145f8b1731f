"""Still previews of recorded footage for scrubbing: the key frame at or before an instant,
decoded alone and scaled down to a small JPEG.

Only key frames are decoded (a seek to the key frame, one frame through the decoder), so a
preview costs one decode whatever the GOP, and it is made when asked and cached (see
:class:`PreviewCache`), not at recording time: nothing is spent on footage nobody scrubs.
The measured cost per preview is in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from nvr_gstreamer.gst.loop import init_gstreamer  # noqa: E402
from nvr_gstreamer.gst.remux import PARSERS, caps_name  # noqa: E402

DECODERS = {"video/x-h264": "avdec_h264", "video/x-h265": "avdec_h265"}
PREVIEW_WIDTH = 320  # px; the height follows the picture's aspect
JPEG_QUALITY = 70


class PreviewError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Preview:
    jpeg: bytes
    frame_s: float  # stream time of the key frame shown, in the file


class SegmentReader:
    """One segment file opened for previews: the pipeline stays paused between previews, so
    a preview is a seek and one decode (about 5 ms of CPU) instead of building a pipeline
    (about 25 ms). Not thread-safe: :class:`PreviewReaders` serialises the calls."""

    def __init__(self, path: Path, timeout_s: float = 5.0) -> None:
        init_gstreamer()
        self.path = path
        self.timeout_s = timeout_s
        self.pipeline = Gst.Pipeline.new("preview")
        src = Gst.ElementFactory.make("filesrc", None)
        src.set_property("location", str(path))
        demux = Gst.ElementFactory.make("matroskademux", None)
        tail = [
            Gst.ElementFactory.make("videoconvert", None),
            Gst.ElementFactory.make("videoscale", None),
            Gst.ElementFactory.make("capsfilter", None),
            Gst.ElementFactory.make("jpegenc", None),
            Gst.ElementFactory.make("appsink", None),
        ]
        tail[2].set_property(
            "caps",
            Gst.Caps.from_string(f"video/x-raw,width={PREVIEW_WIDTH},pixel-aspect-ratio=1/1"),
        )
        tail[3].set_property("quality", JPEG_QUALITY)
        self.sink = tail[-1]
        self.sink.set_property("sync", False)
        for el in (src, demux, *tail):
            self.pipeline.add(el)
        src.link(demux)
        for a, b in itertools.pairwise(tail):
            a.link(b)
        self._linked = threading.Event()
        self.closed = False
        self._handler = demux.connect("pad-added", self._pad_added_cb, tail[0])
        self._demux = demux
        try:
            if self.pipeline.set_state(Gst.State.PAUSED) == Gst.StateChangeReturn.FAILURE:
                raise PreviewError(f"cannot open {path.name}")
            self._prerolled()
        except BaseException:
            self.close()
            raise

    def _pad_added_cb(self, _demux: Any, pad: Any, first: Any) -> None:  # streaming thread
        name = caps_name(pad)
        if name not in DECODERS or self._linked.is_set():
            return  # an unlinked stream: the demuxer reads on while another is linked
        parser = Gst.ElementFactory.make(PARSERS[name], None)
        decoder = Gst.ElementFactory.make(DECODERS[name], None)
        if decoder is None:
            return
        decoder.set_property("max-threads", 1)  # no frame threads: no frames held back
        self.pipeline.add(parser)
        self.pipeline.add(decoder)
        parser.link(decoder)
        decoder.link(first)
        decoder.sync_state_with_parent()
        parser.sync_state_with_parent()
        pad.link(parser.get_static_pad("sink"))
        self._linked.set()

    def shot(self, offset_s: float) -> Preview:
        """The key frame at or before ``offset_s`` (s into the file), as a small JPEG."""
        flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT | Gst.SeekFlags.SNAP_BEFORE
        if not self.pipeline.seek_simple(Gst.Format.TIME, flags, int(offset_s * Gst.SECOND)):
            raise PreviewError(f"cannot seek in {self.path.name}")
        self._prerolled()
        sample = self.sink.emit("pull-preroll")
        if sample is None:
            raise PreviewError(f"no picture in {self.path.name}")
        buf = sample.get_buffer()
        frame_s = sample.get_segment().to_stream_time(Gst.Format.TIME, buf.pts) / Gst.SECOND
        return Preview(buf.extract_dup(0, buf.get_size()), frame_s)

    def _prerolled(self) -> None:
        ret, _state, _pending = self.pipeline.get_state(int(self.timeout_s * Gst.SECOND))
        if ret != Gst.StateChangeReturn.SUCCESS:
            msg = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
            why = msg.parse_error()[0].message if msg is not None else "no picture in time"
            raise PreviewError(f"cannot decode {self.path.name}: {why}")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pipeline.set_state(Gst.State.NULL)
            self._demux.disconnect(self._handler)


def preview_jpeg(path: Path, offset_s: float, timeout_s: float = 5.0) -> Preview:
    """The key frame at or before ``offset_s`` in the Matroska segment at ``path`` (blocking;
    a reader of its own, closed after)."""
    reader = SegmentReader(path, timeout_s)
    try:
        return reader.shot(offset_s)
    finally:
        reader.close()


class PreviewReaders:
    """Readers of the last few segment files scrubbed over, kept open (thread-safe): a drag
    across the timeline stays in one or two files for many previews. A file being written
    is read afresh each time (an open reader would not see what was appended)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._readers: OrderedDict[Path, tuple[SegmentReader, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()

    def shot(self, path: Path, offset_s: float) -> Preview:
        with self._lock:
            entry = self._readers.get(path)
            if entry is not None:
                self._readers.move_to_end(path)
        if entry is None:
            fresh = (SegmentReader(path), threading.Lock())
            evicted = []
            with self._lock:
                entry = self._readers.setdefault(path, fresh)  # another thread may have won
                while len(self._readers) > self.size:
                    evicted.append(self._readers.popitem(last=False)[1])
            if entry is not fresh:
                evicted.append(fresh)
            for reader, lock in evicted:
                with lock:
                    reader.close()
        reader, lock = entry
        with lock:
            if reader.closed:  # evicted meanwhile
                return preview_jpeg(path, offset_s)
            try:
                return reader.shot(offset_s)
            except PreviewError:
                with self._lock:
                    if self._readers.get(path) is entry:
                        del self._readers[path]
                reader.close()
                raise

    def close(self) -> None:
        with self._lock:
            entries = list(self._readers.values())
            self._readers.clear()
        for reader, lock in entries:
            with lock:
                reader.close()


class PreviewCache:
    """The last ``size`` previews, by segment and requested offset (thread-safe)."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, float], Preview] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, float]) -> Preview | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple[str, float], preview: Preview) -> None:
        with self._lock:
            self._items[key] = preview
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
