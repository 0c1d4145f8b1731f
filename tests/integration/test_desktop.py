"""The desktop app against four simulated cameras: real engine, real pipelines, offscreen Qt.

What a user sees is read from the widgets themselves: pixels of the tiles, the text of the
badges and buttons, the MP4 an export wrote (ffprobe). pytest-qt fails a test on any Qt
warning (``qt_log_level_fail`` in pyproject.toml).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.gui.tile import CameraTile
from nvr_gstreamer.gui.window import MainWindow
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.simulator.scene import OVERLAY_MASKS, Picture
from nvr_gstreamer.storage.catalog import SegmentStatus
from nvr_gstreamer.testing.engine import engine_config, wait_until
from nvr_gstreamer.testing.media import probe

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    # smpte bars scroll sideways: a picture that fills the tile and changes every frame.
    with SimulatorProcess(
        cameras=4, gop_seconds=0.5, fps=15, extra_args=["--pattern", "smpte"]
    ) as s:
        yield s


@pytest.fixture
def nvr(sim: SimulatorProcess, tmp_path: Path) -> Iterator[NvrApp]:
    config = engine_config(
        {name: sim.url(name) for name in sim.camera_names},
        storage=tmp_path / "recordings",
        storage_options={"segment_seconds": 2},
        initial_delay_seconds=1,
        max_delay_seconds=2,
        stall_timeout_seconds=2,
    )
    app = NvrApp(config)
    app.start()
    yield app
    app.stop()  # idempotent when the window already stopped it


@pytest.fixture
def window(qtbot: QtBot, nvr: NvrApp) -> Iterator[MainWindow]:
    w = MainWindow(nvr)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    qtbot.waitUntil(lambda: w.is_stopped, timeout=20_000)


def tile_image(tile: CameraTile) -> QImage:
    return tile.grab().toImage()


def lit_fraction(img: QImage, step: int = 5) -> float:
    """Share of pixels that are not black (an empty tile is black with a little text)."""
    total = lit = 0
    for y in range(0, img.height(), step):
        for x in range(0, img.width(), step):
            total += 1
            lit += (img.pixel(x, y) & 0xFFFFFF) > 0x202020
    return lit / max(1, total)


def changed_fraction(a: QImage, b: QImage, step: int = 5) -> float:
    total = changed = 0
    for y in range(0, min(a.height(), b.height()), step):
        for x in range(0, min(a.width(), b.width()), step):
            total += 1
            changed += a.pixel(x, y) != b.pixel(x, y)
    return changed / max(1, total)


def test_every_tile_shows_live_video_and_changes(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    tiles = window.grid.tiles
    assert len(tiles) == 4 and window.grid.per_page == 4
    qtbot.waitUntil(lambda: all(t.frames_shown >= 3 for t in tiles.values()), timeout=20_000)
    first = {cid: tile_image(t) for cid, t in tiles.items()}
    qtbot.wait(1500)  # the simulator's clock overlay and moving pattern change every frame
    for cid, tile in tiles.items():
        later = tile_image(tile)
        lit = lit_fraction(later)
        assert lit > 0.3, f"{cid}: tile looks blank ({lit:.2f} of pixels lit)"
        frac = changed_fraction(first[cid], later)
        assert frac > 0.02, f"{cid}: tile did not change over 1.5 s ({frac:.3f} of pixels)"
        print(f"{cid}: {lit:.2f} of pixels lit, {frac:.2f} changed in 1.5 s")
        assert tile.badge_text() == "streaming"
        assert tile.recording_dot()
    # What scripts/screenshot does for the README (tests never write into the repository).
    assert window.grab().save(str(tmp_path / "desktop.png"))


def test_only_visible_tiles_decode(qtbot: QtBot, window: MainWindow) -> None:
    engine = window.nvr.engine
    qtbot.waitUntil(
        lambda: all(rt.live.attached for rt in engine.runtimes.values()), timeout=10_000
    )
    window.grid.toggle_single("cam2")  # as a double-click does
    qtbot.waitUntil(
        lambda: [c for c, rt in engine.runtimes.items() if rt.live.attached] == ["cam2"],
        timeout=10_000,
    )
    window.grid.set_layout(1)
    window.grid.set_page(3)
    qtbot.waitUntil(lambda: window.grid.tiles["cam4"].frames_shown > 0, timeout=10_000)
    assert window.grid.visible_cameras() == ["cam4"]
    window.tabs.setCurrentWidget(window.playback)  # the grid is hidden: nothing decoded
    qtbot.waitUntil(
        lambda: not any(rt.live.attached for rt in engine.runtimes.values()), timeout=10_000
    )


def test_killed_camera_badge_counts_down_and_recovers(
    qtbot: QtBot, window: MainWindow, sim: SimulatorProcess
) -> None:
    # Every widget update below happens on the GUI thread, whatever thread the engine event
    # or the frame came from: the widgets assert it (on_gui_thread), and pytest-qt fails the
    # test on an exception in a Qt slot.
    tile = window.grid.tiles["cam3"]
    qtbot.waitUntil(lambda: tile.badge_text() == "streaming", timeout=15_000)
    sim.stop("cam3")
    t_stop = time.monotonic()
    try:
        qtbot.waitUntil(lambda: tile.badge_text().startswith("reconnecting"), timeout=10_000)
        t_badge = time.monotonic() - t_stop
        assert window.nvr.engine.status("cam3").state is CameraState.RECONNECTING
        seen = set()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            seen.add(tile.badge_text())
            qtbot.wait(100)
        assert any(
            "retry in" in t or "waiting for the camera" in t or "retrying" in t for t in seen
        ), seen
        assert window.grid.tiles["cam1"].badge_text() == "streaming"  # the others are untouched
    finally:
        sim.resume("cam3")
    t_resume = time.monotonic()
    qtbot.waitUntil(lambda: tile.badge_text() == "streaming", timeout=15_000)
    print(
        f"badge: reconnecting {t_badge:.2f} s after the camera stopped, streaming "
        f"{time.monotonic() - t_resume:.2f} s after it returned; seen {sorted(seen)}"
    )


def test_killed_simulator_every_badge_reconnects_and_returns(
    qtbot: QtBot, window: MainWindow, sim: SimulatorProcess
) -> None:
    tiles = window.grid.tiles.values()
    qtbot.waitUntil(lambda: all(t.badge_text() == "streaming" for t in tiles), timeout=15_000)
    sim.kill()  # every connection drops at once, as when a switch or the cameras lose power
    try:
        qtbot.waitUntil(
            lambda: all(t.badge_text().startswith("reconnecting") for t in tiles), timeout=10_000
        )
        rows = window.recording.rows.values()
        # Recording stays switched on and waits for the camera (once the last file is final).
        qtbot.waitUntil(
            lambda: all(r.state.text().startswith("waiting") for r in rows), timeout=10_000
        )
        assert all(r.button.text() == "Stop" for r in rows)
    finally:
        sim.restart()
    qtbot.waitUntil(lambda: all(t.badge_text() == "streaming" for t in tiles), timeout=20_000)
    qtbot.waitUntil(
        lambda: all(r.state.text() == "recording" for r in window.recording.rows.values()),
        timeout=15_000,
    )


def test_record_buttons_follow_the_engine(qtbot: QtBot, window: MainWindow) -> None:
    panel = window.recording
    row = panel.rows["cam1"]
    engine = window.nvr.engine
    qtbot.waitUntil(lambda: row.state.text() == "recording", timeout=15_000)
    assert row.button.text() == "Stop"

    qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
    # "Off" shows only once the engine says the last file is final.
    qtbot.waitUntil(lambda: row.state.text() == "not recording", timeout=15_000)
    st = engine.status("cam1")
    assert not st.recording and not st.recording_wanted
    assert row.button.text() == "Record" and row.button.isEnabled()
    assert not window.grid.tiles["cam1"].recording_dot()

    row.button.click()
    qtbot.waitUntil(lambda: row.state.text() == "recording", timeout=15_000)
    assert engine.status("cam1").recording

    # Changed by someone else (the HTTP API does exactly this): the panel follows.
    engine.stop_recording("cam1")
    qtbot.waitUntil(
        lambda: row.button.text() == "Record" and row.button.isEnabled(), timeout=15_000
    )
    engine.start_recording("cam1")
    qtbot.waitUntil(lambda: row.state.text() == "recording", timeout=15_000)

    # Changed by the engine itself: the camera is lost, recording waits for it.
    engine.stop_camera("cam1")
    qtbot.waitUntil(lambda: row.state.text().startswith("waiting"), timeout=15_000)
    assert row.button.text() == "Stop"  # still switched on: it resumes with the camera
    engine.start_camera("cam1")
    qtbot.waitUntil(lambda: row.state.text() == "recording", timeout=15_000)

    panel.stop_all.click()
    qtbot.waitUntil(
        lambda: all(r.state.text() == "not recording" for r in panel.rows.values()), timeout=20_000
    )
    panel.record_all.click()
    qtbot.waitUntil(
        lambda: all(r.state.text() == "recording" for r in panel.rows.values()), timeout=20_000
    )


def test_export_across_two_segments_is_one_mp4_of_the_range(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    catalog = window.nvr.storage.catalog

    def closed() -> list:
        return [s for s in catalog.segments("cam2") if s.status is SegmentStatus.CLOSED]

    qtbot.waitUntil(lambda: len(closed()) >= 2, timeout=30_000)
    a, b = closed()[:2]
    assert b.start_utc - (a.start_utc + a.duration_s) < 0.5  # back to back
    start, end = a.start_utc + 0.6, b.start_utc + 1.4
    view = window.playback
    window.tabs.setCurrentWidget(view)
    view.select("cam2", datetime.fromtimestamp(a.start_utc).date())
    qtbot.waitUntil(lambda: not view.loading(), timeout=5_000)  # read off the GUI thread
    assert view.timeline.timeline is not None and len(view.timeline.timeline.segments) >= 2

    dest = tmp_path / "export.mp4"
    view.export(dest, start, end)
    qtbot.waitUntil(lambda: view.last_export is not None, timeout=30_000)
    result = view.last_export
    assert not isinstance(result, str), result
    assert view.export_progress.value() == 100
    facts = probe(dest)
    interval = 1 / 15
    wanted = end - start
    # No re-encode: the copy starts at the key frame at or before the start, and shows from
    # the frame on screen at the start (an edit list).
    print(f"export: range {wanted:.2f} s, MP4 {facts.duration_s:.2f} s, {facts.frames} frames")
    # It shows from the frame on screen at the start: that frame at or before it (1 ms of
    # rounding: a frame up to 1 ms after the start counts as on screen, and the float of a wall
    # time, seen -1.0002 ms), the next one after it (a frame interval may be longer than 1/15 s
    # on a loaded machine: CI saw 69 ms).
    assert -0.0011 <= start - result.start_utc < 0.5
    presented = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(dest)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip
    times = sorted(float(t) for t in presented if float(t) >= 0)
    assert times[0] == 0 and result.start_utc + times[1] > start - 0.0011, times[:3]
    assert 0 <= result.start_utc - result.keyframe_utc < 0.5  # the GOP before
    assert facts.duration_s is not None
    assert abs(facts.duration_s - (end - result.start_utc)) <= interval, (facts, wanted)
    assert abs(facts.duration_s - result.duration_s) < 0.01
    assert abs(facts.frames - facts.duration_s * 15) <= 1.5
    shown = datetime.fromtimestamp(result.start_utc).strftime("%H:%M:%S")
    assert view.export_status.text().endswith(f"from {shown}")
    assert not list(tmp_path.glob("*.partial"))


def test_export_of_a_range_with_no_recording_says_so(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    view = window.playback
    now = time.time()
    view.select("cam1", datetime.fromtimestamp(now).date())
    out = tmp_path / "exports"
    out.mkdir()
    view.export(out / "none.mp4", now - 7200, now - 3600)  # before the recorder started
    qtbot.waitUntil(lambda: not view.exporting(), timeout=5_000)
    assert view.export_status.text() == "nothing was recorded in that range"
    assert not view.exporting() and not list(out.iterdir())


def test_playback_plays_across_a_segment_boundary(qtbot: QtBot, window: MainWindow) -> None:
    catalog = window.nvr.storage.catalog

    def closed() -> list:
        return [s for s in catalog.segments("cam1") if s.status is SegmentStatus.CLOSED]

    qtbot.waitUntil(lambda: len(closed()) >= 2, timeout=30_000)
    a, b = closed()[:2]
    view = window.playback
    window.tabs.setCurrentWidget(view)
    view.select("cam1", datetime.fromtimestamp(a.start_utc).date())
    qtbot.waitUntil(lambda: not view.loading(), timeout=5_000)
    boundary = b.start_utc
    view.play_from(boundary - 1.0)
    qtbot.waitUntil(lambda: view.video.frames_shown > 0, timeout=10_000)
    frames_before = view.video.frames_shown
    walls: list[float] = []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        if view.position_wall is not None:
            walls.append(view.position_wall)
        qtbot.wait(50)
    assert walls and walls[-1] > boundary + 0.5, (walls[-1] - boundary, walls[:3])
    steps = [y - x for x, y in itertools.pairwise(walls)]
    print(f"playback across the boundary: largest position step {max(steps):.2f} s")
    assert max(steps) < 0.6, steps  # no jump at the boundary
    assert min(steps) >= 0
    shown = view.video.frames_shown - frames_before
    assert shown >= 20, f"{shown} frames shown in 2.5 s of playback at 15 fps"
    assert "gap" not in view.timeline.describe(boundary + 0.1)


def test_closing_the_window_finalises_every_file(qtbot: QtBot, nvr: NvrApp) -> None:
    w = MainWindow(nvr)
    w.show()
    qtbot.waitUntil(lambda: nvr.engine.status("cam1").current_segment is not None, timeout=15_000)
    w.close()
    qtbot.waitUntil(lambda: w.is_stopped, timeout=20_000)
    segs = nvr.storage.catalog.segments()
    assert segs and all(s.status is SegmentStatus.CLOSED for s in segs), [
        (s.path, s.status) for s in segs
    ]
    for s in segs[-4:]:
        facts = probe(nvr.storage.root / s.path)
        assert facts.frames > 0 and facts.duration_s > 0


def test_nvr_gui_command_runs_and_sigterm_finalises_every_file(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    import yaml

    root = tmp_path / "rec"
    cfg = tmp_path / "nvr.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "storage": {"path": str(root), "segment_seconds": 2},
                "cameras": [{"id": n, "url": sim.url(n)} for n in sim.camera_names[:2]],
            }
        )
    )
    nvr = Path(sys.executable).parent / "nvr"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen(
        [nvr, "gui", "-c", str(cfg)], stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "window open with 2 cameras" in line:
                break
        wait_until(lambda: len(list(root.glob("*/*/*.mkv"))) >= 4, 15, "four segment files")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=20)
    lines.append(rest or "")
    assert proc.returncode == 0, "".join(lines)[-3000:]
    log = "".join(lines)
    assert "window open with 2 cameras" in log, log[-3000:]
    assert "Traceback" not in log and "CRITICAL" not in log, log[-3000:]
    files = sorted(root.glob("*/*/*.mkv"))
    assert len(files) >= 4
    for f in files[-2:]:
        facts = probe(f)
        assert facts.frames > 0 and facts.duration_s is not None, f


# The offscreen platform cannot raise a window: the timeline's tooltip is one.
@pytest.mark.qt_log_ignore("This plugin does not support raise")
def test_motion_shows_on_the_tile_and_as_an_event_on_the_timeline(
    qtbot: QtBot, tmp_path: Path
) -> None:
    # A still scene with the simulator's clock and frame stamp masked; an object moves.
    masks = [[list(p) for p in m] for m in OVERLAY_MASKS]
    with SimulatorProcess(cameras=1, picture=Picture.SCENE, gop_seconds=1.0) as sim:
        config = engine_config(
            {"cam1": sim.url("cam1")},
            storage=tmp_path / "recordings",
            camera_options={
                "cam1": {"motion": {"enabled": True, "off_delay_seconds": 1, "masks": masks}}
            },
        )
        app = NvrApp(config)
        app.start()
        w = MainWindow(app)
        try:
            w.show()
            qtbot.waitExposed(w)
            tile = w.grid.tiles["cam1"]
            watch = app.engine.runtimes["cam1"].motion
            assert watch is not None
            qtbot.waitUntil(lambda: watch.frames >= 10, timeout=20_000)
            assert not tile.motion_shown()
            sim.object_start("cam1")
            qtbot.waitUntil(tile.motion_shown, timeout=5_000)
            sim.object_stop("cam1")
            qtbot.waitUntil(lambda: not tile.motion_shown(), timeout=10_000)
            qtbot.waitUntil(lambda: bool(app.storage.events.events("cam1")), timeout=5_000)
            event = app.storage.events.events("cam1")[-1]
            view = w.playback
            w.tabs.setCurrentWidget(view)
            view.select("cam1", datetime.fromtimestamp(event.start_utc).date())
            qtbot.waitUntil(lambda: not view.loading(), timeout=5_000)
            assert [e.id for e in view.timeline.events] == [event.id]
            at = (event.start_utc + (event.end_utc or event.start_utc)) / 2
            assert view.timeline.describe(at).startswith("motion ")
            # The pointer over the mark shows the event's peak frame beside the controls.
            x = view.timeline.x_of(event.start_utc) + 1
            qtbot.mouseMove(view.timeline, QPoint(x, 5))
            qtbot.waitUntil(lambda: view.shown_event == event.id, timeout=5_000)
            assert not view.event_picture.pixmap().isNull() and view.event_picture.isVisible()
        finally:
            w.close()
            qtbot.waitUntil(lambda: w.is_stopped, timeout=20_000)
            app.stop()
