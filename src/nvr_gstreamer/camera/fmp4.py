"""Reading fragmented MP4 for the browser: pure.

The codec string of an init segment (RFC 6381, what the page asks ``isTypeSupported`` about)
and where a fragment's first frame sits in its track's timeline.

For the recordings' playback chunks: the tracks of an init segment, the audio's codec string,
where a track's first fragment starts, and one track moved in time (its ``tfdt``).
"""

from __future__ import annotations

from dataclasses import dataclass


def _boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of the boxes in ``data``, recursing into the containers on the
    path to the sample entries (moov/trak/mdia/minf/stbl/stsd)."""
    found: list[tuple[bytes, int, int]] = []

    def walk(start: int, end: int) -> None:
        pos = start
        while pos + 8 <= end:
            size = int.from_bytes(data[pos : pos + 4], "big")
            kind = data[pos + 4 : pos + 8]
            if size < 8 or pos + size > end:
                return
            found.append((kind, pos, pos + size))
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
                walk(pos + 8, pos + size)
            elif kind == b"stsd":
                walk(pos + 16, pos + size)  # version, flags, entry count
            elif kind in (b"avc1", b"avc3", b"hvc1", b"hev1"):
                walk(pos + 8 + 78, pos + size)  # the visual sample entry's fixed part
            pos += size

    walk(0, len(data))
    return found


def codec_string(init: bytes) -> str:
    """The codec parameter of the init segment's first video track (RFC 6381), or ""."""
    boxes = _boxes(init)

    def entry_of(start: int, kinds: tuple[bytes, bytes]) -> str:
        return next((k for k, s, e in boxes if k in kinds and s < start < e), kinds[0]).decode()

    for kind, start, end in boxes:
        body = init[start + 8 : end]
        if kind == b"avcC" and len(body) >= 4:
            entry = entry_of(start, (b"avc1", b"avc3"))
            return f"{entry}.{body[1]:02x}{body[2]:02x}{body[3]:02x}"
        if kind == b"hvcC" and len(body) >= 13:
            entry = entry_of(start, (b"hvc1", b"hev1"))
            space = ("", "A", "B", "C")[body[1] >> 6]
            tier = "H" if body[1] & 0x20 else "L"
            profile = body[1] & 0x1F
            compat = int.from_bytes(body[2:6], "big")
            compat_rev = int(f"{compat:032b}"[::-1], 2)  # bits in reverse order, as hex
            constraints = body[6:12].rstrip(b"\0")
            level = body[12]
            text = f"{entry}.{space}{profile}.{compat_rev:x}.{tier}{level}"
            for byte in constraints:
                text += f".{byte:x}"
            return text
    return ""


