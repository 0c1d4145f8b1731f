"""Cut the start of an MP4's presentation with an edit list, without touching its samples.

An export copies video from the key frame at or before the requested start (no re-encode).
To make the file *begin* at the requested instant, each track gets an edit list (``edts/elst``,
ISO/IEC 14496-12 §8.6.6) that maps presentation time 0 to the requested instant in that
track's media timeline: a player decodes the preceding GOP from the key frame and shows
nothing before the edit (ffmpeg's mov demuxer, Chromium, Safari, VLC ≥ 3 do so).

Everything happens in ``moov``: the new edit list of every track is the old one (mp4mux
writes one: an empty edit for a track starting late, a media time for B-frame delay) cropped
to the window ``[skip, skip + length)`` of the old presentation, so that new presentation time
``t`` shows what old presentation time ``skip + t`` showed, for every track alike (audio and
video keep their sync). ``tkhd`` durations become the sum of their edits, ``mvhd``'s the
longest track. Sample tables, ``mdat`` and ``mdhd`` stay as they are.

``moov`` grows by the edit boxes (a few dozen bytes per track). mp4mux (default settings)
writes it after ``mdat``: chunk offsets then stay valid. A file with ``moov`` before its media
data (faststart) gets its ``stco``/``co64`` offsets moved by the growth; one that would need a
32-bit offset past 4 GiB, and fragmented MP4, are refused (:class:`Mp4EditError`).

Pure bytes: no GStreamer. :func:`crop_edits` is the arithmetic, :func:`trim` the file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "Edit",
    "Mp4EditError",
    "TrackInfo",
    "Trimmed",
    "crop_edits",
    "presentation_of",
    "read_tracks",
    "trim",
]

UNITY_RATE = 0x0001_0000  # media_rate 1.0 (16.16 fixed point)
_CONTAINERS = frozenset({b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl"})
_TAIL_IN_MEMORY = 16 * 1024 * 1024  # boxes after moov rewritten in place up to this size
_COPY_CHUNK = 4 * 1024 * 1024


class Mp4EditError(Exception):
    """The file cannot be edited (not an MP4 we understand, fragmented, offsets overflow)."""


@dataclass(frozen=True, slots=True)
class Edit:
    """One ``elst`` entry: ``duration`` in the movie timescale, ``media_time`` in the track's
    (-1: an empty edit, showing nothing for its duration)."""

    duration: int
    media_time: int
    rate: int = UNITY_RATE


@dataclass(frozen=True, slots=True)
class TrackInfo:
    handler: str  # "vide", "soun", ...
    timescale: int  # of the media (mdhd)
    media_duration: int  # mdhd, in ``timescale``
    tkhd_duration: int  # in the movie timescale
    edits: tuple[Edit, ...] | None  # None: no edit list (the media plays from time 0)
    first_composition: int  # composition time of the first sample (ctts), media ticks


def _implicit(
    edits: Sequence[Edit] | None, media_duration: int, movie_ts: int, media_ts: int
) -> list[Edit]:
    if edits is not None:
        return list(edits)
    return [Edit(round(Fraction(media_duration * movie_ts, media_ts)), 0)]


def presentation_of(
    media_time: int, edits: Sequence[Edit] | None, movie_ts: int, media_ts: int
) -> Fraction:
    """Presentation time (s) at which ``media_time`` (track ticks) is shown: through the first
    edit that holds it, else by extending the first non-empty edit (a time before it)."""
    if edits is None:
        return Fraction(media_time, media_ts)
    at = Fraction(0)
    first: tuple[Fraction, Edit] | None = None
    for e in edits:
        if e.media_time >= 0:
            if first is None:
                first = (at, e)
            span = Fraction(e.duration * media_ts, movie_ts)
            if e.media_time <= media_time < e.media_time + span:
                return at + Fraction(media_time - e.media_time, media_ts)
        at += Fraction(e.duration, movie_ts)
    if first is None:
        raise Mp4EditError("the track's edit list shows none of its media")
    start, e = first
    return start + Fraction(media_time - e.media_time, media_ts)


def crop_edits(
    edits: Sequence[Edit] | None,
    media_duration: int,
    movie_ts: int,
    media_ts: int,
    skip: Fraction,
    length: Fraction,
) -> tuple[Edit, ...]:
    """The edit list showing ``[skip, skip + length)`` (seconds) of the presentation that
    ``edits`` give (None: the whole media from time 0). Boundaries are rounded to the nearest
    tick of each timescale, never accumulated. Edits with a rate other than 1 are refused."""
    if skip < 0 or length < 0:
        raise ValueError("skip and length must not be negative")
    window_end = skip + length
    out: list[Edit] = []
    at = Fraction(0)
    for e in _implicit(edits, media_duration, movie_ts, media_ts):
        begin, end = at, at + Fraction(e.duration, movie_ts)
        at = end
        a, b = max(begin, skip), min(end, window_end)
        if b <= a:
            continue
        if e.media_time >= 0 and e.rate != UNITY_RATE:
            raise Mp4EditError(f"an edit plays at rate {e.rate / UNITY_RATE:g}: not supported")
        duration = round((b - skip) * movie_ts) - round((a - skip) * movie_ts)
        if duration <= 0:
            continue
        media_time = -1 if e.media_time < 0 else e.media_time + round((a - begin) * media_ts)
        out.append(Edit(duration, media_time, e.rate))
    return tuple(out)


# ---- boxes -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Box:
    kind: bytes
    payload: bytes  # leaf boxes: everything after the header
    children: list[_Box] | None = None  # container boxes: parsed children instead

    def encode(self) -> bytes:
        body = (
            self.payload
            if self.children is None
            else b"".join(child.encode() for child in self.children)
        )
        size = 8 + len(body)
        if size > 0xFFFF_FFFF:
            return (1).to_bytes(4, "big") + self.kind + (size + 8).to_bytes(8, "big") + body
        return size.to_bytes(4, "big") + self.kind + body

    def child(self, kind: bytes) -> _Box | None:
        return next((c for c in self.children or () if c.kind == kind), None)

    def path(self, *kinds: bytes) -> _Box | None:
        box: _Box | None = self
        for kind in kinds:
            box = box.child(kind) if box is not None else None
        return box


def _iter_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in ``data[start:end]``."""
    i = start
    while i < end:
        if i + 8 > end:
            raise Mp4EditError(f"truncated box header at byte {i}")
        size, kind, header = int.from_bytes(data[i : i + 4], "big"), data[i + 4 : i + 8], 8
        if size == 1:
            size, header = int.from_bytes(data[i + 8 : i + 16], "big"), 16
        elif size == 0:
            size = end - i
        if size < header or i + size > end:
            raise Mp4EditError(f"box {kind!r} at byte {i} has a bad size ({size})")
        yield kind, i + header, i + size
        i += size


