"""Liveness logic of the service: heartbeats, the watchdog's verdict, the notify protocol's
addresses, the status line, the unit file and journal logging — with fakes, in milliseconds."""

from __future__ import annotations

import io
import logging
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nvr_gstreamer.camera.status import CameraStatus
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.core.heartbeat import Heartbeats
from nvr_gstreamer.core.logsetup import (
    JOURNAL_FORMAT,
    CameraContextFilter,
    JournalFormatter,
    journal_priority,
    writes_to_journal,
)
from nvr_gstreamer.core.sdnotify import socket_address, watchdog_interval_s
from nvr_gstreamer.service.unit import UnitSpec, render_unit
from nvr_gstreamer.service.watchdog import Watchdog, status_line
from nvr_gstreamer.storage.volume import StorageState, VolumeCheck, VolumeUsage


class FakeNotifier:
    enabled = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, ...]] = []

    def notify(self, *fields: str) -> bool:
        self.sent.append(fields)
        return True


def _watchdog(clock: FakeClock, ping_s: float | None = 1.0) -> tuple[Watchdog, Heartbeats]:
    beats = Heartbeats(clock)
    dog = Watchdog(
        FakeNotifier(),  # type: ignore[arg-type]
        beats,
        lambda stale: "ok" if not stale else "stuck: " + ",".join(stale),
        ping_s,
        loop_timeout_s=3.0,
    )
    return dog, beats


def test_heartbeats_age_and_are_forgotten_on_purpose() -> None:
    clock = FakeClock()
    beats = Heartbeats(clock)
    beats.beat("storage")
    clock.advance(2.0)
    beats.beat("gst-loop")
    clock.advance(1.5)
    assert beats.ages() == {"gst-loop": 1.5, "storage": 3.5}
    assert beats.stale(3.5) == ["storage"] and beats.stale(3.6) == []
    beats.forget("storage")
    assert beats.stale(0.0) == ["gst-loop"]


def test_the_watchdog_pings_only_while_every_loop_turns() -> None:
    clock = FakeClock()
    dog, beats = _watchdog(clock)
    for loop in ("gst-loop", "storage", "api"):
        beats.beat(loop)
    assert dog.tick() == ["WATCHDOG=1", "STATUS=ok"]
    clock.advance(1.0)
    beats.beat("gst-loop")
    beats.beat("api")
    assert dog.tick() == ["WATCHDOG=1"]  # the status did not change: not sent again
    clock.advance(2.0)  # storage has not turned for 3 s
    beats.beat("gst-loop")
    beats.beat("api")
    assert dog.tick() == ["STATUS=stuck: storage"]  # no ping: systemd will restart us
    assert dog.tick() == []
    beats.beat("storage")
    assert dog.tick() == ["WATCHDOG=1", "STATUS=ok"]


def test_a_stuck_loop_is_logged_once_and_its_return_too(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    dog, beats = _watchdog(clock)
    beats.beat("api")
    clock.advance(5.0)
    with caplog.at_level(logging.WARNING):
        dog.tick()
        dog.tick()
        beats.beat("api")
        dog.tick()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "loop api has not turned for 5 s: the service is stuck; "
        "systemd's watchdog is no longer pinged",
        "loop api turns again",
    ]


def test_without_a_systemd_watchdog_only_the_status_is_sent() -> None:
    clock = FakeClock()
    dog, beats = _watchdog(clock, ping_s=None)
    beats.beat("api")
    assert dog.tick() == ["STATUS=ok"]


STATUS = CameraStatus(
    camera_id="cam1", name="cam1", state=CameraState.STREAMING,
    since=datetime(2026, 1, 1, tzinfo=UTC), reason="first frame", last_error_kind=None,
    last_error_message=None, reconnect_attempt=0, next_retry_in_s=None, recording=True,
    recording_wanted=True, storage_state=StorageState.OK, current_segment=None, codec="h264",
    audio_codec=None, transport="tcp", receive_path="stamp", rtp_packets_lost=0, rtp_packets_late=0, frames=0,
    bytes=0, fps=0.0, bitrate_bps=0.0, disconnects=0, reconnect_attempts=0, stalls=0, errors=(),
)  # fmt: skip


def test_the_status_line_sums_up_cameras_storage_and_stuck_loops() -> None:
    statuses = {
        "cam1": STATUS,
        "cam2": replace(STATUS, camera_id="cam2", recording=False),
        "cam3": replace(STATUS, camera_id="cam3", state=CameraState.RECONNECTING, recording=False),
        "cam4": replace(STATUS, camera_id="cam4", state=CameraState.DISABLED, recording=False),
    }
    usage = VolumeUsage(total_bytes=1000, free_bytes=414)
    ok = VolumeCheck(StorageState.OK, "ok", usage)
    line = status_line(statuses, ok, {})
    assert line == "2/3 cameras streaming, 1 recording, storage ok, 41 % free"
    full = VolumeCheck(StorageState.FULL, "full", None)
    line = status_line(statuses, full, {"storage": 12.4})
    assert line == "2/3 cameras streaming, 1 recording, storage full; loop storage stuck for 12 s"


def test_notify_socket_addresses() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@nvr/notify") == b"\0nvr/notify"  # the abstract namespace


def test_the_watchdog_interval_is_systemds_and_only_for_its_process() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}, 42) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 42) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}, 42) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}, 42) is None
    assert watchdog_interval_s({}, 42) is None


def _spec(**changes: object) -> UnitSpec:
    spec = UnitSpec(
        name="nvr",
        executable=Path("/opt/nvr/.venv/bin/nvr"),
        config=Path("/etc/nvr/nvr.yaml"),
        storage=Path("/srv/nvr"),
        user="nvr",
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def test_the_unit_is_a_notify_service_with_a_watchdog_and_hardening() -> None:
    text = render_unit(_spec())
    lines = set(text.splitlines())
    for wanted in (
        "Type=notify",
        "ExecStart=/opt/nvr/.venv/bin/nvr run -c /etc/nvr/nvr.yaml",
        "User=nvr",
        "Restart=always",
        "WatchdogSec=30",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/srv/nvr",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "CapabilityBoundingSet=",
        "WantedBy=multi-user.target",
    ):
        assert wanted in lines, wanted


def test_a_program_or_recordings_under_home_keep_home_readable() -> None:
    under_root = render_unit(_spec(executable=Path("/root/nvr/.venv/bin/nvr")))
    assert "ProtectHome=read-only" in under_root.splitlines()
    under_home = render_unit(_spec(storage=Path("/home/pat/recordings")))
    assert "ProtectHome=read-only" in under_home.splitlines()
    assert "ReadWritePaths=/home/pat/recordings" in under_home.splitlines()


def test_journal_lines_carry_priorities_and_no_timestamp() -> None:
    assert [journal_priority(n) for n in (10, 20, 30, 40, 50)] == [7, 6, 4, 3, 2]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(CameraContextFilter())
    handler.setFormatter(JournalFormatter(JOURNAL_FORMAT))
    log = logging.getLogger("nvr_gstreamer.test_journal")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning("cannot reach rtsp://admin:s3cret@cam/1\nsecond line")
    finally:
        log.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        "<4>nvr_gstreamer.test_journal [-] cannot reach rtsp://admin:***@cam/1",
        "<4>second line",
    ]


def test_the_journal_is_recognised_by_its_device_and_inode(tmp_path: Path) -> None:
    with (tmp_path / "journal").open("w") as stream:
        st = os.fstat(stream.fileno())
        assert writes_to_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not writes_to_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not writes_to_journal(stream, {})
        assert not writes_to_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})
