"""CPU per recorded stream: `nvr run` against one `ffmpeg -c copy -f segment` per camera.

For each N (default 1 and 16; 64 with --long) the simulator serves N 1280x720 25 fps streams
(pattern snow at 2000 kbit/s: incompressible, so the bitrate is what was asked). First `nvr run`
records them (nobody watching), then the ffmpeg baseline does; each recorder's CPU time (user +
system, psutil, the simulator not counted) is measured over the same fixed window after warm-up.

    .venv/bin/python bench/bench_cpu.py [--long] [--seconds 15] [--warmup 5]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import (
    FfmpegRecorders,
    NvrService,
    cpu_seconds,
    free_port,
    stream_simulator,
    temp_dir,
    thread_cpu,
    verdict,
    write_config,
)

from nvr_gstreamer.testing.engine import wait_until

TARGET = 0.9


@dataclass(frozen=True, slots=True)
class Sample:
    cores: float  # CPU seconds / wall seconds
    mbit_per_s: float  # recorded bytes per second, all cameras
    threads: dict[tuple[str, int], float]  # cores per (thread name, id) (nvr only)


def window(
    pids: list[int], bytes_fn: Callable[[], int], seconds: float, nvr_pid: int | None
) -> Sample:
    threads0 = thread_cpu(nvr_pid) if nvr_pid else {}
    cpu0, bytes0, t0 = cpu_seconds(pids), bytes_fn(), time.monotonic()
    time.sleep(seconds)  # the fixed measurement window
    cpu1, bytes1, t1 = cpu_seconds(pids), bytes_fn(), time.monotonic()
    threads1 = thread_cpu(nvr_pid) if nvr_pid else {}
    wall = t1 - t0
    per_thread = {k: (v - threads0.get(k, 0.0)) / wall for k, v in threads1.items()}
    return Sample((cpu1 - cpu0) / wall, (bytes1 - bytes0) * 8 / wall / 1e6, per_thread)


def folder_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*.mkv"))


def measure_nvr(urls: dict[str, str], args: argparse.Namespace) -> Sample:
    with temp_dir("cpu-nvr") as folder:
        port = free_port()
        config = write_config(folder, urls, api_port=port, storage={"segment_seconds": 60})
        nvr = NvrService(config, port, folder / "nvr.log")
        try:
            nvr.wait_streaming(len(urls), timeout_s=90)
            time.sleep(args.warmup)  # settle start-up costs before the window
            return window(
                [nvr.process.pid],
                lambda: folder_bytes(folder / "rec"),
                args.seconds,
                nvr.process.pid,
            )
        finally:
            nvr.close()


def measure_ffmpeg(urls: dict[str, str], args: argparse.Namespace) -> Sample:
    with temp_dir("cpu-ffmpeg") as folder:
        rec = FfmpegRecorders(urls, folder / "rec")
        try:
            # 64 ffmpegs probing their streams at once take a while on 2 cores.
            wait_until(rec.all_writing, max(60, 2 * len(urls)), "every ffmpeg writing")
            time.sleep(args.warmup)
            return window([p.pid for p in rec.processes], rec.bytes_written, args.seconds, None)
        finally:
            rec.close()


def run(cameras: int, args: argparse.Namespace) -> tuple[Sample, Sample]:
    with stream_simulator(cameras, args.bitrate, args.pattern) as sim:
        urls = {name: sim.url(name) for name in sim.camera_names}
        nvr = measure_nvr(urls, args)
        ffmpeg = measure_ffmpeg(urls, args)
    return nvr, ffmpeg


def print_threads(sample: Sample, cameras: int) -> None:
    groups: dict[str, tuple[float, int]] = {}
    for (name, _tid), cores in sample.threads.items():
        key = name.rstrip("0123456789") + ("*" if name[-1:].isdigit() else "")
        total, count = groups.get(key, (0.0, 0))
        groups[key] = (total + cores, count + 1)
    top = sorted(groups.items(), key=lambda kv: -kv[1][0])[:6]
    print(f"  nvr threads at N={cameras} (cores; share of nvr; digits in names as *):")
    for name, (cores, count) in top:
        share = cores / sample.cores if sample.cores else 0.0
        print(f"    {name:<20} {cores:.3f} {share:>5.0%}  ({count} thread(s))")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="also N=64")
    parser.add_argument("--cameras", type=int, nargs="+", default=None)
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--bitrate", type=int, default=2000, help="kbit/s per camera")
    parser.add_argument("--pattern", default="snow")
    args = parser.parse_args(argv)
    counts = args.cameras or ([1, 16, 64] if args.long else [1, 16])
    print(
        f"CPU per recorded stream: 1280x720 25 fps {args.pattern} {args.bitrate} kbit/s, "
        f"{args.seconds:g} s window after {args.warmup:g} s warm-up, {os.cpu_count()} CPU(s)"
    )
    print(
        f"{'N':>4} {'nvr cores':>10} {'ffmpeg cores':>13} {'nvr/ffmpeg':>11} "
        f"{'nvr/stream':>11} {'ff/stream':>10} {'Mbit/s nvr':>11} {'Mbit/s ff':>10}"
    )
    ok = True
    for n in counts:
        nvr, ffmpeg = run(n, args)
        ratio = nvr.cores / ffmpeg.cores if ffmpeg.cores else float("inf")
        print(
            f"{n:>4} {nvr.cores:>10.3f} {ffmpeg.cores:>13.3f} {ratio:>11.2f} "
            f"{nvr.cores / n:>11.4f} {ffmpeg.cores / n:>10.4f} {nvr.mbit_per_s:>11.1f} "
            f"{ffmpeg.mbit_per_s:>10.1f}",
            flush=True,
        )
        print_threads(nvr, n)
        if n >= 16:
            met = ratio <= TARGET
            ok &= met
            print(f"  target nvr <= {TARGET} x ffmpeg at N={n}: {verdict(met)} ({ratio:.2f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
