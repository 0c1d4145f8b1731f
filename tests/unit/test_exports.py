"""Export jobs with fakes: states, naming, validation, SHA-256, expiry and restart, with an
injected clock and an exporter that writes a few bytes (no GStreamer); milliseconds."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nvr_gstreamer.config import ExportsConfig
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.engine.exports import (
    MAX_QUEUED,
    ExportBook,
    ExportChanged,
    ExportFailed,
    ExportRejected,
    ExportService,
    JobState,
    Rejection,
    file_name,
    gaps_in,
    utc_label,
)
from nvr_gstreamer.storage.footage_runs import Footage, Part

T0 = datetime(2026, 11, 29, 10, 15, tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class Result:
    duration_s: float
    start_utc: float
    keyframe_utc: float


class FakeExporter:
    """Writes ``payload`` (per camera, from the file name) and reports progress in quarters;
    ``during`` runs in the middle of an export (a DELETE arriving, say)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []
        self.fail: Exception | None = None
        self.during: Callable[[], None] | None = None

    def __call__(
        self,
        footage: Footage,
        start_utc: float,
        end_utc: float,
        dest: Path,
        progress: Callable[[float], None],
        cancel: threading.Event,
    ) -> Result:
        self.calls.append((dest.name, start_utc, end_utc))
        for q in (0.25, 0.5):
            progress(q)
        if self.during is not None:
            self.during()
        if self.fail is not None:
            raise self.fail
        dest.write_bytes(f"mp4 of {dest.name}".encode() * 100)
        progress(1.0)
        return Result(end_utc - start_utc, start_utc, start_utc - 0.4)


@dataclass
class World:
    clock: FakeClock
    root: Path
    exporter: FakeExporter
    service: ExportService
    changes: list[ExportChanged]
    recorded: dict[str, list[Part]]
    state: dict[str, object]

    def restart(self) -> ExportService:
        service = make_service(self.root, self.clock, self.exporter, self.recorded, self.state)
        service.load()
        return service


def make_service(
    root: Path,
    clock: FakeClock,
    exporter: FakeExporter,
    recorded: dict[str, list[Part]],
    state: dict[str, object],
) -> ExportService:
    ids = iter(f"{n:012x}" for n in range(int(str(state.get("next_id", 1))), 10**6))

    def new_id() -> str:
        value = next(ids)
        state["next_id"] = int(value, 16) + 1
        return value

    def parts_of(camera: str, start: float, end: float) -> list[Part]:
        return [p for p in recorded.get(camera, []) if p.start_utc < end and p.end_utc > start]

    return ExportService(
        ExportsConfig(keep_hours=24, max_minutes=60),
        root,
        clock,
        parts_of,
        exporter,
        known_cameras=lambda: ["cam1", "cam2", "cam3"],
        unavailable=lambda: state.get("unavailable"),  # type: ignore[return-value]
        room=lambda: state.get("room"),  # type: ignore[return-value]
        new_id=new_id,
    )


@pytest.fixture
def world(tmp_path: Path) -> World:
    clock = FakeClock(datetime.fromtimestamp(T0 + 3600, UTC))
    recorded = {
        c: [Part(tmp_path / f"{c}-{i}.mkv", T0 + 60 * i, 60.0) for i in range(10)]
        for c in ("cam1", "cam2")
    }
    for parts in recorded.values():
        for p in parts:
            p.path.write_bytes(b"x" * 6000)
    exporter = FakeExporter()
    state: dict[str, object] = {}
    service = make_service(tmp_path / "rec", clock, exporter, recorded, state)
    changes: list[ExportChanged] = []
    service.subscribe(changes.append)
    return World(clock, tmp_path / "rec", exporter, service, changes, recorded, state)


# ---- naming -----------------------------------------------------------------------------------


def test_file_names_carry_camera_and_utc_times() -> None:
    assert utc_label(T0) == "20261129T101500Z"
    assert utc_label(T0 + 0.25) == "20261129T101500.250Z"
    assert utc_label(T0 + 59.9996) == "20261129T101600Z"  # rounded to the millisecond
    assert file_name("cam1", T0, T0 + 900) == "cam1_20261129T101500Z_20261129T103000Z.mp4"