def _parse(data: bytes, start: int, end: int) -> list[_Box]:
    boxes = []
    for kind, p_start, p_end in _iter_boxes(data, start, end):
        if kind in _CONTAINERS:
            boxes.append(_Box(kind, b"", _parse(data, p_start, p_end)))
        else:
            boxes.append(_Box(kind, data[p_start:p_end]))
    return boxes


def _top_level(f: BinaryIO, file_size: int) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of every top-level box, reading only their headers."""
    out = []
    offset = 0
    while offset < file_size:
        f.seek(offset)
        header = f.read(16)
        if len(header) < 8:
            raise Mp4EditError(f"truncated box header at byte {offset}")
        size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if size == 1:
            size = int.from_bytes(header[8:16], "big")
        elif size == 0:
            size = file_size - offset
        if size < 8 or offset + size > file_size:
            raise Mp4EditError(f"box {kind!r} at byte {offset} has a bad size ({size})")
        out.append((kind, offset, size))
        offset += size
    return out


# ---- the fields read and written -------------------------------------------------------------


def _u(data: bytes, at: int, n: int) -> int:
    return int.from_bytes(data[at : at + n], "big")


def _full_version(payload: bytes) -> int:
    if not payload:
        raise Mp4EditError("empty full box")
    return payload[0]


def _mvhd_timescale(mvhd: bytes) -> int:
    return _u(mvhd, 20, 4) if _full_version(mvhd) == 1 else _u(mvhd, 12, 4)


def _duration_at(payload: bytes, kind: bytes) -> tuple[int, int]:
    """(offset, width) of the duration field of an mvhd or tkhd payload."""
    v1 = _full_version(payload) == 1
    # version and flags, creation and modification times; then mvhd: timescale, duration;
    # tkhd: track id, reserved, duration
    at = 4 + (16 if v1 else 8) + (4 if kind == b"mvhd" else 8)
    return at, 8 if v1 else 4


def _set_duration(payload: bytes, kind: bytes, duration: int) -> bytes:
    """mvhd / tkhd with a new duration (its field's width kept)."""
    at, width = _duration_at(payload, kind)
    if duration >= 1 << (8 * width):
        raise Mp4EditError(f"{kind.decode()} duration {duration} does not fit its field")
    return payload[:at] + duration.to_bytes(width, "big") + payload[at + width :]


def _duration_of(payload: bytes, kind: bytes) -> int:
    at, width = _duration_at(payload, kind)
    return _u(payload, at, width)


def _mdhd(payload: bytes) -> tuple[int, int]:
    """(timescale, duration)."""
    if _full_version(payload) == 1:
        return _u(payload, 20, 4), _u(payload, 24, 8)
    return _u(payload, 12, 4), _u(payload, 16, 4)


def _read_elst(payload: bytes) -> tuple[Edit, ...]:
    v1 = _full_version(payload) == 1
    count = _u(payload, 4, 4)
    width = 8 if v1 else 4
    entry = 2 * width + 4
    if 8 + count * entry > len(payload):
        raise Mp4EditError("truncated elst")
    edits = []
    for i in range(count):
        at = 8 + i * entry
        duration = _u(payload, at, width)
        media_time = int.from_bytes(payload[at + width : at + 2 * width], "big", signed=True)
        rate = _u(payload, at + 2 * width, 4)  # integer and fraction parts, 16.16
        edits.append(Edit(duration, media_time, rate))
    return tuple(edits)


def _elst_payload(edits: Sequence[Edit]) -> bytes:
    v1 = any(e.duration > 0xFFFF_FFFF or not -(2**31) <= e.media_time < 2**31 for e in edits)
    width = 8 if v1 else 4
    out = bytearray((1 if v1 else 0).to_bytes(1, "big") + b"\0\0\0")
    out += len(edits).to_bytes(4, "big")
    for e in edits:
        out += e.duration.to_bytes(width, "big")
        out += e.media_time.to_bytes(width, "big", signed=True)
        out += e.rate.to_bytes(4, "big")
    return bytes(out)


def _table(stbl: _Box | None, kind: bytes) -> list[tuple[int, int]]:
    """(count, value) entries of an stts or ctts box; [] when absent."""
    box = stbl.child(kind) if stbl is not None else None
    if box is None:
        return []
    data = box.payload
    count = _u(data, 4, 4)
    if 8 + 8 * count > len(data):
        raise Mp4EditError(f"truncated {kind.decode()}")
    signed = kind == b"ctts" and _full_version(data) == 1
    return [
        (
            _u(data, 8 + 8 * i, 4),
            int.from_bytes(data[12 + 8 * i : 16 + 8 * i], "big", signed=signed),
        )
        for i in range(count)
    ]


def _first_composition(stbl: _Box | None) -> int:
    """Composition time of the first sample: its decode time (0) plus its ctts offset."""
    ctts = _table(stbl, b"ctts")
    return ctts[0][1] if ctts else 0


def _composition_times(stbl: _Box | None) -> list[int]:
    """Every sample's composition time (decode time from stts, plus ctts), in decode order."""
    decode: list[int] = []
    t = 0
    for count, delta in _table(stbl, b"stts"):
        for _ in range(count):
            decode.append(t)
            t += delta
    offsets = [value for count, value in _table(stbl, b"ctts") for _ in range(count)]
    if offsets and len(offsets) != len(decode):
        raise Mp4EditError("stts and ctts disagree on the number of samples")
    return [d + o for d, o in zip(decode, offsets, strict=True)] if offsets else decode


def _track(trak: _Box) -> TrackInfo:
    tkhd = trak.child(b"tkhd")
    mdhd = trak.path(b"mdia", b"mdhd")
    hdlr = trak.path(b"mdia", b"hdlr")
    if tkhd is None or mdhd is None or hdlr is None:
        raise Mp4EditError("a track lacks tkhd, mdhd or hdlr")
    timescale, media_duration = _mdhd(mdhd.payload)
    if timescale <= 0:
        raise Mp4EditError("a track has timescale 0")
    elst = trak.path(b"edts", b"elst")
    return TrackInfo(
        handler=hdlr.payload[8:12].decode("latin-1"),
        timescale=timescale,
        media_duration=media_duration,
        tkhd_duration=_duration_of(tkhd.payload, b"tkhd"),
        edits=_read_elst(elst.payload) if elst is not None else None,
        first_composition=_first_composition(trak.path(b"mdia", b"minf", b"stbl")),
    )


def _shift_offsets(stbl: _Box, past: int, delta: int) -> None:
    """Move every chunk offset at or after ``past`` by ``delta`` (moov grew before them)."""
    for box in stbl.children or ():
        if box.kind not in (b"stco", b"co64"):
            continue
        width = 4 if box.kind == b"stco" else 8
        count = _u(box.payload, 4, 4)
        out = bytearray(box.payload)
        for i in range(count):
            at = 8 + i * width
            offset = _u(box.payload, at, width)
            if offset >= past:
                offset += delta
                if offset >= 1 << (8 * width):
                    raise Mp4EditError(
                        "moving the media data would overflow a 32-bit chunk offset (stco)"
                    )
                out[at : at + width] = offset.to_bytes(width, "big")
        box.payload = bytes(out)


@dataclass(frozen=True, slots=True)
class _Moov:
    offset: int
    size: int
    boxes: _Box
    movie_ts: int
    chunks_after: bool  # some media data lies after moov (faststart layout)


def _read_moov(path: Path) -> _Moov:
    size = path.stat().st_size
    with open(path, "rb") as f:
        top = _top_level(f, size)
        kinds = [k for k, _o, _s in top]
        if kinds.count(b"moov") != 1:
            raise Mp4EditError(f"expected one moov box, found {kinds.count(b'moov')}")
        if b"moof" in kinds:
            raise Mp4EditError("fragmented MP4 (moof) is not supported")
        _k, offset, moov_size = next(t for t in top if t[0] == b"moov")
        f.seek(offset)
        data = f.read(moov_size)
    parsed = _parse(data, 0, len(data))[0]
    if parsed.child(b"mvex") is not None:
        raise Mp4EditError("fragmented MP4 (mvex) is not supported")
    mvhd = parsed.child(b"mvhd")
    if mvhd is None:
        raise Mp4EditError("moov has no mvhd")
    movie_ts = _mvhd_timescale(mvhd.payload)
    if movie_ts <= 0:
        raise Mp4EditError("the movie timescale is 0")
    after = any(k == b"mdat" and o > offset for k, o, _s in top)
    return _Moov(offset, moov_size, parsed, movie_ts, after)


def read_tracks(path: Path) -> tuple[int, list[TrackInfo]]:
    """(movie timescale, every track) of an MP4 file."""
    moov = _read_moov(path)
    traks = [c for c in moov.boxes.children or () if c.kind == b"trak"]
    return moov.movie_ts, [_track(t) for t in traks]


@dataclass(frozen=True, slots=True)
class Trimmed:
    start_s: Fraction  # first shown video frame, after the first video sample
    duration_s: Fraction  # of the movie (mvhd)


def trim(path: Path, start_s: Fraction, end_s: Fraction, snap: bool = True) -> Trimmed:
    """Make ``path`` present ``[start_s, end_s)``, both counted from its first video sample's
    presentation (the key frame an export starts with), for every track alike; rewritten in
    place (``moov`` after the media) or through a temporary copy (``moov`` before it).

    With ``snap`` the start moves back to the video frame on screen at ``start_s`` (the latest
    one presented at or before it, 1 ms of rounding allowed): every player then shows that
    frame first, instead of each deciding what to do with a frame cut in the middle. A second
    trim composes with the first."""
    if start_s < 0 or end_s <= start_s:
        raise ValueError("expected 0 <= start_s < end_s")
    moov = _read_moov(path)
    root = moov.boxes
    traks = [c for c in root.children or () if c.kind == b"trak"]
    infos = [_track(t) for t in traks]
    found = next(((t, i) for t, i in zip(traks, infos, strict=True) if i.handler == "vide"), None)
    if found is None:
        raise Mp4EditError("the file has no video track")
    vtrak, video = found
    ts = video.timescale

    def shown(ct: int) -> Fraction:
        return presentation_of(ct, video.edits, moov.movie_ts, ts)

    origin = shown(video.first_composition)
    skip = origin + start_s
    if snap:
        target = video.first_composition + start_s * ts + Fraction(ts, 1000)
        times = _composition_times(vtrak.path(b"mdia", b"minf", b"stbl"))
        on_screen = [ct for ct in times if video.first_composition <= ct <= target]
        if on_screen:
            skip = shown(max(on_screen))
    skip = max(skip, Fraction(0))  # nothing is shown before presentation time 0
    length = origin + end_s - skip
    if length <= 0:
        raise Mp4EditError("the range to keep lies outside the file's presentation")
    longest = 0
    for trak, info in zip(traks, infos, strict=True):
        edits = crop_edits(
            info.edits, info.media_duration, moov.movie_ts, info.timescale, skip, length
        )
        if not edits:  # nothing of this track in the window: it shows nothing
            edits = (Edit(round(length * moov.movie_ts), -1),)
        duration = sum(e.duration for e in edits)  # tkhd: the sum of the track's edits
        longest = max(longest, duration)
        children = trak.children or []
        edts = _Box(b"edts", b"", [_Box(b"elst", _elst_payload(edits))])
        kept = [c for c in children if c.kind != b"edts"]
        at = next((i + 1 for i, c in enumerate(kept) if c.kind == b"tkhd"), 0)
        kept.insert(at, edts)
        trak.children = kept
        tkhd = trak.child(b"tkhd")
        assert tkhd is not None  # checked by _track
        tkhd.payload = _set_duration(tkhd.payload, b"tkhd", duration)
    mvhd = root.child(b"mvhd")
    assert mvhd is not None
    mvhd.payload = _set_duration(mvhd.payload, b"mvhd", longest)
    encoded = root.encode()
    delta = len(encoded) - moov.size
    if moov.chunks_after and delta:
        for trak in traks:
            stbl = trak.path(b"mdia", b"minf", b"stbl")
            if stbl is not None:
                _shift_offsets(stbl, moov.offset + moov.size, delta)
        encoded = root.encode()
    _write_moov(path, moov, encoded)
    return Trimmed(skip - origin, Fraction(longest, moov.movie_ts))


def _write_moov(path: Path, moov: _Moov, encoded: bytes) -> None:
    size = path.stat().st_size
    tail_at = moov.offset + moov.size
    if not moov.chunks_after and size - tail_at <= _TAIL_IN_MEMORY:
        with open(path, "r+b") as f:
            f.seek(tail_at)
            tail = f.read()
            f.seek(moov.offset)
            f.write(encoded)
            f.write(tail)
            f.truncate()
        return
    tmp = path.with_name(path.name + ".edit")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            _copy(src, dst, moov.offset)
            dst.write(encoded)
            src.seek(tail_at)
            shutil.copyfileobj(src, dst, _COPY_CHUNK)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy(src: BinaryIO, dst: BinaryIO, n: int) -> None:
    src.seek(0)
    left = n
    while left > 0:
        chunk = src.read(min(left, _COPY_CHUNK))
        if not chunk:
            raise Mp4EditError("the file shrank while it was edited")
        dst.write(chunk)
        left -= len(chunk)
