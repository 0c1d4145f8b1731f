"""The camera's audio is recorded untouched next to its video, in sync, in every file; an
audio stream that stops never costs a video frame; an MP4 export carries audio a player plays.
Real pipelines against the simulator, real files, checked with ffprobe."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.gst.footage import export_mp4
from nvr_gstreamer.simulator.model import AudioCodec, Codec
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.storage.catalog import SegmentRow, SegmentStatus
from nvr_gstreamer.storage.footage_runs import Footage, Part
from nvr_gstreamer.testing.engine import EngineWatch, engine_config, wait_until

pytestmark = pytest.mark.integration

CAMERAS = {  # camera: (video, audio, what ffprobe calls the audio codec)
    "cam1": (Codec.H264, AudioCodec.AAC, "aac"),
    "cam2": (Codec.H265, AudioCodec.PCMA, "pcm_alaw"),
    "cam3": (Codec.H264, AudioCodec.PCMU, "pcm_mulaw"),
    "cam4": (Codec.H264, AudioCodec.NONE, None),
    "cam5": (Codec.H265, AudioCodec.OPUS, "opus"),
}


@dataclass
class Streams:
    video_codec: str
    video_start: float
    video_frames: int
    audio_codec: str | None
    audio_start: float | None
    audio_packets: int


def probe(path: Path) -> Streams:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_entries",
         "stream=codec_type,codec_name,start_time,nb_read_packets", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    streams: list[dict[str, Any]] = json.loads(out)["streams"]
    video = [s for s in streams if s["codec_type"] == "video"]
    audio = [s for s in streams if s["codec_type"] == "audio"]
    assert len(video) == 1 and len(audio) <= 1, streams
    a = audio[0] if audio else None
    return Streams(
        video[0]["codec_name"],
        float(video[0]["start_time"]),
        int(video[0]["nb_read_packets"]),
        a["codec_name"] if a else None,
        float(a["start_time"]) if a else None,
        int(a.get("nb_read_packets", 0)) if a else 0,
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(
        cameras=5,
        gop_seconds=0.5,
        camera_codecs={n: v for n, (v, _a, _p) in CAMERAS.items()},
        camera_audio={n: a for n, (_v, a, _p) in CAMERAS.items()},
    ) as s:
        yield s


def _closed(app: NvrApp, cid: str) -> list[SegmentRow]:
    return [r for r in app.storage.catalog.segments(cid) if r.status is SegmentStatus.CLOSED]


def test_audio_is_recorded_untouched_in_sync_in_every_file(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    root = tmp_path / "rec"
    config = engine_config(
        {n: sim.url(n) for n in CAMERAS},
        storage=root,
        storage_options={"segment_seconds": 2},
        camera_options={n: {"record": False} for n in CAMERAS},
    )
    app = NvrApp(config)
    watch = EngineWatch(app.engine)
    app.start()
    try:
        # Recording starts on cameras already streaming, as it does on real ones. (The
        # simulator's AAC encoder primes for ~130 ms when its stream first starts: a file that
        # began with the stream itself would start its audio that much after its video.)
        for cid in CAMERAS:
            watch.wait_for(cid, CameraState.STREAMING, 15)
            app.engine.start_recording(cid)
        for cid in CAMERAS:
            wait_until(lambda cid=cid: len(_closed(app, cid)) >= 3, 30, f"3 files of {cid}")
        statuses = app.engine.statuses()
        segments = {cid: _closed(app, cid) for cid in CAMERAS}
    finally:
        app.stop()
    for cid, (_video, audio, ffname) in CAMERAS.items():
        assert statuses[cid].audio_codec == (None if audio is AudioCodec.NONE else audio.value)
        for seg in segments[cid]:
            s = probe(root / seg.path)
            assert s.video_frames > 0
            assert s.audio_codec == ffname, (cid, seg.path)
            if ffname is not None:
                assert s.audio_packets > 0, (cid, seg.path)
                assert s.audio_start is not None
                skew = abs(s.audio_start - s.video_start)
                print(f"{cid} {seg.path}: audio starts {skew * 1000:.0f} ms from video")
                assert skew <= 0.1, (cid, seg.path, s)


def test_audio_that_stops_never_costs_a_video_frame(sim: SimulatorProcess, tmp_path: Path) -> None:
    """The camera's audio stops while its video goes on (a real stop in the real pipeline:
    its audio packets are dropped where rtspsrc hands them over). Recording continues with
    video alone, files keep closing on time, and the frame rate in them stays whole."""
    from gi.repository import Gst

    root = tmp_path / "rec"
    config = engine_config(
        {"cam2": sim.url("cam2")}, storage=root, storage_options={"segment_seconds": 2}
    )
    app = NvrApp(config)
    app.start()
    try:
        wait_until(lambda: len(_closed(app, "cam2")) >= 1, 30, "a file with audio")
        runtime = app.engine.runtimes["cam2"]
        pipeline = runtime.pipeline
        assert pipeline is not None and pipeline.audio
        depay = pipeline.pipeline.get_by_name("audio0-depay")
        silenced = time.time()
        depay.get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER, lambda _p, _i: Gst.PadProbeReturn.DROP
        )
        wait_until(
            lambda: sum(1 for r in _closed(app, "cam2") if r.start_utc > silenced + 3) >= 2,
            30,
            "files after the audio stopped",
        )
        after = [r for r in _closed(app, "cam2") if r.start_utc > silenced + 3]
        assert pipeline.audio[0].dead
    finally:
        app.stop()
    for seg in after:
        s = probe(root / seg.path)
        assert s.audio_packets == 0
        assert seg.duration_s is not None
        # 15 fps: a whole file's worth of frames, nothing lost while the audio hung.
        assert s.video_frames >= 15 * seg.duration_s - 2, (seg.path, s, seg.duration_s)


def test_mp4_export_of_a_g711_camera_has_aac_audio(sim: SimulatorProcess, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    config = engine_config(
        {"cam2": sim.url("cam2")}, storage=root, storage_options={"segment_seconds": 2}
    )
    app = NvrApp(config)
    app.start()
    try:
        wait_until(lambda: len(_closed(app, "cam2")) >= 2, 30, "two files")
        rows = _closed(app, "cam2")[:2]
    finally:
        app.stop()
    footage = Footage([Part(root / r.path, r.start_utc, r.duration_s or 0) for r in rows])
    dest = tmp_path / "export.mp4"
    export_mp4(footage, footage.start_utc, footage.end_utc, dest)
    s = probe(dest)
    assert s.video_codec == "hevc" and s.audio_codec == "aac"
    assert s.audio_packets > 0 and s.audio_start is not None
    assert abs(s.audio_start - s.video_start) <= 0.1
