"""Frames lost at segment boundaries and at `kill -9` of `nvr run`.

Boundaries: one 25 fps camera (GOP 1 s) recorded in-process with `segment_seconds: 2` until the
catalog holds --segments closed segments, then stopped cleanly. Frames per file are counted with
`ffprobe -count_frames` and compared with fps x the span the catalog gives (end - start), per
segment and over the whole run (frames of all files vs fps x (last end - first start)): a frame
dropped at a cut shows up as a deficit there. Target: 0 within one frame per boundary.

kill -9: `nvr run` records with `segment_seconds: 60`, is SIGKILLed --kill-after seconds into its
first segment and started again (its start-up recovery repairs the file). Lost = fps x (kill
time - segment start) - frames in the recovered file. Target: <= 1 s of video.

    .venv/bin/python bench/bench_frames.py [--long]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import NvrService, Segment, free_port, segments, temp_dir, verdict, write_config

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import EngineWatch, engine_config, wait_until
from nvr_gstreamer.testing.media import probe

FPS = 25.0


def closed(root: Path) -> list[Segment]:
    try:
        return [s for s in segments(root) if s.status == "closed"]
    except Exception:  # the catalog may not exist yet
        return []


def boundaries(count: int, segment_s: float) -> bool:
    with temp_dir("frames") as folder, SimulatorProcess(1, fps=FPS, gop_seconds=1.0) as sim:
        options: dict[str, object] = {"segment_seconds": segment_s}
        config = engine_config({"cam1": sim.url("cam1")}, storage=folder, storage_options=options)
        app = NvrApp(config)
        watch = EngineWatch(app.engine)
        app.start()
        try:
            watch.wait_for("cam1", CameraState.STREAMING, 30)
            wait_until(lambda: len(closed(folder)) >= count, count * segment_s + 30, "segments")
        finally:
            watch.close()
            app.stop()
        rows = closed(folder)
        return report_boundaries(rows)


def report_boundaries(rows: list[Segment]) -> bool:
    print(f"segment boundaries ({len(rows)} segments, {FPS:g} fps):")
    print(f"  {'file':<34} {'span s':>7} {'fps*span':>9} {'ffprobe':>8} {'catalog':>8} {'diff':>6}")
    total = 0
    for row in rows:
        assert row.end_utc is not None
        span = row.end_utc - row.start_utc
        frames = probe(row.path).frames
        total += frames
        expected = FPS * span
        print(
            f"  {row.path.name:<34} {span:>7.3f} {expected:>9.1f} {frames:>8} "
            f"{row.frames!s:>8} {frames - expected:>+6.1f}"
        )
    first, last = rows[0], rows[-1]
    assert last.end_utc is not None
    expected_total = FPS * (last.end_utc - first.start_utc)
    lost = expected_total - total
    tolerance = len(rows)  # one frame per file (per boundary, and the end)
    met = lost <= tolerance
    print(
        f"  all files: {total} frames vs fps x span {expected_total:.1f}: lost {lost:+.1f} "
        f"frames; target 0 within one frame per boundary (<= {tolerance}): {verdict(met)}"
    )
    return met


def kill9(kill_after_s: float) -> bool:
    with temp_dir("kill9") as folder, SimulatorProcess(1, fps=FPS, gop_seconds=1.0) as sim:
        port = free_port()
        config = write_config(
            folder, {"cam1": sim.url("cam1")}, api_port=port, storage={"segment_seconds": 60}
        )
        root = folder / "rec"
        nvr = NvrService(config, port, folder / "nvr1.log")
        try:
            nvr.wait_streaming(1)
            wait_until(lambda: bool(open_rows(root)), 30, "a segment in the catalog")
            start = open_rows(root)[0].start_utc
            time.sleep(max(0.0, start + kill_after_s - time.time()))  # record that long
            killed = nvr.kill9()
        finally:
            nvr.close()
        again = NvrService(config, port, folder / "nvr2.log")
        try:
            again.wait_streaming(1)  # start-up recovery runs before the cameras start
        finally:
            again.close()
        row = next(s for s in segments(root) if s.status == "recovered")
        return report_kill(row, killed)


def open_rows(root: Path) -> list[Segment]:
    try:
        return [s for s in segments(root) if s.status == "recording"]
    except Exception:
        return []


def report_kill(row: Segment, killed: float) -> bool:
    frames = probe(row.path).frames
    expected = FPS * (killed - row.start_utc)
    lost_s = (expected - frames) / FPS
    met = lost_s <= 1.0
    print(
        f"kill -9 after {killed - row.start_utc:.2f} s of segment: recovered file {frames} frames "
        f"(catalog {row.frames}) vs fps x (kill - start) {expected:.1f}: lost {lost_s:.2f} s; "
        f"target <= 1 s: {verdict(met)}"
    )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="more segments, two kill runs")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--segment-seconds", type=float, default=2.0)
    parser.add_argument("--kill-after", type=float, default=6.5)
    args = parser.parse_args(argv)
    count = args.segments * 3 if args.long else args.segments
    ok = boundaries(count, args.segment_seconds)
    for kill_after in [args.kill_after, 20.3] if args.long else [args.kill_after]:
        ok &= kill9(kill_after)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
