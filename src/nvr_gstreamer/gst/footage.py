"""Recorded footage as one continuous stream: a run of segments, played back or exported.

``splitmuxsrc`` reads a list of segment files as one stream, laid back to back, so playback
crosses a segment boundary without a jump and a seek can land in any file. A
:class:`~nvr_gstreamer.storage.footage_runs.Footage` maps between that stream's offset and
wall-clock time; gaps between runs are skipped, as in every NVR's timeline player.

:func:`export_mp4` copies a time range into one MP4 file (no video re-encode: the copy starts
at the key frame at or before the range's start, as with ``ffmpeg -c copy``), written to a
partial name and renamed when complete. An edit list then makes the file begin at the range's
start (:mod:`nvr_gstreamer.storage.mp4_edit`): players decode from the key frame and show
the frame on screen at the requested instant first. Audio goes along, trimmed to the same
range: AAC and Opus copied, G.711 (which MP4 cannot hold) encoded to AAC; any other codec is
left out.
:class:`Player` decodes the video for display, on its own loop thread (audio is not played).

Longer than ~300 lines: playback and MP4 export read the same runs of segments through the same
concat/parse chains; the pure parts live in storage/footage_runs.py.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

from nvr_gstreamer.camera.media import LiveFrame  # noqa: E402
from nvr_gstreamer.gst.live import frame_from_sample  # noqa: E402
from nvr_gstreamer.gst.loop import GstLoop, Timer, init_gstreamer  # noqa: E402
from nvr_gstreamer.gst.remux import PARSERS, caps_name  # noqa: E402
from nvr_gstreamer.gst.weak import weak_cb  # noqa: E402
from nvr_gstreamer.storage.footage_runs import Footage  # noqa: E402
from nvr_gstreamer.storage.matroska import track_layout  # noqa: E402
from nvr_gstreamer.storage.mp4_edit import Mp4EditError, trim  # noqa: E402

logger = logging.getLogger(__name__)


def _source(footage: Footage, name: str = "footage") -> Any:
    src = Gst.ElementFactory.make("splitmuxsrc", name)
    locations = [str(p.path) for p in footage.parts]
    src.connect("format-location", lambda _el: locations)
    return src


def _discard(pad: Any, seen: threading.Event | None = None) -> None:
    """Drop everything ``pad`` pushes (setting ``seen`` at its first buffer).

    For a splitmuxsrc stream nobody takes. Left unlinked, splitmuxsrc pauses the pad at
    NOT_LINKED and stops draining its queue; a fakesink would wait for preroll in PAUSED
    (holding up the reader) and for an EOS that never comes when a later part lacks the
    stream. A dropped push succeeds: the reader reads on, in step with the other streams.
    """

    def probe_cb(_pad: Any, info: Any) -> Any:
        if seen is not None and info.type & Gst.PadProbeType.BUFFER:
            seen.set()
        return Gst.PadProbeReturn.DROP

    pad.add_probe(_SeekGate.MASK, probe_cb)


# The first one installed encodes G.711 for MP4, and its priming delay in samples (measured
# with GStreamer 1.22: neither encoder takes it out of its timestamps).
AAC_ENCODERS = {"avenc_aac": 1024, "voaacenc": 1600}
AAC_BITRATE = 32_000  # bit/s: plenty for telephone-band audio
# G.711 is 8 kHz; at 16 kHz an AAC frame (1024 samples) lasts 64 ms instead of 128 ms, so
# the padded last frame overruns the range's end by at most that much.
AAC_RATE = 16_000
# MP4 takes these as they are (mp4mux in 1.22 accepts audio/x-opus too).
_MP4_AUDIO_PARSERS = {"audio/mpeg": "aacparse", "audio/x-opus": "opusparse"}
# MP4 has no G.711: decoded and encoded to AAC.
_G711_DECODERS = {"audio/x-alaw": "alawdec", "audio/x-mulaw": "mulawdec"}


def _mp4_audio_chain(caps: Any) -> tuple[list[Any], str]:
    """Elements that turn this audio into something mp4mux takes: ([], why) if none can."""
    s = caps.get_structure(0)
    name = s.get_name()
    if name == "audio/mpeg":
        ok, version = s.get_int("mpegversion")
        if not ok or version not in (2, 4):
            return [], f"{name} (not AAC)"
    parser = _MP4_AUDIO_PARSERS.get(name)
    if parser is not None:
        return [Gst.ElementFactory.make(parser, None)], "copied"
    decoder = _G711_DECODERS.get(name)
    if decoder is None:
        return [], f"{name} has no place in MP4"
    encoder = None
    for factory in AAC_ENCODERS:
        encoder = Gst.ElementFactory.make(factory, None)
        if encoder is not None:
            break
    else:
        return [], f"{name} needs an AAC encoder ({' or '.join(AAC_ENCODERS)})"
    encoder.set_property("bitrate", AAC_BITRATE)
    delay_ns = AAC_ENCODERS[factory] * Gst.SECOND // AAC_RATE
    encoder.get_static_pad("src").add_probe(
        Gst.PadProbeType.BUFFER, _PrimingTrim(delay_ns).probe_cb
    )
    chain = [
        Gst.ElementFactory.make(decoder, None),
        Gst.ElementFactory.make("audioconvert", None),
        Gst.ElementFactory.make("audioresample", None),
        Gst.ElementFactory.make("capsfilter", None),
        encoder,
    ]
    chain[3].set_property("caps", Gst.Caps.from_string(f"audio/x-raw,rate={AAC_RATE}"))
    return chain, f"encoded to AAC with {encoder.get_factory().get_name()}"


class _PrimingTrim:
    """Takes an AAC encoder's priming delay out of its output, so that audio and video stay in
    sync in the MP4: each frame moves earlier by the delay, and the frames that would then
    start before the range (the priming) are dropped. (A player would otherwise play the
    priming first and every sound ``delay`` late: 64 ms with avenc_aac at 16 kHz.)"""

    def __init__(self, delay_ns: int) -> None:
        self.delay_ns = delay_ns

    def probe_cb(self, pad: Any, info: Any) -> Any:
        buf = info.get_buffer()
        seg = pad.get_sticky_event(Gst.EventType.SEGMENT, 0)
        if buf is None or seg is None or buf.pts == Gst.CLOCK_TIME_NONE:
            return Gst.PadProbeReturn.OK
        if buf.pts < seg.parse_segment().start + self.delay_ns:
            return Gst.PadProbeReturn.DROP
        buf.pts -= self.delay_ns
        if buf.dts != Gst.CLOCK_TIME_NONE:
            buf.dts -= self.delay_ns
        return Gst.PadProbeReturn.OK


class ExportError(Exception):
    pass


_MP4_PATH_TO_STSD = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")
_OPUS_MAX_INPUT_RATE = 768_000  # Hz; anything above is a field read in the wrong byte order


def _mp4_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of each ISO BMFF box in ``data[start:end]``."""
    i = start
    while i + 8 <= end:
        size, kind, header = int.from_bytes(data[i : i + 4], "big"), data[i + 4 : i + 8], 8
        if size == 1:
            size, header = int.from_bytes(data[i + 8 : i + 16], "big"), 16
        elif size == 0:
            size = end - i
        if size < header:
            return
        yield kind, i + header, min(end, i + size)
        i += size