def test_gaps_inside_the_range_are_named() -> None:
    parts = [Part(Path("a"), 0.0, 10.0), Part(Path("b"), 11.0, 10.0), Part(Path("c"), 40.0, 10.0)]
    assert gaps_in(parts, 0.0, 50.0) == ((21.0, 40.0),)  # a hole of 1 s is no gap
    assert gaps_in(parts, 5.0, 60.0) == ((21.0, 40.0), (50.0, 60.0))
    assert gaps_in(parts, 0.0, 20.0) == ()


# ---- the book ---------------------------------------------------------------------------------


def test_book_states_and_expiry_with_given_times() -> None:
    book = ExportBook(keep_s=100.0)
    a = book.add("000000000001", ["cam1"], T0, T0 + 60, now=1000.0)
    b = book.add("000000000002", ["cam1", "cam2"], T0, T0 + 60, now=1001.0)
    assert a.state is JobState.QUEUED and [f.name for f in b.files] == [
        file_name("cam1", T0, T0 + 60),
        file_name("cam2", T0, T0 + 60),
    ]
    assert book.next_queued() == a and book.active() == 2
    book.started(a.id)
    assert book.progressed(a.id, 0.4).progress == 0.4
    assert book.progressed(a.id, 0.3).progress == 0.4  # never backwards
    assert book.progressed(a.id, 7.0).progress == 1.0
    done = book.done(a.id, now=1010.0)
    assert done.state is JobState.DONE and done.expires_utc == 1110.0
    cancelled = book.cancelled(b.id, now=1020.0)
    assert cancelled.state is JobState.CANCELLED and cancelled.error == "cancelled"
    assert book.next_queued() is None and book.active() == 0
    assert book.expired(1109.9) == []
    assert [j.id for j in book.expired(1110.0)] == [a.id]
    assert [j.id for j in book.expired(1120.0)] == [a.id, b.id]