def _children(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, end) of the boxes directly inside ``data[start:end]``."""
    out: list[tuple[bytes, int, int]] = []
    pos = start
    while pos + 8 <= end:
        size, header = int.from_bytes(data[pos : pos + 4], "big"), 8
        if size == 1 and pos + 16 <= end:
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            break
        out.append((data[pos + 4 : pos + 8], pos + header, pos + size))
        pos += size
    return out


def _find(
    data: bytes, path: tuple[bytes, ...], start: int = 0, end: int | None = None
) -> tuple[int, int] | None:
    """Payload (start, end) of the first box at ``path`` (each step a child of the one before)."""
    span: tuple[int, int] | None = (start, len(data) if end is None else end)
    for kind in path:
        assert span is not None
        span = next(((s, e) for k, s, e in _children(data, *span) if k == kind), None)
        if span is None:
            return None
    return span


@dataclass(frozen=True, slots=True)
class Track:
    track_id: int
    handler: bytes  # b"vide", b"soun", ...
    timescale: int  # ticks per second of its media time (mdhd)


def tracks(init: bytes) -> list[Track]:
    """The tracks of an init segment (``moov``), in their order there."""
    moov = _find(init, (b"moov",))
    if moov is None:
        return []
    out = []
    for kind, start, end in _children(init, *moov):
        if kind != b"trak":
            continue
        tkhd = _find(init, (b"tkhd",), start, end)
        mdhd = _find(init, (b"mdia", b"mdhd"), start, end)
        hdlr = _find(init, (b"mdia", b"hdlr"), start, end)
        if tkhd is None or mdhd is None or hdlr is None:
            continue
        ts, ms = tkhd[0], mdhd[0]
        track_id = int.from_bytes(
            init[ts + 20 : ts + 24] if init[ts] == 1 else init[ts + 12 : ts + 16], "big"
        )
        timescale = int.from_bytes(
            init[ms + 20 : ms + 24] if init[ms] == 1 else init[ms + 12 : ms + 16], "big"
        )
        out.append(Track(track_id, init[hdlr[0] + 8 : hdlr[0] + 12], timescale))
    return out


def _descriptor(data: bytes, pos: int, end: int) -> tuple[int, int, int] | None:
    """(tag, payload start, payload end) of the MPEG-4 descriptor at ``pos`` (ISO 14496-1)."""
    if pos + 2 > end:
        return None
    tag, pos, size = data[pos], pos + 1, 0
    for _ in range(4):  # the size: 7 bits a byte, the high bit says another byte follows
        if pos >= end:
            return None
        byte, pos = data[pos], pos + 1
        size = size << 7 | byte & 0x7F
        if not byte & 0x80:
            break
    return (tag, pos, pos + size) if pos + size <= end else None


def audio_codec_string(init: bytes) -> str:
    """The codec parameter of the init segment's first audio track (RFC 6381: ``mp4a.40.2``
    for AAC-LC, ``opus``), or "" when it has none the page could ask about."""
    for kind, start, end in _boxes(init):
        if kind == b"Opus":
            return "opus"
        if kind != b"mp4a":
            continue
        at = init.find(b"esds", start + 8, end)
        if at < 0:
            return ""
        esds_end = min(end, at - 4 + int.from_bytes(init[at - 4 : at], "big"))
        es = _descriptor(init, at + 8, esds_end)  # after the box's version and flags
        if es is None or es[0] != 0x03:
            return ""
        flags = init[es[1] + 2]
        pos = es[1] + 3 + (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
        if flags & 0x40:
            pos += 1 + init[pos]  # a URL, its length first
        config = _descriptor(init, pos, es[2])
        if config is None or config[0] != 0x04:
            return ""
        oti = init[config[1]]
        specific = _descriptor(init, config[1] + 13, config[2])
        if specific is None or specific[0] != 0x05 or specific[1] >= specific[2]:
            return f"mp4a.{oti:02x}"
        aot = init[specific[1]] >> 3
        if aot == 31 and specific[1] + 1 < specific[2]:
            aot = 32 + ((init[specific[1]] & 0x07) << 3 | init[specific[1] + 1] >> 5)
        return f"mp4a.{oti:02x}.{aot}"
    return ""


def _trafs(data: bytes) -> list[tuple[int, int, int]]:
    """(track id, payload start, end) of every ``traf`` of every ``moof``, in order."""
    out = []
    for kind, start, end in _children(data, 0, len(data)):
        if kind != b"moof":
            continue
        for k, s, e in _children(data, start, end):
            tfhd = _find(data, (b"tfhd",), s, e) if k == b"traf" else None
            if tfhd is not None:
                out.append((int.from_bytes(data[tfhd[0] + 4 : tfhd[0] + 8], "big"), s, e))
    return out


def first_presentation_s(data: bytes, handler: bytes = b"vide") -> float:
    """Presentation time (s) of the first sample of the first fragment of the first track of
    kind ``handler`` in a fragmented MP4 (``tfdt`` plus the first sample's composition
    offset), in its track's timescale (``mdhd``); 0.0 when the file does not say."""
    track = next((t for t in tracks(data) if t.handler == handler), None)
    traf = next(((s, e) for tid, s, e in _trafs(data) if track and tid == track.track_id), None)
    if track is None or traf is None or not track.timescale:
        return 0.0
    tfdt = _find(data, (b"tfdt",), *traf)
    if tfdt is None:
        return 0.0
    ts, _te = tfdt
    base = int.from_bytes(data[ts + 4 : ts + 12] if data[ts] == 1 else data[ts + 4 : ts + 8], "big")
    offset = 0
    trun = _find(data, (b"trun",), *traf)
    if trun is not None:
        rs, _re = trun
        version, flags = data[rs], int.from_bytes(data[rs + 1 : rs + 4], "big")
        pos = rs + 8 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
        pos += sum(4 for bit in (0x100, 0x200, 0x400) if flags & bit)
        if flags & 0x800:
            offset = int.from_bytes(data[pos : pos + 4], "big", signed=version == 1)
    return (base + offset) / track.timescale


def shift_decode_times(data: bytes, track_id: int, ticks: int) -> bytes:
    """``data`` (a fragmented MP4) with ``ticks`` added to the ``tfdt`` of every fragment of
    track ``track_id``: the whole track moves later by that much, the other tracks stay.

    mp4mux starts every track of a fragmented MP4 at 0, whatever its first timestamp: this
    puts back where one track starts against the others. A 32-bit ``tfdt`` that the shift
    would overflow raises ValueError."""
    out = bytearray(data)
    for tid, start, end in _trafs(data):
        tfdt = _find(data, (b"tfdt",), start, end) if tid == track_id else None
        if tfdt is None:
            continue
        ts = tfdt[0]
        width = 8 if data[ts] == 1 else 4
        value = int.from_bytes(data[ts + 4 : ts + 4 + width], "big") + ticks
        if not 0 <= value < 1 << (8 * width):
            raise ValueError(f"tfdt {value} does not fit in {width} bytes")
        out[ts + 4 : ts + 4 + width] = value.to_bytes(width, "big")
    return bytes(out)
