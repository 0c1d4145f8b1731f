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


def preview_jpeg(path: Path, offset_s: float, timeout_s: float = 5.0) -> Preview:
    """The key frame at or before ``offset_s`` in the Matroska segment at ``path`` (blocking)."""
    init_gstreamer()
    pipeline = Gst.Pipeline.new("preview")
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
        "caps", Gst.Caps.from_string(f"video/x-raw,width={PREVIEW_WIDTH},pixel-aspect-ratio=1/1")
    )
    tail[3].set_property("quality", JPEG_QUALITY)
    sink = tail[-1]
    sink.set_property("sync", False)
    for el in (src, demux, *tail):
        pipeline.add(el)
    src.link(demux)
    for a, b in itertools.pairwise(tail):
        a.link(b)
    linked = threading.Event()

    def pad_added_cb(_demux: Any, pad: Any) -> None:  # streaming thread
        name = caps_name(pad)
        if name not in DECODERS or linked.is_set():
            return  # an unlinked stream: the demuxer reads on while another is linked
        parser = Gst.ElementFactory.make(PARSERS[name], None)
        decoder = Gst.ElementFactory.make(DECODERS[name], None)
        if decoder is None:
            return
        decoder.set_property("max-threads", 1)  # no frame threads: no frames held back
        pipeline.add(parser)
        pipeline.add(decoder)
        parser.link(decoder)
        decoder.link(tail[0])
        decoder.sync_state_with_parent()
        parser.sync_state_with_parent()
        pad.link(parser.get_static_pad("sink"))
        linked.set()

    demux.connect("pad-added", pad_added_cb)
    try:
        if pipeline.set_state(Gst.State.PAUSED) == Gst.StateChangeReturn.FAILURE:
            raise PreviewError(f"cannot open {path.name}")
        _prerolled(pipeline, timeout_s, path)
        flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT | Gst.SeekFlags.SNAP_BEFORE
        if offset_s > 0 and not pipeline.seek_simple(
            Gst.Format.TIME, flags, int(offset_s * Gst.SECOND)
        ):
            raise PreviewError(f"cannot seek in {path.name}")
        _prerolled(pipeline, timeout_s, path)
        sample = sink.emit("pull-preroll")
        if sample is None:
            raise PreviewError(f"no picture in {path.name}")
        buf = sample.get_buffer()
        seg = sample.get_segment()
        frame_s = seg.to_stream_time(Gst.Format.TIME, buf.pts) / Gst.SECOND
        return Preview(buf.extract_dup(0, buf.get_size()), frame_s)
    finally:
        pipeline.set_state(Gst.State.NULL)


def _prerolled(pipeline: Any, timeout_s: float, path: Path) -> None:
    ret, _state, _pending = pipeline.get_state(int(timeout_s * Gst.SECOND))
    if ret != Gst.StateChangeReturn.SUCCESS:
        msg = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        why = msg.parse_error()[0].message if msg is not None else "no picture in time"
        raise PreviewError(f"cannot decode {path.name}: {why}")


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
