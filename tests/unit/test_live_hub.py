"""The browser live stream's pure parts: fragmented MP4 assembly and the fan-out hub."""

from __future__ import annotations

from nvr_gstreamer.camera.fmp4 import Fmp4Assembler, Fragment, InitSegment, codec_string
from nvr_gstreamer.camera.live_hub import LiveHub


def box(kind: bytes, body: bytes = b"") -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def avc_init(profile: int = 0x64, compat: int = 0x00, level: int = 0x28) -> bytes:
    avcc = box(b"avcC", bytes([1, profile, compat, level, 0xFF]))
    avc1 = box(b"avc1", bytes(78) + avcc)
    stsd = box(b"stsd", bytes(8) + avc1)
    moov = box(b"moov", box(b"trak", box(b"mdia", box(b"minf", box(b"stbl", stsd)))))
    return moov


def frame(assembler: Fmp4Assembler, payload: bytes, key: bool) -> list[object]:
    """A frame as mp4mux puts it out: moof, an mdat header, the frame's bytes."""
    out: list[object] = []
    out += assembler.feed(box(b"moof", b"\0" * 88), delta=False)
    out += assembler.feed(len(payload).__add__(8).to_bytes(4, "big") + b"mdat", delta=False)
    out += assembler.feed(payload, delta=not key)
    return out


def test_the_codec_string_comes_from_the_sample_entry() -> None:
    assert codec_string(avc_init()) == "avc1.640028"
    assert codec_string(avc_init(0x42, 0xC0, 0x16)) == "avc1.42c016"
    assert codec_string(box(b"moov")) == ""


def test_buffers_become_an_init_segment_and_one_fragment_per_frame() -> None:
    a = Fmp4Assembler()
    assert a.feed(box(b"ftyp", b"isom"), delta=False) == []
    (init,) = a.feed(avc_init(), delta=False)
    assert isinstance(init, InitSegment) and init.codec == "avc1.640028"
    assert init.data.startswith(box(b"ftyp", b"isom"))
    (key,) = frame(a, b"K" * 100, key=True)
    (delta,) = frame(a, b"d" * 50, key=False)
    assert isinstance(key, Fragment) and key.key and key.data.endswith(b"K" * 100)
    assert isinstance(delta, Fragment) and not delta.key and len(delta.data) == 96 + 8 + 50


def test_a_frame_split_over_buffers_is_one_fragment() -> None:
    a = Fmp4Assembler()
    a.feed(box(b"moof", b"\0" * 88), delta=False)
    a.feed((8 + 30).to_bytes(4, "big") + b"mdat", delta=False)
    assert a.feed(b"x" * 10, delta=False) == []
    (whole,) = a.feed(b"y" * 20, delta=True)  # later buffers' flags do not count
    assert isinstance(whole, Fragment) and whole.key and whole.data.endswith(b"x" * 10 + b"y" * 20)


def test_bytes_before_the_first_moof_are_skipped() -> None:
    a = Fmp4Assembler()
    assert a.feed(b"\0\0\0\x10junkjunkjunk", delta=True) == []
    assert len(frame(a, b"K", key=True)) == 1


def _pieces(n_delta: int) -> list[object]:
    init = InitSegment(b"init", "avc1.640028")
    return [init, Fragment(b"k1", True), *[Fragment(b"d", False) for _ in range(n_delta)]]


def test_a_new_viewer_gets_the_init_and_the_current_gop_at_once() -> None:
    hub = LiveHub()
    for piece in _pieces(3):
        hub.feed(piece)  # type: ignore[arg-type]
    got: list[object] = []
    hub.add(lambda p: got.append(p) or True)
    assert got == _pieces(3)
    hub.feed(Fragment(b"d2", False))
    assert got[-1] == Fragment(b"d2", False)


def test_a_viewer_that_falls_behind_skips_to_the_next_keyframe() -> None:
    hub = LiveHub()
    hub.feed(InitSegment(b"init", "c"))
    got: list[bytes] = []
    full = [False]

    def deliver(piece: object) -> bool:
        if full[0]:
            return False
        got.append(piece.data)  # type: ignore[attr-defined]
        return True

    hub.add(deliver)
    hub.feed(Fragment(b"k1", True))
    full[0] = True
    hub.feed(Fragment(b"d1", False))  # dropped: the viewer is full
    full[0] = False
    hub.feed(Fragment(b"d2", False))  # not sent: it would not decode without d1
    hub.feed(Fragment(b"k2", True))
    hub.feed(Fragment(b"d3", False))
    assert got == [b"init", b"k1", b"k2", b"d3"]


def test_viewers_are_counted_and_a_reset_forgets_the_stream() -> None:
    hub = LiveHub()
    a = hub.add(lambda _p: True)
    b = hub.add(lambda _p: True)
    assert hub.viewers == 2
    assert hub.remove(a) == 1 and hub.remove(b) == 0
    for piece in _pieces(1):
        hub.feed(piece)  # type: ignore[arg-type]
    hub.reset()
    got: list[object] = []
    hub.add(lambda p: got.append(p) or True)
    assert got == []  # nothing stale: it waits for the next stream's init
