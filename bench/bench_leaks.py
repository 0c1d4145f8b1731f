"""Memory, file descriptors and threads over many reconnect cycles (in-process NvrApp).

One recorded camera (GOP 0.5 s, `probe_interval_seconds: 0.1`). A cycle is `sim.stop(cam1)`
(connections closed, 503 after) -> `reconnecting` -> `sim.resume(cam1)` -> `streaming`, each step
awaited on EngineWatch. After --warmup cycles the process's fds (psutil num_fds), threads
(threading.active_count and OS threads) and RSS are the baseline; the figures are the changes
from it at the end (and along the way). Target: fds flat, RSS growth < 10 MB.
With --long: 500 cycles, then a 30-minute run of 16 recorded cameras (baseline after 2 minutes).

    .venv/bin/python bench/bench_leaks.py [--long] [--cycles 100]
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil
from _common import temp_dir, verdict

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import EngineWatch, engine_config

RSS_TARGET_MB = 10.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    label: str
    kinds: dict[str, int]
    fds: int
    py_threads: int
    os_threads: int
    rss_mb: float


def snapshot(label: str) -> Snapshot:
    gc.collect()
    me = psutil.Process()
    return Snapshot(
        label,
        fd_kinds(),
        me.num_fds(),
        threading.active_count(),
        me.num_threads(),
        me.memory_info().rss / 1e6,
    )


def fd_kinds() -> dict[str, int]:
    """Open fds of this process by kind; sockets by protocol (tcp, udp, unix, netlink...)."""
    protocols: dict[str, str] = {}
    for proto in ("tcp", "tcp6", "udp", "udp6", "unix", "netlink"):
        try:
            lines = Path(f"/proc/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        column = 6 if proto == "unix" else 9
        if proto == "netlink":
            column = 8
        for line in lines:
            fields = line.split()
            if len(fields) > column:
                protocols[fields[column]] = proto.rstrip("6")
    kinds: Counter[str] = Counter()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            kinds["socket/" + protocols.get(target[8:-1], "other")] += 1
        else:
            kinds[target.split(":")[0] if ":" in target else "file"] += 1
    return dict(kinds)


def cycle(sim: SimulatorProcess, watch: EngineWatch) -> float:
    start = time.monotonic()
    sim.stop("cam1")
    down = watch.wait_for("cam1", CameraState.RECONNECTING, 15, after=start)
    sim.resume("cam1")
    watch.wait_for("cam1", CameraState.STREAMING, 30, after=down)
    return time.monotonic() - start


def reconnect_cycles(cycles: int, warmup: int) -> bool:
    snaps: list[Snapshot] = []
    durations: list[float] = []
    with temp_dir("leaks") as folder, SimulatorProcess(1, gop_seconds=0.5) as sim:
        config = engine_config(
            {"cam1": sim.url("cam1")}, storage=folder, probe_interval_seconds=0.1
        )
        app = NvrApp(config)
        watch = EngineWatch(app.engine)
        app.start()
        try:
            watch.wait_for("cam1", CameraState.STREAMING, 30)
            for _ in range(warmup):
                cycle(sim, watch)
            snaps.append(snapshot(f"after {warmup} warm-up cycles"))
            step = max(1, cycles // 4)
            for index in range(1, cycles + 1):
                durations.append(cycle(sim, watch))
                if index % step == 0 or index == cycles:
                    snaps.append(snapshot(f"after {index} cycles"))
        finally:
            watch.close()
            app.stop()
    mean = sum(durations) / len(durations)
    print(f"reconnect cycles: {cycles} (+{warmup} warm-up), mean cycle {mean:.2f} s")
    return report(snaps)


def soak(minutes: float, cameras: int) -> bool:
    snaps: list[Snapshot] = []
    with temp_dir("soak") as folder, SimulatorProcess(cameras, gop_seconds=1.0) as sim:
        urls = {name: sim.url(name) for name in sim.camera_names}
        app = NvrApp(engine_config(urls, storage=folder))
        watch = EngineWatch(app.engine)
        app.start()
        try:
            for name in urls:
                watch.wait_for(name, CameraState.STREAMING, 60)
            time.sleep(120)  # warm-up: the first segments close, caches fill
            snaps.append(snapshot("after 2 min"))
            step = minutes * 60 / 5
            for index in range(1, 6):
                time.sleep(step)  # fixed observation window
                snaps.append(snapshot(f"after {2 + index * step / 60:.0f} min"))
        finally:
            watch.close()
            app.stop()
    print(f"soak: {cameras} cameras recorded for {minutes:g} min")
    return report(snaps)


def report(snaps: list[Snapshot]) -> bool:
    base = snaps[0]
    print(f"  {'when':<28} {'fds':>5} {'py thr':>7} {'os thr':>7} {'rss MB':>8} {'dRSS MB':>8}")
    for s in snaps:
        print(
            f"  {s.label:<28} {s.fds:>5} {s.py_threads:>7} {s.os_threads:>7} {s.rss_mb:>8.1f} "
            f"{s.rss_mb - base.rss_mb:>+8.1f}"
        )
    end = snaps[-1]
    fds_ok = end.fds <= base.fds
    rss_ok = end.rss_mb - base.rss_mb < RSS_TARGET_MB
    print(
        f"  fds {base.fds} -> {end.fds} ({end.fds - base.fds:+d}), threads "
        f"{base.os_threads} -> {end.os_threads} ({end.os_threads - base.os_threads:+d}), RSS "
        f"{end.rss_mb - base.rss_mb:+.1f} MB; target fds flat: {verdict(fds_ok)}, RSS growth "
        f"< {RSS_TARGET_MB:g} MB: {verdict(rss_ok)}"
    )
    grown = {k: v - base.kinds.get(k, 0) for k, v in end.kinds.items()}
    grown = {k: v for k, v in grown.items() if v}
    print(f"  fds gained by kind: {grown or 'none'}")
    return fds_ok and rss_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="500 cycles and a 30-min soak")
    parser.add_argument("--cycles", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    cycles = args.cycles or (500 if args.long else 100)
    ok = reconnect_cycles(cycles, args.warmup)
    if args.long:
        ok &= soak(30, 16)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
