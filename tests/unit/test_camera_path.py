"""The whole camera path — supervisor, recording controller, runtime — in-process, against
fake media that replay what GStreamer reports, on a fake clock: seconds of camera life in
milliseconds, with no ``gi``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nvr_gstreamer.camera.backoff import Backoff
from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.camera.status import CameraStateChanged, CameraStatus, EngineEvent
from nvr_gstreamer.camera.supervisor import CameraState, Reach, SupervisorSettings
from nvr_gstreamer.config import CameraConfig
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.engine.runtime import CameraRuntime, RuntimeSettings
from nvr_gstreamer.storage.timeline import GapReason
from nvr_gstreamer.storage.volume import StorageState
from nvr_gstreamer.testing.fake_media import (
    SERVER_GONE,
    UNAUTHORIZED,
    FakeMedia,
    FakePipeline,
    FakeRecorder,
    FakeScheduler,
    FakeStorage,
    disk_full,
)

STALL_S = 3.0
POLL_S = 0.5


@dataclass
class Prober:
    """Answers reachability probes as the test says."""

    reach: Reach = Reach.ANSWERS
    asked: list[bool] = field(default_factory=list)

    def submit(self, _url: str, _timeout_s: float, connect_only: bool, done) -> None:  # type: ignore[no-untyped-def]
        self.asked.append(connect_only)
        done(self.reach)


class Camera:
    def __init__(self, record: bool = True, pre_record_s: float = 0.0) -> None:
        self.clock = FakeClock()
        self.scheduler = FakeScheduler(self.clock)
        self.media = FakeMedia(self.scheduler)
        self.storage = FakeStorage(pre_record_s=pre_record_s)
        self.prober = Prober()
        self.events: list[EngineEvent] = []
        self.status: CameraStatus | None = None
        settings = RuntimeSettings(
            supervisor=SupervisorSettings(backoff=Backoff(initial_s=1.0, cap_s=4.0)),
            stall_timeout_s=STALL_S,
            probe_timeout_s=0.5,
        )
        config = CameraConfig(id="cam1", url="rtsp://admin:s3cret@10.0.0.5/main", record=record)
        self.rt = CameraRuntime(
            config, self.scheduler, self.clock, settings, self.prober, self.media,
            self._publish, self.storage,
        )  # fmt: skip
        self.scheduler.every(POLL_S, self.rt.poll)
        self.storage.subscribe(lambda check: self.scheduler.call(self.rt.on_storage_checked, check))

    def _publish(self, status: CameraStatus, event: EngineEvent | None) -> None:
        self.status = status
        if event is not None:
            self.events.append(event)

    @property
    def pipeline(self) -> FakePipeline:
        return self.media.pipelines[-1]

    @property
    def recorder(self) -> FakeRecorder:
        return self.media.recorders[-1]

    def states(self) -> list[CameraState]:
        return [e.new for e in self.events if isinstance(e, CameraStateChanged)]

    def streaming(self, seconds: float = 1.0) -> None:
        """The camera delivers frames for ``seconds``."""
        steps = max(1, round(seconds / POLL_S))
        for _ in range(steps):
            self.pipeline.frames(12)
            self.scheduler.run(POLL_S)


@pytest.fixture
def cam() -> Iterator[Camera]:
    camera = Camera()
    camera.rt.start()
    camera.scheduler.run()
    yield camera


def test_a_camera_connects_streams_and_records(cam: Camera) -> None:
    assert cam.pipeline.started and cam.pipeline.spec.transport == "tcp"
    assert cam.pipeline.spec.credentials == ("admin", "s3cret")
    assert cam.recorder.holding  # the streams are not known yet: frames wait
    cam.pipeline.first_frame(audio=["aac"])
    cam.pipeline.no_more_pads()
    cam.scheduler.run()
    assert cam.states() == [CameraState.CONNECTING, CameraState.STREAMING]
    assert not cam.recorder.holding and cam.recorder.attached_audio == []
    assert cam.recorder.audio_ended == [False]  # the AAC stream joined the recording
    assert cam.pipeline.audio_opened
    path = cam.recorder.write(50_000)
    cam.streaming(2.0)
    assert cam.status is not None
    assert cam.status.recording and cam.status.current_segment == "cam1/0001.mkv"
    assert path is not None and cam.storage.opened == [path]
    cam.recorder.close_file(running_time_s=2.0)
    assert cam.storage.closed == [(path, 2.0)]
    assert cam.status.fps == pytest.approx(24.0)
    assert cam.status.audio_codec == "aac"


def test_a_password_the_camera_refuses_shows_as_such_and_no_password_leaks(cam: Camera) -> None:
    cam.pipeline.fault(UNAUTHORIZED)
    cam.scheduler.run()
    assert cam.status is not None
    assert cam.status.state is CameraState.UNAUTHORIZED
    assert cam.status.last_error_kind is ErrorKind.UNAUTHORIZED
    assert cam.pipeline.released
    assert "s3cret" not in repr(cam.status)
    # Permanent until fixed: retried at the backoff cap, not at once and not probed.
    wait = cam.status.next_retry_in_s
    assert wait is not None and wait >= 2.0  # about the cap (4 s), with jitter
    cam.scheduler.run(wait - 0.1)
    assert len(cam.media.pipelines) == 1
    cam.scheduler.run(0.2)
    assert len(cam.media.pipelines) == 2 and cam.prober.asked == []


def test_a_stalled_camera_is_noticed_and_its_gap_starts_at_the_last_frame(cam: Camera) -> None:
    cam.pipeline.first_frame()
    cam.scheduler.run()
    cam.recorder.write(10_000)
    cam.streaming(2.0)
    last_frame = cam.clock.wall().timestamp()
    cam.scheduler.run(STALL_S + POLL_S)  # no frames any more
    assert CameraState.RECONNECTING in cam.states()
    assert cam.status is not None and cam.status.stalls == 1 and cam.status.stalled
    assert (GapReason.CAMERA_DOWN, pytest.approx(last_frame, abs=POLL_S)) in cam.storage.gaps
    assert cam.media.pipelines[0].released and cam.media.pipelines[0].branches == []
    # The camera answers probes: it is tried again quickly and records into a new session.
    cam.scheduler.run(1.5)
    assert len(cam.media.pipelines) == 2
    cam.pipeline.first_frame()
    cam.scheduler.run()
    assert cam.states()[-1] is CameraState.STREAMING and not cam.status.stalled
    assert len(cam.media.recorders) == 2 and cam.recorder in cam.pipeline.branches


def test_a_lost_server_is_retried_and_the_recording_resumes(cam: Camera) -> None:
    cam.pipeline.first_frame()
    cam.scheduler.run()
    cam.pipeline.fault(SERVER_GONE)
    cam.scheduler.run()
    assert cam.states()[-1] is CameraState.RECONNECTING
    assert cam.status is not None and not cam.status.recording  # the file was finalised
    cam.scheduler.run(2.0)
    cam.pipeline.first_frame()
    cam.scheduler.run()
    assert cam.status.state is CameraState.STREAMING and cam.status.recording


def test_a_full_disk_pauses_recording_and_never_touches_the_camera(cam: Camera) -> None:
    cam.pipeline.first_frame()
    cam.scheduler.run()
    first = cam.recorder
    first.write(1_000)
    cam.pipeline.fault(disk_full(first.name), branch=first)
    cam.scheduler.run()
    assert cam.storage.checks and cam.storage.checks[0][0] is True  # "disk full" reported
    assert first not in cam.pipeline.branches
    cam.storage.answer(StorageState.FULL, "0 bytes free")
    cam.scheduler.run()
    assert cam.status is not None and cam.status.storage_state is StorageState.FULL
    assert cam.status.state is CameraState.STREAMING and cam.status.disconnects == 0
    assert (GapReason.DISK_FULL, None) in cam.storage.gaps
    assert len(cam.media.recorders) == 1  # nothing is attempted on a full disk
    cam.storage.answer(StorageState.OK, "retention freed 2 GiB")
    cam.scheduler.run()
    assert len(cam.media.recorders) == 2 and cam.status.recording


def test_switching_recording_off_is_reported_once_the_file_is_final() -> None:
    camera = Camera()
    camera.rt.start()
    camera.scheduler.run()
    camera.pipeline.first_frame()
    camera.scheduler.run()
    camera.rt.stop_recording()
    assert camera.status is not None and camera.status.recording  # finalising
    camera.scheduler.run()
    assert not camera.status.recording and not camera.status.recording_wanted
    assert camera.storage.gaps[-1] == (GapReason.RECORDING_OFF, None)
    assert camera.rt.start_recording() is True


def test_a_recorder_that_stops_writing_is_rebuilt(cam: Camera) -> None:
    cam.pipeline.first_frame()
    cam.scheduler.run()
    cam.recorder.write(1_000)
    cam.streaming(20.0)  # video arrives, the file does not grow
    assert len(cam.media.recorders) == 2
    assert cam.status is not None and cam.status.error_count(ErrorKind.UNKNOWN) == 1
    assert cam.status.state is CameraState.STREAMING


def test_stopping_the_camera_finishes_everything(cam: Camera) -> None:
    cam.pipeline.first_frame()
    cam.scheduler.run()
    cam.rt.stop()
    cam.scheduler.run()
    assert cam.states()[-1] is CameraState.STOPPED
    assert cam.pipeline.released and cam.pipeline.branches == []
    assert cam.status is not None and not cam.status.recording
    assert (GapReason.CAMERA_DOWN, None) not in cam.storage.gaps


def test_pre_record_buffers_until_recording_is_switched_on() -> None:
    camera = Camera(record=False, pre_record_s=5.0)
    camera.rt.start()
    camera.scheduler.run()
    assert camera.recorder.armed
    camera.rt.start_recording()
    assert not camera.recorder.armed and len(camera.media.recorders) == 1
    assert Path("/rec") == camera.storage.root
