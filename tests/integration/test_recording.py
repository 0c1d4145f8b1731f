"""Recording against the simulator on real filesystems: segments, start/stop, a camera lost
mid-segment, the recorder killed mid-segment, disk full, and a drive unmounted."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.config import NvrConfig
from nvr_gstreamer.core.clock import SystemClock
from nvr_gstreamer.engine.engine import MediaFactory
from nvr_gstreamer.engine.gst_media import GstMedia
from nvr_gstreamer.gst.recorder import RecorderBranch
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.storage.catalog import Catalog, GapReason, SegmentRow, SegmentStatus
from nvr_gstreamer.storage.service import StorageService
from nvr_gstreamer.storage.volume import StorageState
from nvr_gstreamer.testing.engine import EngineWatch, engine_config, wait_until
from nvr_gstreamer.testing.media import probe

pytestmark = pytest.mark.integration

FPS = 15
GOP_S = 1.0


@pytest.fixture
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(cameras=2, fps=FPS, gop_seconds=GOP_S) as s:
        yield s


@contextmanager
def running(
    config: NvrConfig, media: MediaFactory = GstMedia
) -> Iterator[tuple[NvrApp, EngineWatch]]:
    app = NvrApp(config, media=media)
    watch = EngineWatch(app.engine)
    app.start()
    try:
        yield app, watch
    finally:
        app.stop()


def closed(catalog: Catalog, camera: str = "cam1") -> list[SegmentRow]:
    return [r for r in catalog.segments(camera) if r.status is not SegmentStatus.RECORDING]


def mkv_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*/*.mkv"))


def test_continuous_recording_over_three_segments_loses_no_frames(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    root = tmp_path / "rec"
    config = engine_config(
        {"cam1": sim.url("cam1")}, storage=root, storage_options={"segment_seconds": 3}
    )
    with running(config) as (app, watch):
        wait_until(lambda: len(closed(app.storage.catalog)) >= 3, 30, "three closed segments")
        t = time.monotonic()
        app.engine.stop_recording("cam1")
        watch.wait_recording("cam1", False, 10, after=t)
        app.storage.wait_idle()
        rows = closed(app.storage.catalog)
    assert len(rows) >= 3
    assert {r.path for r in rows} == {p.relative_to(root).as_posix() for p in mkv_files(root)}
    total = 0
    for row in rows:
        path = root / row.path
        facts = probe(path)
        assert facts.frames > 0 and facts.first_is_keyframe, (row.path, facts)
        assert facts.duration_s is not None
        assert row.frames == facts.frames
        assert row.size_bytes == path.stat().st_size
        assert row.duration_s == pytest.approx(facts.duration_s, abs=0.2)
        assert path.parent.name == path.name.split("_")[1]  # <camera>/<YYYYMMDD>/...
        total += facts.frames
    for prev, nxt in itertools.pairwise(rows):
        assert nxt.start_utc - (prev.end_utc or 0) < 0.25, "segments follow each other"
    span = (rows[-1].end_utc or 0) - rows[0].start_utc
    print(f"{len(rows)} segments, {total} frames over {span:.2f} s (expected {FPS * span:.0f})")
    assert abs(total - FPS * span) <= FPS * GOP_S


def test_start_stop_twenty_times_leaves_only_playable_files(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    root = tmp_path / "rec"
    config = engine_config({"cam1": sim.url("cam1")}, storage=root)
    config = config.model_copy(
        update={"cameras": [config.cameras[0].model_copy(update={"record": False})]}
    )
    with running(config) as (app, watch):
        watch.wait_for("cam1", CameraState.STREAMING, 10)
        holds = [0.05, 0.3, 1.2, 0.1, 2.1, 0.0, 0.7, 1.5, 0.2, 0.9] * 2
        for hold in holds:
            t = time.monotonic()
            assert app.engine.start_recording("cam1")
            watch.wait_recording("cam1", True, 5, after=t)
            if hold:
                wait_until(lambda h=hold, t0=t: time.monotonic() - t0 >= h, hold + 1, "hold")
            t = time.monotonic()
            app.engine.stop_recording("cam1")
            watch.wait_recording("cam1", False, 10, after=t)
        app.storage.wait_idle()
        rows = app.storage.catalog.segments("cam1")
    files = mkv_files(root)
    print(f"20 start/stop cycles: {len(files)} files")
    # The longer sessions span keyframes. 9 files here; 4 in some CI runs, where a stall and
    # reconnect during the cycles cost sessions (an open question, see the session notes).
    assert len(files) >= 3
    assert len(rows) == len(files)
    for path in files:
        assert path.stat().st_size > 0
        facts = probe(path)
        assert facts.frames >= 1 and facts.first_is_keyframe, (path.name, facts)
    assert all(r.status is SegmentStatus.CLOSED for r in rows)


def test_camera_killed_mid_segment_closes_it_and_the_gap_says_camera_down(
    tmp_path: Path,
) -> None:
    root = tmp_path / "rec"
    with SimulatorProcess(cameras=1, fps=FPS, gop_seconds=GOP_S) as sim:
        config = engine_config(
            {"cam1": sim.url("cam1")}, storage=root, storage_options={"segment_seconds": 30}
        )
        with running(config) as (app, watch):
            wait_until(lambda: app.engine.status("cam1").current_segment is not None, 10, "a file")
            first = app.engine.status("cam1").current_segment
            wait_until(lambda: app.engine.status("cam1").frames >= 3 * FPS, 10, "3 s of video")
            t = time.monotonic()
            sim.kill()
            watch.wait_for("cam1", CameraState.RECONNECTING, 5, after=t)
            watch.wait_recording("cam1", False, 5, after=t)
            wait_until(lambda: time.monotonic() - t >= 4, 5, "a 4 s outage")
            sim.restart()
            wait_until(
                lambda: app.engine.status("cam1").current_segment not in (None, first),
                10,
                "a new segment after the camera's return",
            )
            app.storage.wait_idle()
            catalog = app.storage.catalog
            rows = catalog.segments("cam1")
            timeline = app.storage.timeline("cam1", rows[0].start_utc, rows[1].start_utc + 0.5)
    assert rows[0].path == first and rows[0].status is SegmentStatus.CLOSED
    facts = probe(root / rows[0].path)
    assert facts.frames >= 2 * FPS and facts.duration_s is not None
    gaps = [g for g in timeline.gaps if g.end_utc - g.start_utc > 2]
    assert [g.reason for g in gaps] == [GapReason.CAMERA_DOWN], timeline.gaps


def _nvr(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    nvr = Path(sys.executable).parent / "nvr"
    return subprocess.Popen(
        [nvr, "--log-level", "DEBUG", "run", "-c", config_path],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),
    )


def test_recorder_killed_mid_segment_is_repaired_at_restart(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    with SimulatorProcess(cameras=1, fps=FPS, gop_seconds=GOP_S) as sim:
        cfg = tmp_path / "nvr.yaml"
        cfg.write_text(
            f"storage: {{path: {root}, segment_seconds: 3}}\n"
            f"cameras: [{{id: cam1, url: '{sim.url('cam1')}'}}]\n"
        )
        log = tmp_path / "nvr.log"
        proc = _nvr(cfg, log)
        try:
            wait_until(lambda: (root / "catalog.sqlite3").exists(), 20, "the catalog")
            catalog = Catalog(root)
            wait_until(lambda: len(closed(catalog)) >= 2, 30, "two closed segments")
            current = [r for r in catalog.segments("cam1") if r.status is SegmentStatus.RECORDING]
            wait_until(
                lambda: any(r.status is SegmentStatus.RECORDING for r in catalog.segments("cam1")),
                10,
                "a segment in progress",
            )
            current = [r for r in catalog.segments("cam1") if r.status is SegmentStatus.RECORDING]
            in_progress = current[-1]
            wait_until(lambda: time.time() - in_progress.start_utc >= 1.5, 5, "mid-segment")
            before = {r.path: r for r in closed(catalog)}
            proc.send_signal(signal.SIGKILL)
            killed_at = time.time()
            proc.wait(5)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert (root / in_progress.path).exists()
        proc = _nvr(cfg, log)
        try:
            wait_until(lambda: "start-up recovery" in log.read_text(), 60, "recovery")
            wait_until(
                lambda: "-> streaming" in log.read_text().split("start-up recovery")[1],
                20,
                "streaming after restart",
            )
        finally:
            t = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(10)
            stop_s = time.monotonic() - t
    assert code == 0 and stop_s < 5
    catalog = Catalog(root)
    for path, row in before.items():  # earlier segments intact
        facts = probe(root / path)
        assert facts.frames == row.frames and facts.duration_s is not None
    row = next(r for r in catalog.segments("cam1") if r.path == in_progress.path)
    assert row.status is SegmentStatus.RECOVERED
    facts = probe(root / row.path)
    expected = FPS * (killed_at - in_progress.start_utc)
    lost_s = (expected - facts.frames) / FPS
    print(f"kill -9: {facts.frames} frames kept of ~{expected:.0f} ({lost_s:.2f} s lost)")
    assert facts.duration_s is not None and facts.first_is_keyframe
    assert lost_s <= 1.25
    assert row.frames == facts.frames
    on_disk = {p.relative_to(root).as_posix() for p in mkv_files(root)}
    assert on_disk == {r.path for r in catalog.segments()}
    # SIGTERM finalised the segment it interrupted: every file has its duration.
    assert all(r.status is not SegmentStatus.RECORDING for r in catalog.segments())
    assert all(probe(root / p).duration_s is not None for p in on_disk)
    assert "Traceback" not in log.read_text()


# ---- storage faults (root: tmpfs and bind mounts; CI runs as root) ---------------------------

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounts a tmpfs: needs root (CI runs as root)"
)


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)


def fill(path: Path, leave_bytes: int = 0) -> int:
    """Write a filler file until the volume has ``leave_bytes`` left (or none)."""
    written = 0
    chunk = b"\0" * 65536
    with open(path, "wb") as f:
        try:
            while True:
                free = os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize
                if free <= leave_bytes + len(chunk):
                    if free > leave_bytes:
                        f.write(b"\0" * (free - leave_bytes))
                    break
                f.write(chunk)
                f.flush()
                written += len(chunk)
        except OSError:
            pass
    return written


class FrameCounter:
    def __init__(self) -> None:
        self.count = 0
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, _frame: object) -> None:
        with self._lock:
            self.count += 1
            self.times.append(time.monotonic())

    def longest_gap(self, start: float, end: float) -> float:
        with self._lock:
            ts = [start] + [t for t in self.times if start <= t <= end] + [end]
        return max(b - a for a, b in itertools.pairwise(ts))


@needs_root
def test_disk_full_frees_space_by_retention_and_resumes_while_live_goes_on(
    tmp_path: Path,
) -> None:
    # "snow" does not compress: the camera really sends its 1 Mbit/s.
    with (
        SimulatorProcess(
            cameras=1, fps=FPS, gop_seconds=GOP_S, extra_args=["--pattern", "snow"]
        ) as sim,
        tmpfs(tmp_path / "vol", "16m") as vol,
    ):
        root = vol / "rec"
        config = engine_config(
            {"cam1": sim.url("cam1")},
            storage=root,
            storage_options={"segment_seconds": 2, "min_free_percent": 1},
        )
        with running(config) as (app, watch):
            live = FrameCounter()
            app.engine.add_viewer("cam1", live)
            wait_until(lambda: len(closed(app.storage.catalog)) >= 4, 30, "four segments")
            old = {r.path for r in closed(app.storage.catalog)}
            t_full = time.monotonic()
            fill(vol / "filler")
            # Retention makes room (oldest first) and recording resumes in a new file.
            wait_until(
                lambda: app.storage.counters.retention_deletions >= 1, 15, "retention to run"
            )
            wait_until(
                lambda: any(
                    r.path not in old and r.status is SegmentStatus.CLOSED
                    for r in app.storage.catalog.segments("cam1")
                ),
                # Normally a few seconds; up to the recorder watchdog's 15 s when
                # splitmuxsink wedges after the disk-full error (seen in GStreamer 1.22).
                35,
                "a new closed segment after the disk filled",
            )
            t_end = time.monotonic()
            gap = live.longest_gap(t_full, t_end)
            remaining_old = old & {r.path for r in app.storage.catalog.segments("cam1")}
            print(
                f"disk full: live view's longest gap {gap:.2f} s; "
                f"{len(old) - len(remaining_old)} old segments deleted"
            )
            assert gap < 1.0
            assert len(remaining_old) < len(old)
            assert app.engine.status("cam1").state is CameraState.STREAMING


@needs_root
def test_disk_full_with_nothing_to_free_waits_then_resumes_by_itself(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "vol", "8m") as vol:
        root = vol / "rec"
        root.mkdir()
        filler = vol / "filler"
        fill(filler, leave_bytes=150_000)  # room for about one second of video
        config = engine_config(
            {"cam1": sim.url("cam1")},
            storage=root,
            storage_options={"segment_seconds": 2, "min_free_percent": 0},
        )
        with running(config) as (app, watch):
            wait_until(
                lambda: app.engine.status("cam1").storage_state is StorageState.FULL, 20, "full"
            )
            t_full = time.monotonic()
            # "Off" once the session's file is final (it never got a byte: at once).
            wait_until(lambda: not app.engine.status("cam1").recording, 2, "recording off")
            print(f"recording off {time.monotonic() - t_full:.3f} s after 'full'")
            status = app.engine.status("cam1")
            assert status.state is CameraState.STREAMING
            frames = status.frames
            wait_until(lambda: app.engine.status("cam1").frames > frames + FPS, 5, "video flows")
            t = time.monotonic()
            filler.unlink()  # the user makes room
            watch.wait_recording("cam1", True, 10, after=t)
            wait_until(
                lambda: app.engine.status("cam1").current_segment is not None, 10, "a new file"
            )


def test_a_file_whose_disk_fails_while_it_is_being_closed_ends_the_recording_at_once(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    """Storage found full and the file's write failing at the same moment (seen in CI): the
    session was being finished, its EOS on the way, when the sink failed. The EOS never
    completes then, and the finish must not wait out its timeout (3 s) for it."""
    from gi.repository import GLib, Gst  # (after the engine's modules have set the version)

    made: list[RecorderBranch] = []

    class Tracked(GstMedia):
        def recorder(self, *args: Any, **kwargs: Any) -> RecorderBranch:
            made.append(super().recorder(*args, **kwargs))
            return made[-1]

    failed_at: list[float] = []

    def dead_disk_cb(pad: Any, info: Any) -> Any:
        """Nothing reaches the file any more; the EOS arriving is answered by the error a
        full disk posts (from this streaming thread, as filesink does)."""
        if info.type & Gst.PadProbeType.EVENT_DOWNSTREAM:
            if info.get_event().type != Gst.EventType.EOS:
                return Gst.PadProbeReturn.OK
            sink = pad.get_parent_element()
            error = GLib.Error.new_literal(
                Gst.ResourceError.quark(), "No space left", Gst.ResourceError.NO_SPACE_LEFT
            )
            failed_at.append(time.monotonic())
            sink.post_message(Gst.Message.new_error(sink, error, "write failed"))
        return Gst.PadProbeReturn.DROP

    config = engine_config(
        {"cam1": sim.url("cam1")}, storage=tmp_path / "rec", storage_options={"segment_seconds": 60}
    )
    with running(config, media=Tracked) as (app, _watch):
        wait_until(lambda: app.engine.status("cam1").current_segment is not None, 10, "a file")
        sink_pad = made[-1]._filesink.get_static_pad("sink")
        sink_pad.add_probe(
            Gst.PadProbeType.BUFFER
            | Gst.PadProbeType.BUFFER_LIST
            | Gst.PadProbeType.EVENT_DOWNSTREAM,
            dead_disk_cb,
        )
        app.engine.stop_recording("cam1")
        wait_until(lambda: bool(failed_at), 5, "the EOS at the failing sink")
        wait_until(lambda: not app.engine.status("cam1").recording, 3, "recording off")
        took = time.monotonic() - failed_at[0]
        print(f"recording off {took:.3f} s after the sink failed")
        assert took < 1.0
        assert app.engine.status("cam1").state is CameraState.STREAMING


@needs_root
def test_unmounted_drive_pauses_recording_writes_nothing_and_resumes_after_remount(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "vol", "64m") as vol:
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        subprocess.run(["mount", "--bind", vol, mnt], check=True)
        try:
            config = engine_config(
                {"cam1": sim.url("cam1")}, storage=mnt, storage_options={"segment_seconds": 2}
            )
            with running(config) as (app, watch):
                live = FrameCounter()
                app.engine.add_viewer("cam1", live)
                wait_until(lambda: len(closed(app.storage.catalog)) >= 1, 20, "a segment")
                t = time.monotonic()
                subprocess.run(["umount", "-l", mnt], check=True)
                wait_until(
                    lambda: app.engine.status("cam1").storage_state is StorageState.UNAVAILABLE,
                    5,
                    "storage unavailable",
                )
                noticed = time.monotonic() - t
                watch.wait_recording("cam1", False, 5, after=t)
                # Keep going a while: nothing may appear under the bare mount point.
                wait_until(lambda: time.monotonic() - t >= noticed + 3, 10, "3 s unmounted")
                assert list(mnt.iterdir()) == [], "something was written to the wrong disk"
                assert live.longest_gap(t, time.monotonic()) < 1.0
                segments_before = {p.name for p in mkv_files(vol)}
                t = time.monotonic()
                subprocess.run(["mount", "--bind", vol, mnt], check=True)
                watch.wait_recording("cam1", True, 10, after=t)
                wait_until(
                    lambda: {p.name for p in mkv_files(vol)} - segments_before != set(),
                    10,
                    "a new file after the remount",
                )
                print(f"unmount noticed after {noticed:.2f} s")
        finally:
            subprocess.run(["umount", "-l", mnt], check=False)


class _Later(SystemClock):
    """The real clock, some days on: what the retention janitor sees then."""

    def __init__(self, days: float) -> None:
        self._offset = timedelta(days=days)

    def wall(self) -> datetime:
        return super().wall() + self._offset


@needs_root
def test_retention_on_a_real_tmpfs_by_age_and_by_free_space(tmp_path: Path) -> None:
    with (
        SimulatorProcess(
            cameras=1, fps=FPS, gop_seconds=GOP_S, extra_args=["--pattern", "snow"]
        ) as sim,
        tmpfs(tmp_path / "vol", "16m") as vol,
    ):
        root = vol / "rec"
        config = engine_config(
            {"cam1": sim.url("cam1")},
            storage=root,
            storage_options={"segment_seconds": 2, "retention_days": 1, "min_free_percent": 0},
        )
        with running(config) as (app, watch):
            wait_until(lambda: len(closed(app.storage.catalog)) >= 6, 40, "six segments")
            t = time.monotonic()
            app.engine.stop_recording("cam1")
            watch.wait_recording("cam1", False, 10, after=t)
            app.storage.wait_idle()
        rows = closed(Catalog(root))
        assert len(mkv_files(root)) == len(rows) >= 6

        # By free space: leave less than 30 % free; the oldest go first, until 30 % is free.
        fill(vol / "filler", leave_bytes=int(0.30 * 16 * 2**20) - 300_000)
        storage = config.storage.model_copy(update={"min_free_percent": 30.0})
        svc = StorageService(storage, SystemClock())
        svc.check_now()
        svc.wait_idle()
        left = [r.path for r in svc.catalog.segments("cam1")]
        deleted = [r.path for r in rows if r.path not in left]
        print(f"space retention deleted {len(deleted)} of {len(rows)} segments")
        assert deleted and deleted == [r.path for r in rows][: len(deleted)]
        assert os.statvfs(vol).f_bavail * os.statvfs(vol).f_frsize >= 0.30 * 16 * 2**20
        assert {p.relative_to(root).as_posix() for p in mkv_files(root)} == set(left)
        svc.stop()

        # By age: two days later every remaining segment is past retention_days=1.
        (vol / "filler").unlink()
        svc = StorageService(config.storage, _Later(days=2))
        svc.check_now()
        svc.wait_idle()
        assert svc.catalog.segments() == [] and mkv_files(root) == []
        assert not (root / "cam1").exists(), "empty day folders are removed"
        assert svc.counters.retention_deletions == len(left)
        svc.stop()


def test_pre_record_includes_video_from_before_the_start(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    root = tmp_path / "rec"
    config = engine_config(
        {"cam1": sim.url("cam1")},
        storage=root,
        storage_options={"segment_seconds": 60, "pre_record_seconds": 3},
    )
    config = config.model_copy(
        update={"cameras": [config.cameras[0].model_copy(update={"record": False})]}
    )
    with running(config) as (app, watch):
        watch.wait_for("cam1", CameraState.STREAMING, 10)
        wait_until(lambda: app.engine.status("cam1").frames >= 6 * FPS, 15, "6 s of video")
        assert mkv_files(root) == [] and not app.engine.status("cam1").recording
        t = time.monotonic()
        assert app.engine.start_recording("cam1")
        watch.wait_recording("cam1", True, 5, after=t)
        wait_until(lambda: time.monotonic() - t >= 2, 3, "2 s of recording")
        t_stop = time.monotonic()
        app.engine.stop_recording("cam1")
        watch.wait_recording("cam1", False, 10, after=t_stop)
        recorded_s = t_stop - t
    (path,) = mkv_files(root)
    facts = probe(path)
    print(f"pre-record 3 s + {recorded_s:.1f} s recorded: file holds {facts.duration_s:.2f} s")
    assert facts.first_is_keyframe
    assert facts.duration_s is not None
    assert facts.duration_s >= recorded_s + 3 - GOP_S - 0.2


def test_closing_segments_leaks_no_descriptors(sim: SimulatorProcess, tmp_path: Path) -> None:
    """Each closed segment is read back (frame count): nothing of that may stay open."""
    config = engine_config(
        {"cam1": sim.url("cam1")}, storage=tmp_path / "rec", storage_options={"segment_seconds": 2}
    )
    with running(config) as (app, _watch):
        wait_until(lambda: len(closed(app.storage.catalog)) >= 2, 20, "warm-up segments")
        app.storage.wait_idle()
        before = len(os.listdir("/proc/self/fd"))
        n = len(closed(app.storage.catalog))
        wait_until(lambda: len(closed(app.storage.catalog)) >= n + 6, 40, "six more segments")
        app.storage.wait_idle()
        after = len(os.listdir("/proc/self/fd"))
    print(f"fds over 6 segments: {before} -> {after}")
    assert after <= before + 1  # the segment being written may hold one


def test_finished_recording_branches_are_freed(sim: SimulatorProcess, tmp_path: Path) -> None:
    """Each session's branch (splitmuxsink, muxer, queues) is freed once its file is final.
    A bus sync handler that dropped the branch's messages once kept them all alive."""
    made: list[str] = []
    freed: list[str] = []

    class Tracked(GstMedia):
        def recorder(self, *args: Any, **kwargs: Any) -> RecorderBranch:
            branch = super().recorder(*args, **kwargs)
            name = branch.bin.get_name()
            made.append(name)
            branch.bin.weak_ref(lambda *_: freed.append(name))
            return branch

    config = engine_config(
        {"cam1": sim.url("cam1")}, storage=tmp_path / "rec", storage_options={"segment_seconds": 2}
    )
    with running(config, media=Tracked) as (app, _watch):
        for _ in range(3):
            wait_until(lambda: app.engine.status("cam1").current_segment is not None, 10, "a file")
            app.engine.stop_recording("cam1")
            wait_until(lambda: not app.engine.status("cam1").recording, 10, "recording off")
            app.engine.start_recording("cam1")
        wait_until(lambda: len(freed) >= 3, 10, f"finished branches freed ({freed} of {made})")
    assert set(freed[:3]) <= set(made[:3])