def _fix_opus_dops(path: Path) -> bool:
    """Rewrite the Opus track's ``dOps`` box big-endian if mp4mux wrote it little-endian.

    mp4mux before 1.22.4 (Debian 12 ships 1.22.0) copies PreSkip, InputSampleRate and
    OutputGain from the OpusHead in its byte order (GStreamer commit 9e27d36e). Readers that
    follow the spec (ffmpeg, browsers) then take a PreSkip of 312 for 14337 samples and play
    the audio 0.3 s early. Fixed versions write the right order: nothing changes then.
    """
    with open(path, "r+b") as f:
        moov: tuple[int, bytes] | None = None
        offset = 0
        while True:  # top level: find moov without reading mdat
            f.seek(offset)
            header = f.read(16)
            if len(header) < 8:
                break
            size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if size == 1:
                size = int.from_bytes(header[8:16], "big")
            if kind == b"moov":
                f.seek(offset)
                moov = (offset, f.read(size))
                break
            if size < 8:
                break
            offset += size
        if moov is None:
            return False
        base, data = moov
        swaps = _dops_swaps(data)
        for at, swapped in swaps:
            f.seek(base + at)
            f.write(swapped)
        return bool(swaps)


def fix_opus_dops_bytes(data: bytes) -> bytes:
    """``data`` (an MP4 in memory: ``moov`` at the top level) with the Opus track's ``dOps``
    big-endian, as :func:`_fix_opus_dops` does to a file."""
    out = bytearray(data)
    for kind, start, end in _mp4_boxes(data, 0, len(data)):
        if kind == b"moov":
            for at, swapped in _dops_swaps(data[start - 8 : end]):
                out[start - 8 + at : start - 8 + at + len(swapped)] = swapped
    return bytes(out)


