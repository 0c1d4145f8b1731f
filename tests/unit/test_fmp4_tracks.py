"""The playback chunks' box work on bytes made here: tracks and their codecs, where each
track's first fragment starts, and moving one track in time (mp4mux starts every track of a
fragmented MP4 at 0). Chunks made by mp4mux from recorded files:
tests/integration/test_footage_audio.py and test_web_recordings.py."""

from __future__ import annotations

import pytest

from nvr_gstreamer.camera.fmp4 import (
    Track,
    audio_codec_string,
    codec_string,
    first_presentation_s,
    shift_decode_times,
    tracks,
)
from nvr_gstreamer.gst.footage import fix_opus_dops_bytes


def box(kind: bytes, body: bytes = b"") -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def full(kind: bytes, version: int, body: bytes, flags: int = 0) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + body)


def descriptor(tag: int, body: bytes) -> bytes:
    return bytes([tag, len(body)]) + body  # sizes below 128: one byte


def esds(oti: int = 0x40, config: bytes = bytes([0x14, 0x08])) -> bytes:
    """ES_Descriptor > DecoderConfigDescriptor > DecoderSpecificInfo (AudioSpecificConfig:
    0x14 0x08 is AAC-LC, 16 kHz, mono)."""
    specific = descriptor(0x05, config)
    decoder = descriptor(0x04, bytes([oti, 0x15]) + bytes(11) + specific)
    return full(b"esds", 0, descriptor(0x03, b"\x00\x01\x00" + decoder + descriptor(6, b"\x02")))


def trak(track_id: int, handler: bytes, timescale: int, entry: bytes, v1: bool = False) -> bytes:
    if v1:
        tkhd = full(b"tkhd", 1, bytes(16) + track_id.to_bytes(4, "big") + bytes(72))
        mdhd = full(b"mdhd", 1, bytes(16) + timescale.to_bytes(4, "big") + bytes(12))
    else:
        tkhd = full(b"tkhd", 0, bytes(8) + track_id.to_bytes(4, "big") + bytes(68))
        mdhd = full(b"mdhd", 0, bytes(8) + timescale.to_bytes(4, "big") + bytes(8))
    hdlr = full(b"hdlr", 0, bytes(4) + handler + bytes(12) + b"\0")
    stsd = full(b"stsd", 0, (1).to_bytes(4, "big") + entry)
    minf = box(b"minf", box(b"stbl", stsd))
    return box(b"trak", tkhd + box(b"mdia", mdhd + hdlr + minf))


AVC1 = box(b"avc1", bytes(78) + box(b"avcC", bytes([1, 0x42, 0xC0, 0x16, 0xFF])))
MP4A = box(b"mp4a", bytes(28) + esds())


def opus_entry(little_endian: bool) -> bytes:
    order = "little" if little_endian else "big"
    dops = box(
        b"dOps",
        bytes([0, 1])
        + (312).to_bytes(2, order)
        + (48000).to_bytes(4, order)
        + (0).to_bytes(2, order)
        + b"\0",
    )
    return box(b"Opus", bytes(28) + dops)


def traf(
    track_id: int, decode_time: int, v1: bool = True, first_offset: int | None = None
) -> bytes:
    tfhd = full(b"tfhd", 0, track_id.to_bytes(4, "big"))
    width = 8 if v1 else 4
    tfdt = full(b"tfdt", 1 if v1 else 0, decode_time.to_bytes(width, "big"))
    if first_offset is None:  # one sample, its duration only
        trun = full(b"trun", 0, (1).to_bytes(4, "big") + (1024).to_bytes(4, "big"), 0x100)
    else:  # data offset, then duration, size, flags and composition offset of one sample
        sample = (100).to_bytes(4, "big") + bytes(8) + first_offset.to_bytes(4, "big")
        trun = full(b"trun", 0, (1).to_bytes(4, "big") + bytes(4) + sample, 0xF01)
    return box(b"traf", tfhd + tfdt + trun)