# ---- requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cameras", "start", "end", "kind", "words"),
    [
        (
            ["cam1", "cam9", "nope"],
            T0,
            T0 + 60,
            Rejection.UNKNOWN_CAMERA,
            "no camera 'cam9', 'nope'",
        ),
        (["cam1", "cam1"], T0, T0 + 60, Rejection.BAD_REQUEST, "name each camera once"),
        (["cam1"], T0 + 60, T0 + 60, Rejection.BAD_REQUEST, "start must be before end"),
        (["cam1"], T0, T0 + 3601, Rejection.TOO_LONG, "at most 60 minutes per export"),
        (["cam1", "cam3"], T0, T0 + 60, Rejection.NOTHING_RECORDED, "for cam3"),
        (["cam1"], T0 - 900, T0 - 60, Rejection.NOTHING_RECORDED, "20261129T100000Z and"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(
    world: World, cameras: list[str], start: float, end: float, kind: Rejection, words: str
) -> None:
    with pytest.raises(ExportRejected) as info:
        world.service.submit(cameras, start, end)
    assert info.value.kind is kind and words in info.value.message, info.value.message
    assert world.service.jobs() == [] and world.changes == []


def test_unavailable_storage_and_a_full_queue_are_refused(world: World) -> None:
    world.state["unavailable"] = "the drive is gone"
    with pytest.raises(ExportRejected, match="cannot export now: the drive is gone"):
        world.service.submit(["cam1"], T0, T0 + 60)
    del world.state["unavailable"]
    for _ in range(MAX_QUEUED):
        world.service.submit(["cam1"], T0, T0 + 60)
    with pytest.raises(ExportRejected) as info:
        world.service.submit(["cam1"], T0, T0 + 60)
    assert info.value.kind is Rejection.BUSY


# ---- running ----------------------------------------------------------------------------------


def test_a_job_runs_to_done_with_a_sha256_per_file(world: World) -> None:
    job = world.service.submit(["cam1", "cam2"], T0 + 30, T0 + 150)
    assert job.state is JobState.QUEUED and world.changes[-1].job == job
    world.clock.advance(5)
    done = world.service.run_next()
    assert done is not None and done.state is JobState.DONE and done.error is None
    assert done.progress == 1.0 and done.finished_utc == T0 + 3605
    assert done.expires_utc == T0 + 3605 + 24 * 3600
    folder = world.root / "exports" / job.id
    for f in done.files:
        data = (folder / f.name).read_bytes()
        assert f.sha256 == hashlib.sha256(data).hexdigest() and f.size_bytes == len(data)
        # sha256sum -c reads it
        assert (folder / (f.name + ".sha256")).read_text() == f"{f.sha256}  {f.name}\n"
        assert f.start_utc == T0 + 30 and f.keyframe_utc == T0 + 29.6 and f.duration_s == 120
    assert [c[0] for c in world.exporter.calls] == [f.name for f in done.files]
    states = [c.job.state for c in world.changes]
    assert states[0] is JobState.QUEUED and states[1] is JobState.RUNNING
    assert states[-1] is JobState.DONE
    progress = [c.job.progress for c in world.changes if c.job.state is JobState.RUNNING]
    assert progress == sorted(progress) and 0.2 < progress[len(progress) // 2] < 0.8
    assert world.service.run_next() is None  # nothing queued
    assert world.service.file_path(job.id, "cam2") == (folder / done.files[1].name).resolve()
    assert world.service.file_path(job.id, "cam3") is None


def test_a_failed_export_leaves_no_file_and_says_why(world: World) -> None:
    world.exporter.fail = ExportFailed("the recording gained a stream (audio) at 10:16:00")
    job = world.service.submit(["cam1"], T0, T0 + 60)
    failed = world.service.run_next()
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.error == "the recording gained a stream (audio) at 10:16:00"
    assert all(f.sha256 is None for f in failed.files)
    assert not (world.root / "exports" / job.id).exists()
    assert world.service.file_path(job.id, "cam1") is None

    world.exporter.fail = RuntimeError("boom")  # unexpected: logged, shown with its type
    world.service.submit(["cam1"], T0, T0 + 60)
    failed = world.service.run_next()
    assert failed is not None and failed.error == "export failed: RuntimeError: boom"


def test_not_enough_room_fails_before_writing(world: World) -> None:
    world.state["room"] = 5_000  # bytes; the range holds ~2 parts of 6000
    world.service.submit(["cam1"], T0, T0 + 120)
    failed = world.service.run_next()
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.error is not None and failed.error.startswith("not enough free space")
    assert world.exporter.calls == []


def test_cancel_queued_then_running_then_remove(world: World) -> None:
    queued = world.service.submit(["cam1"], T0, T0 + 60)
    cancelled = world.service.delete(queued.id)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert world.service.run_next() is None  # never runs

    running = world.service.submit(["cam1", "cam2"], T0, T0 + 60)
    world.exporter.during = lambda: world.service.delete(running.id)  # a DELETE mid-export
    ended = world.service.run_next()
    assert ended is not None and ended.state is JobState.CANCELLED
    assert len(world.exporter.calls) == 1  # the second camera never started
    assert not (world.root / "exports" / running.id).exists()

    assert world.service.delete(running.id) is None  # finished: removed now
    assert world.service.job(running.id) is None
    assert world.changes[-1].removed and world.changes[-1].job.id == running.id
    with pytest.raises(KeyError):
        world.service.delete(running.id)


def test_stop_cancels_the_running_job(world: World) -> None:
    job = world.service.submit(["cam1"], T0, T0 + 60)
    world.exporter.during = world.service.stop
    ended = world.service.run_next()
    assert ended is not None and ended.state is JobState.CANCELLED
    assert not (world.root / "exports" / job.id).exists()
    with pytest.raises(ExportRejected, match="shutting down"):
        world.service.submit(["cam1"], T0, T0 + 60)


# ---- expiry and restart -------------------------------------------------------------------------


def test_finished_exports_expire_after_keep_hours(world: World) -> None:
    job = world.service.submit(["cam1"], T0, T0 + 60)
    world.service.run_next()
    failed_later = world.service.submit(["cam2"], T0, T0 + 60)
    world.exporter.fail = ExportFailed("nope")
    world.clock.advance(3600)
    world.service.run_next()
    folder = world.root / "exports" / job.id
    assert folder.is_dir()
    world.clock.advance(23 * 3600 - 1)
    assert world.service.sweep(world.clock.wall().timestamp()) == []
    world.clock.advance(1)
    assert world.service.sweep(world.clock.wall().timestamp()) == [job.id]
    assert not folder.exists() and world.service.job(job.id) is None
    assert world.changes[-1].removed
    world.clock.advance(3600)
    assert world.service.sweep(world.clock.wall().timestamp()) == [failed_later.id]
    assert world.service.jobs() == []


def test_a_restart_lists_finished_exports_again_and_clears_leftovers(world: World) -> None:
    job = world.service.submit(["cam1", "cam2"], T0, T0 + 60)
    done = world.service.run_next()
    assert done is not None
    exports = world.root / "exports"
    leftover = exports / "00000000abcd"  # an interrupted job: no job.json
    leftover.mkdir()
    (leftover / "cam1_x.mp4.partial").write_bytes(b"half")
    stranger = exports / "notes"  # not ours: left alone
    stranger.mkdir()

    world.clock.advance(3600)
    again = world.restart()
    listed = again.jobs()
    assert [j.id for j in listed] == [job.id]
    restored = listed[0]
    assert restored.state is JobState.DONE and restored.files == done.files
    assert restored.expires_utc == done.expires_utc  # from when it finished, not the restart
    assert not leftover.exists() and stranger.is_dir()
    assert again.file_path(job.id, "cam1") is not None

    # Expiry still applies.
    world.clock.advance(23 * 3600)
    assert again.sweep(world.clock.wall().timestamp()) == [job.id]


def test_an_export_changed_on_disk_is_listed_as_failed_and_kept(world: World) -> None:
    job = world.service.submit(["cam1", "cam2"], T0, T0 + 60)
    done = world.service.run_next()
    assert done is not None
    folder = world.root / "exports" / job.id
    first, second = (folder / f.name for f in done.files)
    with open(first, "ab") as f:
        f.write(b"more")
    (folder / (second.name + ".sha256")).write_text("0" * 64 + "  " + second.name + "\n")
    again = world.restart()
    (listed,) = again.jobs()
    assert listed.state is JobState.FAILED and listed.files == done.files  # as exported
    assert listed.error == (
        f"{first.name} changed on disk after the export; "
        f"{second.name} changed on disk after the export"
    )
    assert first.exists() and again.file_path(job.id, "cam1") is None  # kept, not served
    world.clock.advance(24 * 3600)
    assert again.sweep(world.clock.wall().timestamp()) == [job.id]
    assert not folder.exists()


def test_the_manifest_is_plain_json(world: World) -> None:
    job = world.service.submit(["cam1"], T0, T0 + 60)
    world.service.run_next()
    data = json.loads((world.root / "exports" / job.id / "job.json").read_text())
    assert data["id"] == job.id and data["cameras"] == ["cam1"]
    assert data["files"][0]["name"] == file_name("cam1", T0, T0 + 60)


def test_listeners_hear_changes_in_order_and_cannot_break_a_job(world: World) -> None:
    seen: list[tuple[str, JobState]] = []

    def reads_back(change: ExportChanged) -> None:  # calls into the service: re-entrant
        job = world.service.job(change.job.id)
        seen.append((change.job.id, job.state if job is not None else JobState.CANCELLED))

    def broken(_change: ExportChanged) -> None:
        raise RuntimeError("a listener's bug")

    world.service.subscribe(broken)
    world.service.subscribe(reads_back)
    job = world.service.submit(["cam1"], T0, T0 + 60)
    done = world.service.run_next()
    assert done is not None and done.state is JobState.DONE
    states = [state for job_id, state in seen if job_id == job.id]
    assert states[0] is JobState.QUEUED and states[-1] is JobState.DONE
    assert states == sorted(states, key=[JobState.QUEUED, JobState.RUNNING, JobState.DONE].index)
