"""The frame-stamp reader (the layout native/nvrclockstamp.c draws), on synthetic rows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nvr_gstreamer.testing.frame_stamp import BITS, CELLS, WRAP, age_ms, band_row, read_stamp


def _row(value: int, width: int) -> bytes:
    """A band row as the element draws it: start cell, bits MSB first, end cell."""
    cell = width // CELLS
    cells = [True] + [bool(value >> (BITS - i) & 1) for i in range(1, BITS + 1)] + [False]
    row = b"".join((b"\xeb" if white else b"\x10") * cell for white in cells)
    return row + b"\x80" * (width - len(row))


@given(st.integers(0, WRAP - 1), st.sampled_from([320, 640, 1280, 1920]))
def test_a_drawn_stamp_reads_back(value: int, width: int) -> None:
    assert read_stamp(_row(value, width), width) == value


def test_a_picture_without_a_stamp_reads_as_none() -> None:
    assert read_stamp(bytes([16] * 640), 640) is None  # all black: no start cell
    assert read_stamp(bytes([235] * 640), 640) is None  # all white: no end cell
    assert read_stamp(_row(5, 640), 60) is None  # too narrow to carry one


def test_age_is_taken_modulo_the_wrap() -> None:
    assert age_ms(1000, 1250.7) == 250
    assert age_ms(WRAP - 100, WRAP + 150) == 250  # the millisecond count wrapped in between
    assert age_ms(2000, 1990) == -10  # a clock a little behind: negative, not 49 days


def test_the_band_row_lies_inside_the_bottom_band() -> None:
    assert band_row(360) == 345  # band 30 rows: 330..359
    assert band_row(96) == 92  # band 8 rows: 88..95