def chunk(audio_first: bool = True) -> bytes:
    moov = box(b"moov", trak(1, b"vide", 1500, AVC1) + trak(2, b"soun", 16000, MP4A))
    fragments = b""
    for n in range(2):
        video, audio = traf(1, 1500 * n, first_offset=100), traf(2, 16384 * n)
        moof = box(
            b"moof",
            full(b"mfhd", 0, (n + 1).to_bytes(4, "big"))
            + (audio + video if audio_first else video + audio),
        )
        fragments += moof + box(b"mdat", b"x" * 16)
    return box(b"ftyp", b"iso6") + moov + fragments


def test_the_tracks_of_an_init_segment_say_their_kind_and_timescale() -> None:
    data = chunk()
    assert tracks(data) == [Track(1, b"vide", 1500), Track(2, b"soun", 16000)]
    v1 = box(b"moov", trak(7, b"soun", 48000, MP4A, v1=True))
    assert tracks(v1) == [Track(7, b"soun", 48000)]
    assert tracks(box(b"ftyp")) == []


def test_the_audio_codec_string_comes_from_the_sample_entry() -> None:
    data = chunk()
    assert codec_string(data) == "avc1.42c016"  # the video's, as before
    assert audio_codec_string(data) == "mp4a.40.2"
    he_aac = box(b"mp4a", bytes(28) + esds(config=bytes([0x2B, 0x92, 0x08, 0x00])))
    assert audio_codec_string(box(b"moov", trak(1, b"soun", 24000, he_aac))) == "mp4a.40.5"
    no_config = box(b"mp4a", bytes(28) + esds(config=b""))
    assert audio_codec_string(box(b"moov", trak(1, b"soun", 16000, no_config))) == "mp4a.40"
    opus = box(b"moov", trak(1, b"soun", 48000, opus_entry(False)))
    assert audio_codec_string(opus) == "opus"
    assert audio_codec_string(box(b"moov", trak(1, b"vide", 1500, AVC1))) == ""


@pytest.mark.parametrize("audio_first", [True, False])
def test_the_first_presentation_is_the_video_tracks_whichever_fragment_comes_first(
    audio_first: bool,
) -> None:
    data = chunk(audio_first)
    assert first_presentation_s(data) == pytest.approx(100 / 1500)  # tfdt 0 + offset 100
    assert first_presentation_s(data, b"soun") == 0.0
    assert first_presentation_s(box(b"moov")) == 0.0


def test_a_track_moves_by_its_decode_times_and_the_other_stays() -> None:
    data = chunk()
    moved = shift_decode_times(data, 2, 400)  # 25 ms at 16 kHz
    assert len(moved) == len(data)
    assert first_presentation_s(moved, b"soun") == pytest.approx(0.025)
    assert first_presentation_s(moved) == first_presentation_s(data)
    # Every fragment of the track moved, by the same amount: the samples stay in step.
    again = shift_decode_times(moved, 2, -400)
    assert again == data
    assert shift_decode_times(data, 9, 400) == data  # no such track


def test_a_32_bit_decode_time_moves_too_unless_it_would_overflow() -> None:
    data = box(b"moov", trak(1, b"soun", 16000, MP4A)) + box(b"moof", traf(1, 10, v1=False))
    assert first_presentation_s(shift_decode_times(data, 1, 6), b"soun") == 16 / 16000
    with pytest.raises(ValueError, match="does not fit"):
        shift_decode_times(data, 1, 1 << 32)
    with pytest.raises(ValueError, match="does not fit"):
        shift_decode_times(data, 1, -11)


def test_an_opus_header_written_little_endian_is_put_big_endian_in_memory() -> None:
    def mp4(little: bool) -> bytes:
        return box(b"ftyp", b"iso6") + box(b"moov", trak(1, b"soun", 48000, opus_entry(little)))

    assert fix_opus_dops_bytes(mp4(True)) == mp4(False)
    assert fix_opus_dops_bytes(mp4(False)) == mp4(False)  # right already: unchanged
