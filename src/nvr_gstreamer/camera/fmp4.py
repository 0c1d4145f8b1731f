"""Reading fragmented MP4 for the browser: pure.

The codec string of an init segment (RFC 6381, what the page asks ``isTypeSupported`` about)
and where a fragment's first frame sits in its track's timeline.
"""

from __future__ import annotations


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


def first_presentation_s(data: bytes) -> float:
    """Presentation time (s) of the first sample of the first fragment of a fragmented MP4
    (``tfdt`` plus the first sample's composition offset), in its track's timescale
    (``mdhd``); 0.0 when the file does not say."""
    mdhd = _find(data, (b"moov", b"trak", b"mdia", b"mdhd"))
    traf = _find(data, (b"moof", b"traf"))
    if mdhd is None or traf is None:
        return 0.0
    ms, _me = mdhd
    v1 = data[ms] == 1
    timescale = int.from_bytes(data[ms + 20 : ms + 24] if v1 else data[ms + 12 : ms + 16], "big")
    tfdt = _find(data, (b"tfdt",), *traf)
    if not timescale or tfdt is None:
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
    return (base + offset) / timescale