def _dops_swaps(data: bytes) -> list[tuple[int, bytes]]:
    """Where in ``data`` (a ``moov`` box) an Opus ``dOps`` written little-endian is, and its
    fields big-endian."""
    swaps = []
    for stsd_start, stsd_end in _find_boxes(data, 0, len(data), _MP4_PATH_TO_STSD):
        # stsd: version/flags and entry count, then the sample entries
        for kind, e_start, e_end in _mp4_boxes(data, stsd_start + 8, stsd_end):
            i = data.find(b"dOps", e_start, e_end) if kind == b"Opus" else -1
            if i < 0 or i + 14 > e_end:
                continue
            field = i + 4 + 2  # after version and channel count
            rate_be = int.from_bytes(data[field + 2 : field + 6], "big")
            rate_le = int.from_bytes(data[field + 2 : field + 6], "little")
            if rate_be <= _OPUS_MAX_INPUT_RATE or rate_le > _OPUS_MAX_INPUT_RATE:
                continue
            swapped = (
                data[field : field + 2][::-1]
                + data[field + 2 : field + 6][::-1]
                + data[field + 6 : field + 8][::-1]
            )
            swaps.append((field, swapped))
    return swaps


def _find_boxes(
    data: bytes, start: int, end: int, path: tuple[bytes, ...]
) -> Iterator[tuple[int, int]]:
    """(payload start, end) of every box at ``path`` below ``data[start:end]``."""
    for kind, b_start, b_end in _mp4_boxes(data, start, end):
        if kind != path[0]:
            continue
        if len(path) == 1:
            yield b_start, b_end
        else:
            yield from _find_boxes(data, b_start, b_end, path[1:])


def _audio_to_copy(footage: Footage, name: str) -> bool:
    """Whether the parts hold audio that can go into the export (read from their headers).

    splitmuxsrc takes its streams from the first part: a later part with a stream more fails
    to open (ExportError here, with where it changed); with a stream less, that stream never
    ends, so audio is left out unless every part holds the same tracks.
    """
    layouts = [(p, track_layout(p.path)) for p in footage.parts]
    known = [(p, layout) for p, layout in layouts if layout is not None]
    if not known:
        return True  # unreadable headers: let the pipeline find out
    first = known[0][1]
    kinds = Counter(kind for kind, _codec in first)
    for part, layout in known[1:]:
        if Counter(kind for kind, _codec in layout) - kinds:
            at = time.strftime("%H:%M:%S", time.localtime(part.start_utc))
            raise ExportError(
                f"the recording gained a stream (audio) at {at}: "
                "export the time before and after it separately"
            )
    if not kinds["audio"]:
        return False
    if any(layout != first for _p, layout in known):
        logger.info("export to %s: audio left out: the parts differ in their audio", name)
        return False
    return True


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    duration_s: float  # as players show it (the edited duration)
    start_utc: float  # wall time of the first frame shown: the one on screen at the start
    keyframe_utc: float  # wall time of the first frame in the file (decoded, not shown)


