"""The box layer of storage/mp4_edit.py on bytes made here: parsing and writing ISO BMFF boxes,
moving chunk offsets, copying a file's head. (The edit-list arithmetic: test_mp4_edit.py; whole
files made by mp4mux: tests/integration/test_mp4_edit.py.)"""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr_gstreamer.storage.mp4_edit import (
    Mp4EditError,
    _Box,
    _copy,
    _iter_boxes,
    _parse,
    _shift_offsets,
)

LEAF_KINDS = st.sampled_from([b"ftyp", b"mvhd", b"tkhd", b"mdhd", b"stts", b"stco", b"free"])
CONTAINER_KINDS = st.sampled_from([b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl"])

leaves = st.builds(_Box, LEAF_KINDS, st.binary(max_size=40))
trees = st.recursive(
    leaves,
    lambda children: st.builds(_Box, CONTAINER_KINDS, st.just(b""), st.lists(children, max_size=4)),
    max_leaves=12,
)


@given(st.lists(trees, max_size=5))
def test_boxes_written_parse_back_the_same(boxes: list[_Box]) -> None:
    data = b"".join(b.encode() for b in boxes)
    assert _parse(data, 0, len(data)) == boxes


@given(trees)
def test_a_box_says_its_own_size_and_kind(box: _Box) -> None:
    data = box.encode()
    assert int.from_bytes(data[:4], "big") == len(data)
    assert data[4:8] == box.kind
    if box.children is None:
        assert data[8:] == box.payload


def test_a_box_path_finds_nested_children() -> None:
    stco = _Box(b"stco", b"x")
    moov = _Box(
        b"moov", b"", [_Box(b"mvhd", b""), _Box(b"trak", b"", [_Box(b"stbl", b"", [stco])])]
    )
    assert moov.path(b"trak", b"stbl", b"stco") is stco
    assert moov.path(b"trak", b"nope", b"stco") is None
    assert moov.child(b"mvhd") is not None and moov.child(b"free") is None
    assert _Box(b"free", b"").child(b"moov") is None  # a leaf has no children


def test_a_64_bit_size_and_a_size_of_zero_are_read() -> None:
    # (A size that needs more than 56 bits cannot be made here: reading the 64-bit size one
    # byte short, or the 32-bit size little-endian on a zero byte, is not told apart.)
    payload = b"abcdefgh"
    large = (1).to_bytes(4, "big") + b"mdat" + (16 + len(payload)).to_bytes(8, "big") + payload
    to_end = (0).to_bytes(4, "big") + b"free" + b"rest of the file"
    data = large + to_end
    assert list(_iter_boxes(data, 0, len(data))) == [
        (b"mdat", 16, len(large)),
        (b"free", len(large) + 8, len(data)),
    ]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\x00\x00\x10ftyp", "bad size"),  # says 16 bytes, has 8
        (b"\x00\x00\x00\x04free", "bad size"),  # smaller than its header
        (b"\x00\x00\x00\x08free\x00\x00", "truncated box header"),
        ((1).to_bytes(4, "big") + b"mdat" + (8).to_bytes(8, "big"), "bad size"),
    ],
)
def test_broken_boxes_are_refused_saying_where(data: bytes, why: str) -> None:
    with pytest.raises(Mp4EditError, match=why):
        list(_iter_boxes(data, 0, len(data)))


def _offsets_box(kind: bytes, offsets: list[int]) -> _Box:
    width = 4 if kind == b"stco" else 8
    body = b"".join(o.to_bytes(width, "big") for o in offsets)
    return _Box(kind, b"\x00\x00\x00\x00" + len(offsets).to_bytes(4, "big") + body)


def _offsets(box: _Box) -> list[int]:
    width = 4 if box.kind == b"stco" else 8
    count = int.from_bytes(box.payload[4:8], "big")
    return [
        int.from_bytes(box.payload[8 + i * width : 8 + (i + 1) * width], "big")
        for i in range(count)
    ]


def test_chunk_offsets_at_or_after_the_growth_move_by_it() -> None:
    stco = _offsets_box(b"stco", [0x0100_0000, 10, 99, 100, 5000])
    co64 = _offsets_box(b"co64", [0x0200_0000_0000_0000, 7, 100, 1 << 40])
    sizes = len(stco.payload), len(co64.payload)
    stbl = _Box(b"stbl", b"", [_Box(b"stsz", b"keep"), stco, co64])
    _shift_offsets(stbl, past=100, delta=48)
    assert _offsets(stco) == [0x0100_0030, 10, 99, 148, 5048]
    assert _offsets(co64) == [0x0200_0000_0000_0030, 7, 148, (1 << 40) + 48]
    assert (len(stco.payload), len(co64.payload)) == sizes
    every = _offsets_box(b"stco", [0x0100_0000, 5])  # past 0: every offset moves, no more
    _shift_offsets(_Box(b"stbl", b"", [every]), past=0, delta=1)
    assert _offsets(every) == [0x0100_0001, 6] and len(every.payload) == 16
    assert stbl.child(b"stsz") == _Box(b"stsz", b"keep")
    assert stco.payload[:4] == b"\x00\x00\x00\x00"  # version and flags untouched


def test_a_32_bit_offset_that_would_overflow_is_refused() -> None:
    stbl = _Box(b"stbl", b"", [_offsets_box(b"stco", [0xFFFF_FFF0])])
    with pytest.raises(
        Mp4EditError,
        match=r"^moving the media data would overflow a 32-bit chunk offset \(stco\)$",
    ):
        _shift_offsets(stbl, past=0, delta=0x10)
    last = _Box(b"stbl", b"", [_offsets_box(b"stco", [0xFFFF_FFEF])])
    _shift_offsets(last, past=0, delta=0x10)  # the largest that still fits
    assert _offsets(last.children[0]) == [0xFFFF_FFFF]  # type: ignore[index]
    wide = _Box(b"stbl", b"", [_offsets_box(b"co64", [0xFFFF_FFF0])])
    _shift_offsets(wide, past=0, delta=0x10)
    assert _offsets(wide.children[0]) == [0x1_0000_0000]  # type: ignore[index]


def test_copy_takes_the_head_of_the_file_from_its_start() -> None:
    src = io.BytesIO(bytes(range(256)) * 100)
    src.seek(1234)  # wherever it was left
    dst = io.BytesIO()
    _copy(src, dst, 25_000)
    assert dst.getvalue() == (bytes(range(256)) * 100)[:25_000]
    with pytest.raises(Mp4EditError, match="^the file shrank while it was edited$"):
        _copy(io.BytesIO(b"short"), io.BytesIO(), 6)
