"""Segments with audio, as the recorder writes them (H.264 and AAC, G.711 or Opus in Matroska):
crash repair keeps the audio, MP4 export and the browser's playback chunks carry it in sync,
playback is unchanged.

What a user sees is read with ffprobe/ffmpeg: the streams and codecs of a file, their
durations, and where the beeps of ``audiotestsrc wave=ticks`` land against the video time
(one a second, so a misplaced audio track shows as shifted beeps).
"""

from __future__ import annotations

import array
import io
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from nvr_gstreamer.camera.media import LiveFrame
from nvr_gstreamer.gst.footage import ExportError, Player, export_mp4
from nvr_gstreamer.gst.loop import GstLoop
from nvr_gstreamer.gst.playback import Chunk, make_chunk
from nvr_gstreamer.gst.remux import inspect_segment, remux_segment
from nvr_gstreamer.storage.footage_runs import Footage, Part
from nvr_gstreamer.storage.matroska import track_layout
from nvr_gstreamer.testing.engine import wait_until
from nvr_gstreamer.testing.media import probe

pytestmark = pytest.mark.integration

FPS = 15  # and a key frame every second
SEGMENT_S = 3
T0 = 1_700_000_000.0  # wall time of the first segment

VIDEO = (
    "videotestsrc is-live={live} num-buffers={frames} ! "
    f"video/x-raw,width=320,height=240,framerate={FPS}/1 ! "
    f"x264enc key-int-max={FPS} tune=zerolatency speed-preset=ultrafast ! h264parse ! queue ! m."
)
# audio caps and encoder per codec; 100 ms buffers
AUDIO = {
    "pcma": (8000, "alawenc"),
    "pcmu": (8000, "mulawenc"),
    "aac": (16000, "avenc_aac ! aacparse"),
    "opus": (48000, "opusenc"),
    "pcm": (8000, "audioconvert ! audio/x-raw,format=S16LE"),  # no place in MP4
}
FFPROBE_CODEC = {
    "pcma": "pcm_alaw",
    "pcmu": "pcm_mulaw",
    "aac": "aac",
    "opus": "opus",
    "pcm": "pcm_s16le",
}


def _launch_args(
    path: Path, audio: str | None, seconds: float | None, audio_s: float | None = None
) -> list[str]:
    live = seconds is None
    frames = -1 if seconds is None else int(seconds * FPS)
    desc = f"matroskamux name=m ! filesink location={path} " + VIDEO.format(
        live=str(live).lower(), frames=frames
    )
    if audio is not None:
        rate, encoder = AUDIO[audio]
        audio_s = seconds if audio_s is None else audio_s
        buffers = -1 if audio_s is None else int(audio_s * 10)
        desc += (
            f" audiotestsrc is-live={str(live).lower()} wave=ticks num-buffers={buffers}"
            f" samplesperbuffer={rate // 10} ! audio/x-raw,rate={rate},channels=1"
            f" ! {encoder} ! queue ! m."
        )
    return ["gst-launch-1.0", "-q", *desc.split()]


def make_segment(
    path: Path, audio: str | None, seconds: float = SEGMENT_S, audio_s: float | None = None
) -> Path:
    """A finished segment: ``seconds`` of 320x240 H.264 and, unless None, ticks in ``audio``
    (for the first ``audio_s`` only if given: the camera's audio stopped)."""
    subprocess.run(_launch_args(path, audio, seconds, audio_s), check=True, timeout=60)
    return path


def ffprobe(path: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(out.stdout))


def streams(path: Path) -> dict[str, dict[str, Any]]:
    """codec_type -> the first such stream (codec_name, start_time, duration...)."""
    data = ffprobe(path, "-show_entries", "stream=codec_type,codec_name,start_time,duration")
    out: dict[str, dict[str, Any]] = {}
    for s in data["streams"]:
        out.setdefault(s["codec_type"], s)
    return out


def packets(path: Path, stream: str) -> list[dict[str, Any]]:
    data = ffprobe(
        path, "-select_streams", stream, "-show_entries", "packet=pts_time,duration_time,size"
    )
    return list(data["packets"])


def packet_span_s(path: Path, stream: str) -> float:
    """First packet's start to last packet's end (Matroska keeps no stream durations)."""
    ps = packets(path, stream)
    return float(ps[-1]["pts_time"]) + float(ps[-1]["duration_time"]) - float(ps[0]["pts_time"])