def export_mp4(
    footage: Footage,
    start_utc: float,
    end_utc: float,
    dest: Path,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    timeout_s: float = 600.0,
    exact_start: bool = True,
) -> ExportResult:
    """Copy ``[start_utc, end_utc]`` of ``footage`` into one MP4 at ``dest`` (blocking).

    With ``exact_start`` the file begins at the frame on screen at ``start_utc`` (an edit
    list over the GOP before it); without, at the key frame at or before it."""
    init_gstreamer()
    if end_utc <= start_utc:
        raise ExportError("the range is empty")
    start = footage.offset_of(start_utc)
    stop = footage.offset_of(end_utc)
    if stop <= start:
        raise ExportError("nothing was recorded in that range")
    with_audio = _audio_to_copy(footage, dest.name)
    partial = dest.with_name(dest.name + ".partial")
    job = _Copy(footage, start, stop, partial, dest.name, progress, cancel, timeout_s)
    try:
        copied = job.run_retrying(with_audio)
        if copied.audio_filled < copied.audio_tracks:
            # mp4mux leaves a track that never got data without a sample description, and
            # players then refuse the whole file.
            logger.info("export to %s: no audio in the range, exported without", dest.name)
            copied = job.run_retrying(False)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if _fix_opus_dops(partial):
        logger.info("export to %s: Opus header rewritten big-endian (mp4mux < 1.22.4)", dest.name)
    first = copied.first_s if copied.first_s is not None else start
    shown, duration = first, stop - first
    if exact_start and start > first:
        try:
            cut = trim(partial, _exact(start - first), _exact(stop - first))
        except Mp4EditError as exc:  # the file is as mp4mux wrote it: still a good export
            logger.warning("export to %s: starts at the key frame before (%s)", dest.name, exc)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ExportError(f"export failed: {exc.strerror or exc}") from None
        else:
            shown, duration = first + float(cut.start_s), float(cut.duration_s)
    os.replace(partial, dest)
    if progress is not None:
        progress(1.0)
    return ExportResult(dest, duration, footage.wall_of(shown), footage.wall_of(first))


def _exact(seconds: float) -> Fraction:
    """Seconds as a fraction, to the microsecond (the stream's offsets are floats)."""
    return Fraction(round(seconds * 1_000_000), 1_000_000)


@dataclass(frozen=True, slots=True)
class _Copied:
    first_s: float | None  # stream offset of the first video frame
    audio_tracks: int
    audio_filled: int  # audio tracks that got data into the muxer


class _NotOpened(ExportError):
    pass


