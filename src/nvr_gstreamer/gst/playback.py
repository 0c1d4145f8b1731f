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

Audio goes along when the page's browser plays it (``audio``: "aac", "opus"): AAC and Opus
copied, G.711 encoded to AAC (as for exports). An audio frame belongs to the chunk whose video
holds its start, so consecutive chunks' audio joins without overlap or hole, as their video
does. mp4mux starts every track of a fragmented MP4 at 0 whatever its first timestamp (audio
starts 5–65 ms after the key frame in a recorded file); left so, the page (which places a
chunk by its video) put the audio early by that much and each chunk's audio ended before its
video: Chromium's buffered ranges got holes. So the track that starts later has its ``tfdt``
moved to where its first frame sits against the other's in the file. A chunk whose audio does
not sound all through its video (none in that range; the camera's audio stopped midway) is
video only: the page's buffer holds only what both tracks hold. The page then plays on in a
fresh MediaSource (one SourceBuffer's tracks cannot change), and resets its parser before each
chunk (an audio frame that came before the previous chunk's last one counted as a
discontinuity, which dropped that chunk's video up to its next key frame).
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from nvr_gstreamer.camera.fmp4 import (  # noqa: E402
    audio_codec_string,
    codec_string,
    first_presentation_s,
    shift_decode_times,
    tracks,
)
from nvr_gstreamer.gst.footage import (  # noqa: E402
    ExportError,
    _bus_error,
    _discard,
    _mp4_audio_chain,
    _SeekGate,
    _set_once,
    fix_opus_dops_bytes,
)
from nvr_gstreamer.gst.loop import init_gstreamer  # noqa: E402
from nvr_gstreamer.gst.remux import PARSERS, caps_name  # noqa: E402
from nvr_gstreamer.storage.footage_runs import Part  # noqa: E402

logger = logging.getLogger(__name__)

FRAGMENT_MS = 1000  # mp4mux fragment duration: one moof per second of footage
# A request at a key frame's own time must start at that key frame, not the one before:
# wall ↔ offset arithmetic is floating point, a frame interval is ≥ 16 ms.
SNAP_TOLERANCE_S = 0.001
AUDIO_CODECS = frozenset({"aac", "opus"})  # what the chunks' audio can be (G.711 becomes AAC)
AUDIO_SLACK_S = 0.5  # audio that starts later or ends sooner than the video by more: left out


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
    """On the video parser's output: notes the first frame and stops before the first key
    frame at or after ``stop_s`` (stream time), by ending the stream there.

    On the audio (:meth:`audio_probe_cb`, on the demuxer's side of its queue): an audio frame
    belongs to the chunk whose video holds its start, so the next chunk's audio goes on
    exactly where this one's stopped. A frame at or after ``stop_s`` waits until the video
    decided where the chunk ends (the video runs on meanwhile: both queues are unbounded)."""

    WAIT_S = 10.0

    def __init__(self, stop_s: float) -> None:
        self.stop_s = stop_s
        self.first_s: float | None = None
        self.last_end_s: float | None = None
        self.next_s: float | None = None
        self.frames = 0
        self.video_s = -1.0  # the latest video frame let through
        self.video_ended = False  # the file's video ended before a cut
        self.audio_first_s: float | None = None  # the first audio frame let through
        self.audio_end_s: float | None = None  # the end of the last one
        self.audio_done = False
        self._changed = threading.Condition()

    def probe_cb(self, pad: Any, info: Any) -> Any:  # streaming thread
        if self.next_s is not None:
            return Gst.PadProbeReturn.OK  # the muxer is at EOS: the reader stops on FLOW_EOS
        buf = info.get_buffer()
        t = _stream_s(pad, buf)
        if t is None:
            return Gst.PadProbeReturn.OK
        key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        if self.frames and key and t >= self.stop_s:
            with self._changed:
                self.next_s = t
                self._changed.notify_all()
            pad.push_event(Gst.Event.new_eos())
            return Gst.PadProbeReturn.DROP
        with self._changed:
            if self.first_s is None:
                self.first_s = t
            self.video_s = t
            self._changed.notify_all()
        self.frames += 1
        duration = buf.duration / Gst.SECOND if buf.duration != Gst.CLOCK_TIME_NONE else 0.0
        self.last_end_s = t + duration
        return Gst.PadProbeReturn.OK

    def video_eos_cb(self, _pad: Any, info: Any) -> Any:  # streaming thread
        if info.get_event().type == Gst.EventType.EOS:
            with self._changed:
                self.video_ended = True
                self._changed.notify_all()
        return Gst.PadProbeReturn.OK

    def audio_probe_cb(self, pad: Any, info: Any) -> Any:  # streaming thread (audio queue)
        if self.audio_done:
            return Gst.PadProbeReturn.DROP
        buf = info.get_buffer()
        t = _stream_s(pad, buf)
        if t is None:
            return Gst.PadProbeReturn.OK
        with self._changed:
            self._changed.wait_for(lambda: self._decided(t), self.WAIT_S)
            first, end = self.first_s, self.next_s
        if first is None or t < first:
            return Gst.PadProbeReturn.DROP  # before the chunk's key frame: the chunk before's
        if end is not None and t >= end:
            self.audio_done = True
            pad.push_event(Gst.Event.new_eos())
            return Gst.PadProbeReturn.DROP
        if self.audio_first_s is None:
            self.audio_first_s = t
        duration = buf.duration / Gst.SECOND if buf.duration != Gst.CLOCK_TIME_NONE else 0.0
        self.audio_end_s = t + duration
        return Gst.PadProbeReturn.OK

    def audio_covers_video(self) -> bool:
        """Whether the audio let through sounds from the video's start to its end (give or
        take ``AUDIO_SLACK_S``): the page's buffer holds only what both tracks hold."""
        if None in (self.first_s, self.last_end_s, self.audio_first_s, self.audio_end_s):
            return False
        assert self.first_s is not None and self.last_end_s is not None
        assert self.audio_first_s is not None and self.audio_end_s is not None
        return (
            self.audio_first_s - self.first_s <= AUDIO_SLACK_S
            and self.last_end_s - self.audio_end_s <= AUDIO_SLACK_S
        )

    def _decided(self, t: float) -> bool:
        """Whether the video tells yet which chunk the audio frame at ``t`` belongs to."""
        if self.next_s is not None or self.video_ended:
            return True
        if self.first_s is None:
            return False
        return t < self.stop_s or self.video_s > t


def _stream_s(pad: Any, buf: Any) -> float | None:
    seg = pad.get_sticky_event(Gst.EventType.SEGMENT, 0)
    if buf is None or seg is None or buf.pts == Gst.CLOCK_TIME_NONE:
        return None
    return float(seg.parse_segment().to_stream_time(Gst.Format.TIME, buf.pts) / Gst.SECOND)


def _unbounded_queue() -> Any:
    # The demuxer feeds both streams from one thread: a bound on one queue would block it
    # while the audio waits for the video's cut. A chunk is at most a file.
    queue = Gst.ElementFactory.make("queue", None)
    for prop in ("max-size-buffers", "max-size-bytes", "max-size-time"):
        queue.set_property(prop, 0)
    return queue


def make_chunk(
    part: Part,
    start_utc: float,
    span_s: float,
    audio: frozenset[str] = AUDIO_CODECS,
    timeout_s: float = 10.0,
) -> Chunk:
    """The chunk of the segment ``part`` from the key frame at or before ``start_utc``, up to
    the first key frame ``span_s`` later or the segment's end (blocking); with the file's
    audio if it comes out as one of ``audio`` ("aac", "opus")."""
    chunk = _make_chunk(part, start_utc, span_s, audio, timeout_s)
    if chunk is None:  # audio in the file, but not all through the chunk's range: video only
        chunk = _make_chunk(part, start_utc, span_s, frozenset(), timeout_s)
    assert chunk is not None
    return chunk


def _audio_out(caps: Any) -> str | None:
    """What audio of these caps becomes in the chunk (as ``_mp4_audio_chain`` makes it)."""
    name = caps.get_structure(0).get_name()
    if name == "audio/x-opus":
        return "opus"
    return "aac" if name in ("audio/mpeg", "audio/x-alaw", "audio/x-mulaw") else None


def _make_chunk(
    part: Part, start_utc: float, span_s: float, audio: frozenset[str], timeout_s: float
) -> Chunk | None:
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
    lock = threading.Lock()
    taken: set[str] = set()  # "video", "audio": one stream of each at most
    audio_in = threading.Event()  # audio reached the muxer

    def branch(pad: Any, chain: list[Any], template: str) -> Any:
        for el in chain:
            pipeline.add(el)
        for a, b in itertools.pairwise(chain):
            a.link(b)
        mux_pad = mux.request_pad_simple(template)
        chain[-1].get_static_pad("src").link(mux_pad)
        for el in reversed(chain):
            el.sync_state_with_parent()
        gate.watch(pad, timing=False)
        pad.link(chain[0].get_static_pad("sink"))
        return mux_pad

    def pad_added_cb(_demux: Any, pad: Any) -> None:  # streaming thread
        caps = pad.get_current_caps() or pad.query_caps(None)
        parser_name = PARSERS.get(caps_name(pad))
        kind = "video" if parser_name is not None else "audio"
        with lock:
            wanted = kind not in taken and (parser_name is not None or _audio_out(caps) in audio)
            if wanted:
                taken.add(kind)
        if not wanted:
            _discard(pad)
            return
        if parser_name is not None:
            parser = Gst.ElementFactory.make(parser_name, None)
            parser.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, cut.probe_cb)
            parser.get_static_pad("src").add_probe(
                Gst.PadProbeType.EVENT_DOWNSTREAM, cut.video_eos_cb
            )
            branch(pad, [parser, _unbounded_queue()], "video_%u")
            return
        chain, _how = _mp4_audio_chain(caps)
        queue = _unbounded_queue()
        queue.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, cut.audio_probe_cb)
        mux_pad = branch(pad, [queue, *chain], "audio_%u")
        mux_pad.add_probe(Gst.PadProbeType.BUFFER, _set_once(audio_in))

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
    with lock:
        with_audio = "audio" in taken
    if with_audio and not (audio_in.is_set() and cut.audio_covers_video()):
        # No audio there (mp4mux would leave its track without a sample description), or
        # audio that stopped (the camera's) or started midway: video only.
        return None
    data = b"".join(pieces)
    codec = codec_string(data)
    if with_audio and cut.audio_first_s is not None:
        data = _place_audio(data, cut.audio_first_s - cut.first_s)
        codec = f"{codec},{audio_codec_string(data)}"
    media_start = first_presentation_s(data)
    return Chunk(
        data=data,
        codec=codec,
        first_utc=part.start_utc + cut.first_s,
        media_start_s=media_start,
        end_utc=part.start_utc + cut.last_end_s,
        next_utc=None if cut.next_s is None else part.start_utc + cut.next_s,
        frames=cut.frames,
    )


def _place_audio(data: bytes, offset_s: float) -> bytes:
    """The chunk with its audio starting ``offset_s`` after its video (where they start
    against each other in the file: mp4mux starts every track at 0; the later one is moved),
    and its Opus header readable (mp4mux < 1.22.4)."""
    data = fix_opus_dops_bytes(data)
    found = {t.handler: t for t in tracks(data)}
    audio, video = found.get(b"soun"), found.get(b"vide")
    if audio is None or video is None:
        return data
    offset_s += first_presentation_s(data) - first_presentation_s(data, b"soun")
    if offset_s >= 0:
        return shift_decode_times(data, audio.track_id, round(offset_s * audio.timescale))
    return shift_decode_times(data, video.track_id, round(-offset_s * video.timescale))
