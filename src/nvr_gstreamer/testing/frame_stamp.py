"""The simulator's frame stamp: the wall-clock time a frame was made (native/nvrclockstamp.c).

A band along the bottom of the picture, ``CELLS`` equal cells wide: a white start cell, the 32
bits of (milliseconds since the epoch modulo 2^32) most significant first (white = 1), a black
end cell. The browser reads the same layout with ``frame_stamp.js``.
"""

from __future__ import annotations

CELLS = 34
BITS = 32
WRAP = 1 << BITS


def band_row(height: int) -> int:
    """The picture row through the middle of the stamp band."""
    band = max(8, height // 12) & ~1
    return ((height - band) & ~1) + band // 2


def read_stamp(row: bytes | list[int], width: int) -> int | None:
    """The stamp from one row of luma (or any grey level) through the band, None if absent."""
    cell = width // CELLS
    if cell < 2 or len(row) < CELLS * cell:
        return None
    bits = [row[i * cell + cell // 2] > 128 for i in range(CELLS)]
    if not bits[0] or bits[-1]:
        return None
    value = 0
    for bit in bits[1:-1]:
        value = (value << 1) | int(bit)
    return value


def age_ms(stamp: int, now_ms: float) -> int:
    """How old a frame stamped ``stamp`` is at ``now_ms`` (ms since the epoch), modulo the wrap."""
    age = (int(now_ms) - stamp) % WRAP
    return age - WRAP if age >= WRAP // 2 else age