class _Copy:
    """One run of the export pipeline into ``partial``.

    Video and audio are read by two ``splitmuxsrc`` over the same files: the muxer takes
    frames in time order, so with one reader a stretch of recording without audio (the
    camera's audio stopped) would hold the video back until the reader's queue is full, and
    the copy would never end. Each reader drops the other's streams.
    """

    def __init__(
        self,
        footage: Footage,
        start: float,
        stop: float,
        partial: Path,
        name: str,
        progress: Callable[[float], None] | None,
        cancel: threading.Event | None,
        timeout_s: float,
    ) -> None:
        self.footage = footage
        self.start = start
        self.stop = stop
        self.partial = partial
        self.name = name  # of the export, for the log
        self.progress = progress
        self.cancel = cancel
        self.timeout_s = timeout_s

    def run_retrying(self, with_audio: bool) -> _Copied:
        try:
            return self.run(with_audio)
        except _NotOpened as e:
            # Seen about once in a few hundred opens (GStreamer 1.22.0): a splitmuxsrc part
            # reader started from where it measured the file's end and gave no video at all.
            # A fresh pipeline reads normally.
            logger.info("export to %s: %s; trying once more", self.name, e)
            return self.run(with_audio)

    def run(self, with_audio: bool) -> _Copied:
        pipeline = Gst.Pipeline.new("export")
        mux = Gst.ElementFactory.make("mp4mux", "mux")
        sink = Gst.ElementFactory.make("filesink", "sink")
        sink.set_property("location", str(self.partial))
        pipeline.add(mux)
        pipeline.add(sink)
        mux.link(sink)
        video = _Reader(pipeline, mux, self.footage, "video", self.name)
        readers = [video]
        if with_audio:
            readers.append(_Reader(pipeline, mux, self.footage, "audio", self.name))
        bus = pipeline.get_bus()
        try:
            pipeline.set_state(Gst.State.PAUSED)
            for reader in readers:
                if not reader.gate.opened.wait(10.0):
                    raise _NotOpened(_bus_error(bus) or "the recording could not be opened")
            # The muxer must see nothing before the seek: it cannot take a flush once it
            # started. To the sources: the seek must not meet filesink's byte segment.
            flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT | Gst.SeekFlags.SNAP_BEFORE
            for reader in readers:
                if not reader.src.seek(
                    1.0,
                    Gst.Format.TIME,
                    flags,
                    Gst.SeekType.SET,
                    int(self.start * Gst.SECOND),
                    Gst.SeekType.SET,
                    int(self.stop * Gst.SECOND),
                ):
                    raise ExportError("seeking in the recording failed")
            pipeline.set_state(Gst.State.PLAYING)
            self._wait(pipeline, bus)
        finally:
            pipeline.set_state(Gst.State.NULL)
            for reader in readers:
                reader.release()
        audio = readers[1:]
        return _Copied(
            video.gate.first_s,
            sum(len(r.filled) for r in audio),
            sum(f.is_set() for r in audio for f in r.filled),
        )

    def _wait(self, pipeline: Any, bus: Any) -> None:
        span = self.stop - self.start
        waited = 0.0
        while True:
            msg = bus.timed_pop_filtered(
                100 * Gst.MSECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
            )
            if msg is not None and msg.type == Gst.MessageType.ERROR:
                err, _dbg = msg.parse_error()
                raise ExportError(f"export failed: {err.message}")
            if msg is not None:
                return
            waited += 0.1
            if self.cancel is not None and self.cancel.is_set():
                raise ExportError("export cancelled")
            if waited > self.timeout_s:
                raise ExportError("export timed out")
            if self.progress is not None:
                ok, pos = pipeline.query_position(Gst.Format.TIME)
                if ok and pos >= 0:
                    self.progress(min(1.0, max(0.0, (pos / Gst.SECOND - self.start) / span)))


class _Reader:
    """A ``splitmuxsrc`` feeding the export's muxer with one kind of stream (video or audio)."""

    def __init__(self, pipeline: Any, mux: Any, footage: Footage, kind: str, name: str) -> None:
        self.pipeline = pipeline
        self.mux = mux
        self.kind = kind
        self.name = name  # of the file written, for the log
        self.gate = _SeekGate()
        self.filled: list[threading.Event] = []  # per audio track: data reached the muxer
        self.src = _source(footage, f"footage-{kind}")
        pipeline.add(self.src)
        self._handler = self.src.connect("pad-added", self._pad_added_cb)

    def release(self) -> None:
        # The handler holds this reader, which holds the pipeline: a cycle through C.
        self.src.disconnect(self._handler)

    def _pad_added_cb(self, _src: Any, pad: Any) -> None:  # streaming thread
        name = caps_name(pad)
        if self.kind == "video":
            parser_name = PARSERS.get(name)
            if parser_name is not None:
                self._add_branch(pad, [Gst.ElementFactory.make(parser_name, None)], "video_%u")
            else:  # the audio reader's, or nobody's
                _discard(pad)
            return
        chain: list[Any] = []
        how = "not audio"
        if name.startswith("audio/"):
            chain, how = _mp4_audio_chain(pad.get_current_caps() or pad.query_caps(None))
        if chain:
            logger.info("export to %s: %s audio %s", self.name, name, how)
            self._add_branch(pad, chain, "audio_%u")
            return
        if name.startswith("audio/"):
            logger.info("export to %s: %s left out: %s", self.name, name, how)
        # The video (the other reader copies it): read and dropped. This reader is ready to
        # seek when any of its streams produced data.
        _discard(pad, self.gate.opened)

    def _add_branch(self, pad: Any, chain: list[Any], template: str) -> None:
        for el in chain:
            self.pipeline.add(el)
        for a, b in itertools.pairwise(chain):
            a.link(b)
        mux_pad = self.mux.request_pad_simple(template)
        chain[-1].get_static_pad("src").link(mux_pad)
        if template.startswith("audio"):
            filled = threading.Event()
            self.filled.append(filled)
            mux_pad.add_probe(Gst.PadProbeType.BUFFER, _set_once(filled))
        for el in reversed(chain):
            el.sync_state_with_parent()
        self.gate.watch(pad, timing=template.startswith("video"))
        pad.link(chain[0].get_static_pad("sink"))


