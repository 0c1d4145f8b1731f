"""Reading fragmented MP4: the codec string the page asks the browser about."""

from __future__ import annotations

from nvr_gstreamer.camera.fmp4 import codec_string


def box(kind: bytes, body: bytes = b"") -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def init(entry: bytes, config: bytes) -> bytes:
    sample_entry = box(entry, bytes(78) + config)
    stsd = box(b"stsd", bytes(8) + sample_entry)
    return box(b"moov", box(b"trak", box(b"mdia", box(b"minf", box(b"stbl", stsd)))))


def test_the_codec_string_comes_from_the_sample_entry() -> None:
    assert codec_string(init(b"avc1", box(b"avcC", bytes([1, 0x64, 0x00, 0x28, 0xFF])))) == (
        "avc1.640028"
    )
    assert codec_string(init(b"avc3", box(b"avcC", bytes([1, 0x42, 0xC0, 0x16])))) == (
        "avc3.42c016"
    )
    assert codec_string(box(b"moov")) == ""


def test_an_h265_codec_string_has_space_profile_compat_tier_level_and_constraints() -> None:
    # Main profile (1), compatibility flag 1 and 2 set (0x60000000 reversed: 0x6), high tier,
    # level 120, constraint bytes B0 then zeros (left out).
    hvcc = bytes([1, 0x21, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 120]) + bytes(10)
    assert codec_string(init(b"hvc1", box(b"hvcC", hvcc))) == "hvc1.1.6.H120.b0"
    assert codec_string(init(b"hev1", box(b"hvcC", bytes([1, 0x41]) + bytes(10) + b"\x5d"))) == (
        "hev1.A1.0.L93"
    )
