"""Scale: the largest N of 1280x720 25 fps 2 Mbit/s streams `nvr run` records with no lost frames.

For each N (ascending) the simulator serves N streams and `nvr run` records them for --seconds with
`segment_seconds: 10`; then every camera's closed segments are counted with ffprobe and compared
with fps x (last end - first start) from the catalog, with one frame of tolerance per file. The
simulator runs on the same 2 cores, so this is the limit of simulator + recorder together.
Each N also reports the CPU (cores) of nvr, of the simulator and of the whole machine (every
user's processes) over the window. Only with --long (run_all runs it then); otherwise it says so
and exits 0.

    .venv/bin/python bench/bench_scale.py --long [--cameras 16 24 32 48 64]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass

import psutil
from _common import (
    NvrService,
    Segment,
    cpu_seconds,
    free_port,
    segments,
    temp_dir,
    write_config,
)

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.media import probe

FPS = 25.0


def lost_frames(rows: list[Segment]) -> tuple[float, int]:
    """Worst camera's deficit of frames against fps x span, and the tolerance (files)."""
    by_camera: dict[str, list[Segment]] = defaultdict(list)
    for row in rows:
        if row.status == "closed" and row.end_utc is not None:
            by_camera[row.camera].append(row)
    worst, tolerance = float("-inf"), 0
    for cam_rows in by_camera.values():
        frames = sum(probe(r.path).frames for r in cam_rows)
        end = cam_rows[-1].end_utc
        assert end is not None
        deficit = FPS * (end - cam_rows[0].start_utc) - frames
        if deficit - len(cam_rows) > worst - tolerance:
            worst, tolerance = deficit, len(cam_rows)
    return worst, tolerance


@dataclass(frozen=True, slots=True)
class Cpu:
    """Cores used over the recording window: nvr, the simulator, the whole machine (all users)."""

    nvr: float
    simulator: float
    machine: float


def record(cameras: int, seconds: float) -> tuple[float, int, int, Cpu]:
    with (
        temp_dir("scale") as folder,
        SimulatorProcess(
            cameras,
            size=(1280, 720),
            fps=FPS,
            bitrate_kbps=2000,
            gop_seconds=1.0,
            extra_args=["--pattern", "snow"],
        ) as sim,
    ):
        urls = {name: sim.url(name) for name in sim.camera_names}
        port = free_port()
        config = write_config(folder, urls, api_port=port, storage={"segment_seconds": 10})
        nvr = NvrService(config, port, folder / "nvr.log")
        try:
            nvr.wait_streaming(cameras, timeout_s=120)
            pids = [nvr.process.pid], [sim.pid]
            before = cpu_seconds(pids[0]), cpu_seconds(pids[1]), _busy_seconds(), time.monotonic()
            time.sleep(seconds)  # the recording window
            after = cpu_seconds(pids[0]), cpu_seconds(pids[1]), _busy_seconds(), time.monotonic()
        finally:
            nvr.close()
        span = after[3] - before[3]
        cpu = Cpu(*((a - b) / span for a, b in zip(after[:3], before[:3], strict=True)))
        rows = segments(folder / "rec")
        worst, tolerance = lost_frames(rows)
        recorded = len({r.camera for r in rows})
        return worst, tolerance, recorded, cpu


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true")
    parser.add_argument("--cameras", type=int, nargs="+", default=[16, 24, 32, 48, 64])
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args(argv)
    if not args.long:
        print("scale: skipped (runs with --long only)")
        return 0
    best = 0
    for n in args.cameras:
        worst, tolerance, recorded, cpu = record(n, args.seconds)
        ok = recorded == n and worst <= tolerance
        print(
            f"  N={n}: {recorded} cameras recorded, worst camera lost {worst:.1f} frames "
            f"(tolerance {tolerance}): {'OK' if ok else 'LOST FRAMES'}; cores: nvr "
            f"{cpu.nvr:.2f}, simulator {cpu.simulator:.2f}, machine {cpu.machine:.2f} of "
            f"{psutil.cpu_count()}",
            flush=True,
        )
        if not ok:
            break
        best = n
    print(f"scale: largest N recorded with no lost frames on this machine: {best}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