def beeps_s(path: Path, rate: int = 16000) -> list[float]:
    """Onset of every tick in the first audio stream, in the file's time (ffmpeg decodes)."""
    raw = subprocess.run(
        [
            "ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0",
            "-f", "s16le", "-ac", "1", "-ar", str(rate), "-",
        ],
        capture_output=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    samples = array.array("h")
    samples.frombytes(raw)
    start = float(streams(path)["audio"].get("start_time", 0.0))
    onsets: list[float] = []
    quiet = rate
    for i, v in enumerate(samples):
        if abs(v) > 3000:
            if quiet >= rate // 4:
                onsets.append(start + i / rate)
            quiet = 0
        else:
            quiet += 1
    return onsets


def sync_errors_s(exported: Path, source: Path, first_offset_s: float) -> list[float]:
    """For each beep in the export: its time minus where the source puts it (the source's
    beeps repeat every second in every segment, so one source segment gives them all)."""
    phase = beeps_s(source)[0] % 1.0
    return [
        t - round(t + first_offset_s - phase) - phase + first_offset_s for t in beeps_s(exported)
    ]


def footage_of(*paths: Path) -> Footage:
    return Footage([Part(p, T0 + i * SEGMENT_S, SEGMENT_S) for i, p in enumerate(paths)])


# ---- crash repair ---------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["pcma", "aac", "opus"])
def test_repair_of_a_killed_recording_keeps_its_audio(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "killed.mkv"
    proc = subprocess.Popen(_launch_args(path, codec, None))
    try:
        wait_until(lambda: path.exists() and path.stat().st_size > 400_000, 30, "2 s recorded")
    finally:
        proc.kill()  # kill -9: no duration, no cues, a partial cluster at the end
        proc.wait(10)
    assert probe(path).duration_s is None
    layout = track_layout(path)
    assert layout is not None and [kind for kind, _codec in layout] == ["video", "audio"]

    info = remux_segment(path)

    assert track_layout(path) == layout
    found = streams(path)
    assert found["video"]["codec_name"] == "h264"
    assert found["audio"]["codec_name"] == FFPROBE_CODEC[codec]
    facts = probe(path)
    assert facts.duration_s is not None and facts.first_is_keyframe
    # Only video frames are counted, audio buffers are not.
    assert info.frames == facts.frames == inspect_segment(path).frames
    assert len(packets(path, "a:0")) != info.frames
    video_s, audio_s = packet_span_s(path, "v:0"), packet_span_s(path, "a:0")
    print(f"repaired {codec}: {info.frames} frames, video {video_s:.3f} s, audio {audio_s:.3f} s")
    assert abs(info.duration_s - video_s) < 0.1
    assert abs(audio_s - video_s) < 0.25  # what the crash left of each


def test_inspect_counts_only_video_frames(tmp_path: Path) -> None:
    path = make_segment(tmp_path / "a.mkv", "pcma")
    info = inspect_segment(path)
    assert info.frames == SEGMENT_S * FPS == probe(path).frames
    assert abs(info.duration_s - SEGMENT_S) < 0.1
    assert track_layout(path) == (("video", "V_MPEG4/ISO/AVC"), ("audio", "A_MS/ACM/6"))
    not_matroska = tmp_path / "x.mkv"
    not_matroska.write_bytes(b"\x00" * 100 + b"garbage")
    assert track_layout(not_matroska) is None


# ---- export -----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["pcma", "pcmu"])
def test_export_of_g711_is_h264_with_aac_audio_in_sync(tmp_path: Path, codec: str) -> None:
    a = make_segment(tmp_path / "a.mkv", codec)
    b = make_segment(tmp_path / "b.mkv", codec)
    dest = tmp_path / "out.mp4"
    # Across the boundary; the copy starts at the key frame at or before the start (1.0 s),
    # the file (an edit list) with the frame on screen at the start (1.2667 s).
    result = export_mp4(footage_of(a, b), T0 + 1.3, T0 + 4.7, dest)

    found = streams(dest)
    assert found["video"]["codec_name"] == "h264"
    assert found["audio"]["codec_name"] == "aac"
    video_s, audio_s = float(found["video"]["duration"]), float(found["audio"]["duration"])
    first = result.start_utc - T0
    errors = sync_errors_s(dest, a, first)
    print(
        f"export {codec}: video {video_s:.3f} s, audio {audio_s:.3f} s "
        f"({audio_s - video_s:+.3f}), beeps off by {[round(e, 4) for e in errors]} s"
    )
    assert abs(result.keyframe_utc - T0 - 1.0) < 0.01
    assert 1.3 - 1 / FPS < first <= 1.3 and abs(video_s - (4.7 - first)) < 1 / FPS
    assert abs(audio_s - video_s) < 0.1
    assert abs(float(found["audio"]["start_time"]) - float(found["video"]["start_time"])) < 0.1
    assert len(errors) == 3 and all(abs(e) < 0.015 for e in errors)


def test_export_of_aac_copies_the_camera_aac(tmp_path: Path) -> None:
    a = make_segment(tmp_path / "a.mkv", "aac")
    dest = tmp_path / "out.mp4"
    result = export_mp4(footage_of(a), T0 + 1.3, T0 + 2.7, dest)

    found = streams(dest)
    assert found["video"]["codec_name"] == "h264" and found["audio"]["codec_name"] == "aac"
    # Passed through: the exported packets are a run of the recorded ones, byte for byte.
    sizes = [p["size"] for p in packets(dest, "a:0")]
    source = [p["size"] for p in packets(a, "a:0")]
    assert any(source[i : i + len(sizes)] == sizes for i in range(len(source))), sizes
    video_s, audio_s = float(found["video"]["duration"]), float(found["audio"]["duration"])
    errors = sync_errors_s(dest, a, result.start_utc - T0)
    print(f"export aac: video {video_s:.3f} s, audio {audio_s:.3f} s, beeps off by {errors}")
    assert abs(audio_s - video_s) < 0.1
    assert errors and all(abs(e) < 0.015 for e in errors)


def test_export_of_opus_copies_it_in_sync(tmp_path: Path) -> None:
    a = make_segment(tmp_path / "a.mkv", "opus")
    dest = tmp_path / "out.mp4"
    result = export_mp4(footage_of(a), T0 + 1.3, T0 + 2.7, dest)

    found = streams(dest)
    assert found["video"]["codec_name"] == "h264" and found["audio"]["codec_name"] == "opus"
    video_s, audio_s = float(found["video"]["duration"]), float(found["audio"]["duration"])
    # mp4mux < 1.22.4 writes the Opus header little-endian: ffmpeg would then skip 0.3 s.
    errors = sync_errors_s(dest, a, result.start_utc - T0)
    print(f"export opus: video {video_s:.3f} s, audio {audio_s:.3f} s, beeps off by {errors}")
    assert abs(audio_s - video_s) < 0.1
    assert errors and all(abs(e) < 0.015 for e in errors)


def test_export_of_video_only_starts_at_the_frame_on_screen(tmp_path: Path) -> None:
    a = make_segment(tmp_path / "a.mkv", None)
    dest = tmp_path / "out.mp4"
    result = export_mp4(footage_of(a), T0 + 1.3, T0 + 2.7, dest)
    assert list(streams(dest)) == ["video"]
    facts = probe(dest)
    # Shown: 1.2667 (on screen at 1.3) to 2.6667; the key frame at 1.0 is decoded, not shown.
    assert facts.codec == "h264" and facts.frames == 22
    assert facts.duration_s is not None and abs(facts.duration_s - result.duration_s) < 0.01
    assert abs(result.start_utc - T0 - 19 / FPS) < 0.002
    assert abs(result.keyframe_utc - T0 - 1.0) < 0.002

    # Without the edit list: from the key frame, as ffmpeg -c copy would.
    plain = export_mp4(footage_of(a), T0 + 1.3, T0 + 2.7, tmp_path / "p.mp4", exact_start=False)
    assert probe(plain.path).frames == 26 and plain.start_utc == plain.keyframe_utc


def test_export_leaves_out_audio_mp4_cannot_hold_with_one_log_line(
    tmp_path: Path, nvr_log: io.StringIO
) -> None:
    a = make_segment(tmp_path / "a.mkv", "pcm")
    dest = tmp_path / "out.mp4"
    export_mp4(footage_of(a), T0 + 0.5, T0 + 2.5, dest)
    assert list(streams(dest)) == ["video"]
    lines = [line for line in nvr_log.getvalue().splitlines() if "left out" in line]
    assert len(lines) == 1 and "audio/x-raw" in lines[0], nvr_log.getvalue()


def test_export_across_a_part_without_audio_keeps_the_video(
    tmp_path: Path, nvr_log: io.StringIO
) -> None:
    a = make_segment(tmp_path / "a.mkv", "pcma")
    b = make_segment(tmp_path / "b.mkv", None)
    dest = tmp_path / "out.mp4"
    result = export_mp4(footage_of(a, b), T0 + 1.3, T0 + 4.7, dest, timeout_s=30)
    assert list(streams(dest)) == ["video"]
    first = result.start_utc - T0
    assert abs(probe(dest).frames - (4.7 - first) * FPS) <= 1
    assert abs(result.duration_s - (4.7 - first)) < 0.01
    assert "the parts differ in their audio" in nvr_log.getvalue()


def test_export_across_audio_that_starts_later_says_where(tmp_path: Path) -> None:
    a = make_segment(tmp_path / "a.mkv", None)
    b = make_segment(tmp_path / "b.mkv", "pcma")
    dest = tmp_path / "out.mp4"
    with pytest.raises(ExportError, match="gained a stream"):
        export_mp4(footage_of(a, b), T0 + 1.3, T0 + 4.7, dest, timeout_s=30)
    assert not list(tmp_path.glob("*.mp4*"))


def test_export_of_a_recording_whose_audio_stopped_ends_and_stays_in_sync(
    tmp_path: Path, nvr_log: io.StringIO
) -> None:
    # 30 s of video, audio for the first 2 s only: the muxer waits for audio that never
    # comes unless something reads on past the silence (more than splitmuxsrc's 20 s queue).
    a = make_segment(tmp_path / "a.mkv", "pcma", seconds=30, audio_s=2)
    footage = Footage([Part(a, T0, 30)])
    dest = tmp_path / "out.mp4"
    result = export_mp4(footage, T0 + 0.5, T0 + 28.0, dest, timeout_s=30)
    found = streams(dest)
    assert found["video"]["codec_name"] == "h264" and found["audio"]["codec_name"] == "aac"
    video_s, audio_s = float(found["video"]["duration"]), float(found["audio"]["duration"])
    first = result.start_utc - T0
    errors = sync_errors_s(dest, a, first)
    print(f"audio stopped: video {video_s:.3f} s, audio {audio_s:.3f} s, beeps off by {errors}")
    assert abs(video_s - (28.0 - first)) < 0.1 and abs(audio_s - (2.0 - first)) < 0.1
    assert len(errors) == 2 and all(abs(e) < 0.015 for e in errors)

    # A range with no audio at all: an MP4 of the video alone (an empty audio track would
    # make the whole file unreadable).
    later = tmp_path / "later.mp4"
    export_mp4(footage, T0 + 10.0, T0 + 28.0, later, timeout_s=30)
    assert list(streams(later)) == ["video"]
    assert abs(probe(later).frames - 18 * FPS) <= 1
    assert "no audio in the range" in nvr_log.getvalue()


# ---- playback ---------------------------------------------------------------------------


def test_playback_of_segments_with_audio_crosses_the_boundary_and_ends(tmp_path: Path) -> None:
    a = make_segment(tmp_path / "a.mkv", "pcma")
    b = make_segment(tmp_path / "b.mkv", "pcma")
    loop = GstLoop("test-playback")
    loop.start()
    frames: list[LiveFrame] = []
    positions: list[float] = []
    ended = threading.Event()
    errors: list[str] = []
    player = Player(
        loop,
        on_frame=frames.append,
        on_position=lambda offset, _playing: positions.append(offset),
        on_end=ended.set,
        on_error=errors.append,
    )
    try:
        player.open("cam1", footage_of(a, b), SEGMENT_S - 1.0, True)
        assert ended.wait(15), (errors, positions[-1:])
    finally:
        player.close()
        loop.stop()
    print(f"playback with audio: {len(frames)} frames, last position {positions[-1]:.2f} s")
    assert not errors
    assert len(frames) >= (SEGMENT_S + 1.0) * FPS - 3  # 1 s before the boundary to the end
    assert positions[-1] > 2 * SEGMENT_S - 0.5


def test_playback_into_a_part_without_audio_ends(tmp_path: Path) -> None:
    a = make_segment(tmp_path / "a.mkv", "pcma")
    b = make_segment(tmp_path / "b.mkv", None)
    loop = GstLoop("test-playback")
    loop.start()
    ended = threading.Event()
    errors: list[str] = []
    frames: list[LiveFrame] = []
    player = Player(
        loop,
        on_frame=frames.append,
        on_position=lambda _offset, _playing: None,
        on_end=ended.set,
        on_error=errors.append,
    )
    try:
        player.open("cam1", footage_of(a, b), SEGMENT_S - 0.5, True)
        assert ended.wait(15), errors
    finally:
        player.close()
        loop.stop()
    assert not errors and len(frames) >= (SEGMENT_S + 0.5) * FPS - 3


# ---- the browser's playback chunks ------------------------------------------------------


def _chunk_file(chunk: Chunk, path: Path) -> Path:
    path.write_bytes(chunk.data)
    return path


def _file_s(chunk: Chunk, media_s: float) -> float:
    """Where an instant of a chunk's media time is in the recorded file (T0 its start)."""
    return media_s - chunk.media_start_s + chunk.first_utc - T0


@pytest.mark.parametrize(
    ("codec", "mp4_codec"), [("pcma", "aac"), ("aac", "aac"), ("opus", "opus")]
)
def test_a_playback_chunk_carries_the_audio_where_it_was_against_the_video(
    tmp_path: Path, codec: str, mp4_codec: str
) -> None:
    a = make_segment(tmp_path / "a.mkv", codec)
    part = Part(a, T0, SEGMENT_S)
    first = make_chunk(part, T0 + 0.5, 1.0)  # a key frame a second: [0, 2 s)
    second = make_chunk(part, first.next_utc or 0.0, 1.5)  # [2 s, the end)
    assert (
        first.codec == f"{first.codec.split(',')[0]},{'opus' if codec == 'opus' else 'mp4a.40.2'}"
    )
    joins = []
    for n, chunk in enumerate((first, second)):
        path = _chunk_file(chunk, tmp_path / f"chunk{n}.mp4")
        found = streams(path)
        assert found["audio"]["codec_name"] == mp4_codec and found["video"]["codec_name"] == "h264"
        video, audio = packets(path, "v:0"), packets(path, "a:0")
        # (Opus in MP4: ffprobe says no durations, and puts the first packet at 0 before
        # the others' pre-skip.)
        frame_s = float(audio[2]["pts_time"]) - float(audio[1]["pts_time"])
        v0, a0 = float(video[0]["pts_time"]), float(audio[0]["pts_time"])
        # The audio starts with the first frame that starts at or after the key frame.
        assert 0 <= a0 - v0 < frame_s, (v0, a0, frame_s)
        a_end = float(audio[-1]["pts_time"]) + frame_s
        joins.append((_file_s(chunk, a0), _file_s(chunk, a_end)))
        errors = sync_errors_s(path, a, _file_s(chunk, 0.0))
        print(f"chunk {n} {codec}: audio {a0 - v0:+.3f} s after the video, beeps off by {errors}")
        assert errors and all(abs(e) < 0.015 for e in errors)
    # The second chunk's audio goes on where the first's stopped (an encoded G.711 frame may
    # overlap by less than one: the encoder starts afresh).
    assert -0.07 < joins[1][0] - joins[0][1] <= 0.001, joins


def test_a_playback_chunk_is_video_only_where_the_audio_stopped_or_is_not_wanted(
    tmp_path: Path,
) -> None:
    a = make_segment(tmp_path / "a.mkv", "aac", audio_s=1.0)  # the camera's audio stopped
    part = Part(a, T0, SEGMENT_S)
    with_audio = make_chunk(part, T0, 0.5)
    assert with_audio.codec.endswith(",mp4a.40.2")
    after = make_chunk(part, T0 + 2.0, 1.0)
    assert "," not in after.codec
    # Over the stop: the page's buffer would hold only as far as the audio goes.
    assert "," not in make_chunk(part, T0, SEGMENT_S).codec
    assert set(streams(_chunk_file(after, tmp_path / "after.mp4"))) == {"video"}
    for audio in (frozenset(), frozenset({"opus"})):  # the browser plays no AAC
        chunk = make_chunk(part, T0, 0.5, audio)
        assert "," not in chunk.codec
        assert set(streams(_chunk_file(chunk, tmp_path / "v.mp4"))) == {"video"}
        assert chunk.frames == with_audio.frames and chunk.next_utc == with_audio.next_utc