def _set_once(event: threading.Event) -> Callable[[Any, Any], Any]:
    # A closure over the event alone: a probe left on a pad must not hold the pipeline.
    def probe_cb(_pad: Any, _info: Any) -> Any:
        event.set()
        return Gst.PadProbeReturn.REMOVE

    return probe_cb


class _SeekGate:
    """Holds back every buffer and flush until the export's seek has flushed the source.

    One gate watches every stream of a reader: the muxer must see nothing from any of them
    before the seek. The first video buffer after it gives the copy's start (``first_s``).
    """

    MASK = (
        Gst.PadProbeType.BUFFER | Gst.PadProbeType.EVENT_DOWNSTREAM | Gst.PadProbeType.EVENT_FLUSH
    )

    def __init__(self) -> None:
        self.opened = threading.Event()  # the source produced data: it can seek now
        self.first_s: float | None = None

    def watch(self, pad: Any, timing: bool) -> None:
        pad.add_probe(self.MASK, _PadGate(self, timing).probe_cb)


class _PadGate:
    def __init__(self, gate: _SeekGate, timing: bool) -> None:
        self.gate = gate
        self.timing = timing
        self.flushed = False

    def probe_cb(self, pad: Any, info: Any) -> Any:
        if not info.type & Gst.PadProbeType.BUFFER:
            event = info.get_event()
            if event.type == Gst.EventType.FLUSH_STOP and not self.flushed:
                self.flushed = True
                return Gst.PadProbeReturn.DROP
            if event.type in (Gst.EventType.FLUSH_START, Gst.EventType.FLUSH_STOP):
                return Gst.PadProbeReturn.DROP if not self.flushed else Gst.PadProbeReturn.OK
            if event.type == Gst.EventType.EOS and not self.flushed:
                # Dropped buffers meet no back-pressure: a short file can be read to its end
                # before the seek, and an EOS let through would end the muxer's track then.
                return Gst.PadProbeReturn.DROP
            return Gst.PadProbeReturn.OK
        if not self.flushed:
            self.gate.opened.set()
            return Gst.PadProbeReturn.DROP
        if not self.timing:
            return Gst.PadProbeReturn.REMOVE
        buf = info.get_buffer()
        seg = pad.get_sticky_event(Gst.EventType.SEGMENT, 0)
        if buf is not None and seg is not None and buf.pts != Gst.CLOCK_TIME_NONE:
            t = seg.parse_segment().to_stream_time(Gst.Format.TIME, buf.pts)
            self.gate.first_s = t / Gst.SECOND
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
    ``on_end``. Control methods are safe from any thread. Audio is not played: its streams
    are read and dropped, so that a file with audio plays exactly as one without.
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
        if caps_name(pad) in PARSERS:
            pad.link(self._decode.get_static_pad("sink"))
        else:
            _discard(pad)  # audio is not played; the reader must still read past it

    def _decoded_pad_cb(self, _decode: Any, pad: Any) -> None:
        if caps_name(pad).startswith("video/"):
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
