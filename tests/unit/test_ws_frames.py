"""Reading the live sink's WebSocket frames back into messages (the pass-through path)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr_gstreamer.camera.ws_frames import BINARY, TEXT, BadFrame, FrameReader, Message


def frame(opcode: int, data: bytes) -> bytes:
    n = len(data)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + data


def test_each_length_form_is_read() -> None:
    messages = [
        Message(TEXT, b'{"type":"init"}'),
        Message(BINARY, b""),
        Message(BINARY, bytes(125)),
        Message(BINARY, bytes(126)),
        Message(BINARY, b"x" * 65535),
        Message(BINARY, b"y" * 65536),
    ]
    data = b"".join(frame(m.opcode, m.data) for m in messages)
    assert FrameReader().feed(data) == messages
    assert messages[0].text == '{"type":"init"}'


@given(
    st.lists(st.tuples(st.sampled_from([TEXT, BINARY]), st.binary(max_size=70000)), max_size=5),
    st.lists(st.integers(min_value=1, max_value=100000), max_size=8),
)
def test_frames_split_anywhere_come_out_whole_and_in_order(
    sent: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    data = b"".join(frame(op, d) for op, d in sent)
    reader, got, pos = FrameReader(), [], 0
    for cut in [*sorted(cuts), len(data)]:
        got += reader.feed(data[pos:cut])
        pos = max(pos, min(cut, len(data)))
    assert [(m.opcode, m.data) for m in got] == sent and reader.pending == 0


SIZES = [0, 1, 125, 126, 300, 65535, 65536]  # every length form, at and past its edges


def _stream() -> tuple[list[Message], bytes]:
    sent = [Message(BINARY if i % 2 else TEXT, bytes([i]) * n) for i, n in enumerate(SIZES)]
    return sent, b"".join(frame(m.opcode, m.data) for m in sent)


def test_a_cut_at_any_byte_of_any_header_or_edge_loses_nothing() -> None:
    """Two reads, cut anywhere in a frame's header or around where one frame ends and the
    next begins, after frames already read (hypothesis cuts a 64-bit header too rarely)."""
    sent, data = _stream()
    starts, pos = [], 0
    for m in sent:
        starts.append(pos)
        pos += len(frame(m.opcode, m.data))
    cuts = {c for s in [*starts, pos] for c in range(s - 3, s + 12) if 0 < c < len(data)}
    for cut in sorted(cuts):
        reader = FrameReader()
        first = reader.feed(data[:cut])
        assert reader.pending == cut - sum(len(frame(m.opcode, m.data)) for m in first), cut
        assert first + reader.feed(data[cut:]) == sent, cut
        assert reader.pending == 0


def test_byte_by_byte_every_message_comes_once_when_its_last_byte_does() -> None:
    sent = [Message(TEXT, b""), Message(BINARY, b"a"), Message(BINARY, bytes(126)),
            Message(TEXT, b"b" * 200)]  # fmt: skip
    data = b"".join(frame(m.opcode, m.data) for m in sent)
    ends = set()
    pos = 0
    for m in sent:
        pos += len(frame(m.opcode, m.data))
        ends.add(pos)
    reader, got = FrameReader(), []
    for i in range(len(data)):
        out = reader.feed(data[i : i + 1])
        assert len(out) == (1 if i + 1 in ends else 0), i
        got += out
    assert got == sent and reader.pending == 0


def test_a_partial_frame_waits_for_its_rest() -> None:
    reader = FrameReader()
    whole = frame(BINARY, bytes(300))
    assert reader.feed(whole[:3]) == [] and reader.pending == 3
    assert reader.feed(whole[3:]) == [Message(BINARY, bytes(300))]


@pytest.mark.parametrize(
    "data",
    [
        bytes([0x02, 0]),  # not FIN: fragmented messages are never written
        bytes([0x01, 0]),  # not FIN, of a text message
        bytes([0xC2, 0]),  # a reserved bit
        bytes([0x82, 0x80]),  # masked: a client's frame
        bytes([0x88, 0]),  # close: not written by the sink
    ],
)
def test_anything_the_sink_never_writes_is_refused(data: bytes) -> None:
    with pytest.raises(BadFrame, match=f"{data[0]:#04x} {data[1]:#04x}|opcode 0x{data[0] & 15:x}"):
        FrameReader().feed(data)


def test_the_refusal_says_what_came() -> None:
    with pytest.raises(BadFrame, match=r"^unexpected opcode 0x8$"):
        FrameReader().feed(bytes([0x88, 0]))
    with pytest.raises(BadFrame, match=r"^not a whole unmasked server frame: 0x82 0x80$"):
        FrameReader().feed(bytes([0x82, 0x80]))
