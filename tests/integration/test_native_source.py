"""nvrrtspsrc against the simulator: what the default TCP path must do beyond what the whole suite
already asks of it (every integration test runs on it): Digest authentication, as many cameras
ship, on the native path and on rtspsrc alike; a wrong password is "unauthorized" and never in the
log; the element's own streams (video and audio pads) and its teardown leave nothing behind."""

from __future__ import annotations

import io
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.engine.engine import CameraEngine
from nvr_gstreamer.simulator.model import AudioCodec, Codec
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.storage.catalog import SegmentStatus
from nvr_gstreamer.testing.engine import EngineWatch, engine_config, wait_until
from nvr_gstreamer.testing.media import probe

pytestmark = pytest.mark.integration

PASSWORD = "Digest-Pass7"


@pytest.fixture(scope="module")
def digest_sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(
        cameras=2, auth=("admin", PASSWORD), gop_seconds=0.5, extra_args=["--auth-digest"]
    ) as sim:
        yield sim


def test_digest_cameras_record_on_the_native_path_and_on_rtspsrc(
    digest_sim: SimulatorProcess, tmp_path: Path, nvr_log: io.StringIO
) -> None:
    setting = {"native": "auto", "jitterbuffer": "always"}
    config = engine_config(
        {"native": digest_sim.url("cam1"), "jitterbuffer": digest_sim.url("cam2")},
        storage=tmp_path / "rec",
        storage_options={"segment_seconds": 2},
        camera_options={c: {"transport": "tcp", "rtp_jitterbuffer": v} for c, v in setting.items()},
    )
    app = NvrApp(config)
    app.start()
    try:
        for cam in setting:
            wait_until(
                lambda c=cam: any(
                    r.status is SegmentStatus.CLOSED for r in app.storage.catalog.segments(c)
                ),
                20,
                f"{cam}: a closed file",
            )
        paths = {c: app.engine.status(c).receive_path for c in setting}
        assert paths == {"native": "native", "jitterbuffer": "jitterbuffer"}
        files = {
            c: [
                app.storage.root / r.path
                for r in app.storage.catalog.segments(c)
                if r.status is SegmentStatus.CLOSED
            ]
            for c in setting
        }
    finally:
        app.stop()
    for cam, closed in files.items():
        info = probe(closed[0])
        assert info.first_is_keyframe and info.frames >= 10, (cam, info)
    assert PASSWORD not in nvr_log.getvalue()


def test_a_wrong_digest_password_is_unauthorized_and_never_logged(
    digest_sim: SimulatorProcess, nvr_log: io.StringIO
) -> None:
    bad = digest_sim.url("cam1", with_auth=False).replace("rtsp://", "rtsp://admin:WrongPass9@")
    config = engine_config(
        {"cam1": bad}, camera_options={"cam1": {"transport": "tcp", "rtp_jitterbuffer": "auto"}}
    )
    engine = CameraEngine(config)
    watch = EngineWatch(engine)
    engine.start()
    try:
        watch.wait_for("cam1", CameraState.UNAUTHORIZED, 10)
        assert engine.status("cam1").receive_path in (None, "native")
    finally:
        engine.stop()
    assert "WrongPass9" not in nvr_log.getvalue()


def test_the_element_alone_gives_video_and_audio_pads_and_stops_cleanly(tmp_path: Path) -> None:
    """gst-launch-1.0 with nvrrtspsrc: an H.265 camera with Opus audio into one Matroska file,
    then EOS on interrupt (-e): both streams are in the file, the process exits 0."""
    from nvr_gstreamer.gst.loop import PLUGIN_DIR

    out = tmp_path / "cam.mkv"
    with SimulatorProcess(
        cameras=1,
        gop_seconds=0.5,
        camera_codecs={"cam1": Codec.H265},
        camera_audio={"cam1": AudioCodec.OPUS},
    ) as sim:
        launch = (
            f"nvrrtspsrc name=s location={sim.url('cam1')} audio-encodings=OPUS,PCMA "
            "s.video ! h265parse ! queue ! matroskamux name=m ! filesink "
            f"location={out} s.audio_0 ! queue ! rtpopusdepay ! opusparse ! m."
        )
        proc = subprocess.Popen(
            ["gst-launch-1.0", "-e", *launch.split()],
            env={"GST_PLUGIN_PATH": str(PLUGIN_DIR), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(lambda: out.exists() and out.stat().st_size > 50_000, 20, "bytes in file")
        finally:
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    streams = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
         str(out)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert sorted(streams) == ["hevc", "opus"], output
