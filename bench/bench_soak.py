"""Memory and file descriptors of `nvr run` over a long run with a real fault every few seconds.

Set-up: --cameras simulated cameras, each served by its own simulator process (so that a SIGKILL
or SIGSTOP hits one camera), recorded by `nvr run` (a real process, `segment_seconds` 20) into a
tmpfs of --tmpfs-mb MB that is bind-mounted where the config puts the storage (so that the
"drive" can be unmounted and mounted again; the storage root carries its identity marker).

Phase 1, one process: a fault every --fault-every seconds, the kinds in rotation, each held
until nvr reports it, then undone and awaited until every camera streams and records again:

  camera-killed      SIGKILL of one camera's simulator, restarted 3 s later on the same port
                     (every other time: the simulator's "stop" control, 503s for 3 s)
  camera-frozen      SIGSTOP of one camera's simulator until nvr reports the stall, then SIGCONT
                     (every other time: the simulator's "freeze" control)
  disk-full          a filler file takes all free space of the tmpfs (topped up while retention
                     frees space) until nvr reports storage "full"; removed 3 s later
  drive-unmounted    `umount -l` of the storage mount until nvr reports storage "unavailable";
                     mounted again 3 s later
  recording-off-on   POST /api/cameras/{id}/recording/stop for every camera; start 2 s later

Phase 2, --kills times: recorder-killed, SIGKILL of `nvr run` and a restart on the same config
(start-up recovery repairs the segments it left open), every --fault-every seconds.

Why the recorder kill has its own phase: a restart resets the process's memory, so with the kill
in the rotation the longest-lived process would see only one rotation of faults (~5 minutes at
50 s) — too short to tell growth from warm-up. Phase 1 gives one process every other fault for
the whole run; phase 2 checks that each restart records again and starts from the same RSS.

Measured: RSS, fds and threads of the `nvr run` process, sampled just before each fault (every
camera streaming and recording, nothing being undone). Warm-up: the first rotation (each kind
once) and at least --warmup minutes. Growth = the last sample minus the one after warm-up; per
fault kind, the change from just before a fault to just before the next one, summed over that
kind's faults after warm-up. Target: RSS growth after warm-up < 5 MB, fds flat. Needs root
(mounts). With --long: 60 minutes (the default anyway), for bench/run_all --long.

    .venv/bin/python bench/bench_soak.py [--minutes 60] [--fault-every 50] [--cameras 3]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import re
import statistics
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from _common import NvrService, free_port, temp_dir, verdict, write_config

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import wait_until

RSS_TARGET_MB = 5.0
KINDS = ("camera-killed", "camera-frozen", "disk-full", "drive-unmounted", "recording-off-on")
RECOVERY_TIMEOUT_S = 90.0
HOLD_S = 3.0


@dataclass(frozen=True, slots=True)
class Mark:
    """The recorder process, sampled in a quiet moment (everything recording)."""

    at: float  # seconds since the first start
    faults: int  # faults injected before this sample
    pid: int
    rss_mb: float
    fds: int
    threads: int


@dataclass(frozen=True, slots=True)
class Injected:
    kind: str
    how: str
    before: Mark
    noticed_s: float  # until nvr reported the fault
    recovered_s: float | None  # from undoing it to every camera recording again; None: never


@contextlib.contextmanager
def mounted(cmd: list[str], target: Path) -> Iterator[None]:
    subprocess.run(cmd, check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, stderr=subprocess.DEVNULL)


def fill(path: Path) -> None:
    """Append to ``path`` until its filesystem has no space left."""
    chunk = b"\0" * (1 << 20)
    with contextlib.suppress(OSError), open(path, "ab") as f:
        while True:
            f.write(chunk)
            f.flush()


class Rig:
    """The simulators, the storage mounts and the recorder under test."""

    def __init__(
        self, folder: Path, sims: list[SimulatorProcess], vol: Path, mnt: Path, port: int
    ) -> None:
        self.folder = folder
        self.sims = sims
        self.cameras = [f"cam{i + 1}" for i in range(len(sims))]
        self.vol, self.mnt = vol, mnt
        self.port = port
        self.config = write_config(
            folder,
            {cam: sim.url("cam1") for cam, sim in zip(self.cameras, sims, strict=True)},
            api_port=port,
            storage={"path": str(mnt / "rec"), "segment_seconds": 20},
            reconnect={"initial_delay_seconds": 1, "max_delay_seconds": 5},
        )
        self.starts = 0
        self.nvr = self.start_nvr()
        self.t0 = time.monotonic()
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20.0)

    def start_nvr(self) -> NvrService:
        self.starts += 1
        return NvrService(self.config, self.port, self.folder / f"nvr{self.starts}.log")

    def close(self) -> None:
        self._http.close()
        self.nvr.close()

    # ---- observing nvr --------------------------------------------------------------------

    def cameras_api(self) -> list[dict[str, object]]:
        if self.nvr.process.poll() is not None:
            raise RuntimeError(f"nvr run exited with {self.nvr.process.returncode}")
        try:
            data: list[dict[str, object]] = self._http.get("/api/cameras").json()
            return data
        except (httpx.HTTPError, ValueError):
            return []

    def all_recording(self) -> bool:
        cams = self.cameras_api()
        return len(cams) == len(self.cameras) and all(
            c["state"] == "streaming" and c["recording"] and c["storage_state"] == "ok"
            for c in cams
        )

    def camera_state(self, cam: str) -> str:
        return next((str(c["state"]) for c in self.cameras_api() if c["id"] == cam), "?")

    def storage_state(self) -> str:
        storage = self.nvr.health().get("storage")
        return str(storage.get("state")) if isinstance(storage, dict) else "?"

    def mark(self, faults: int) -> Mark:
        proc = psutil.Process(self.nvr.process.pid)
        return Mark(
            time.monotonic() - self.t0,
            faults,
            proc.pid,
            proc.memory_info().rss / 1e6,
            proc.num_fds(),
            proc.num_threads(),
        )

    def wait_recording(self, timeout_s: float = RECOVERY_TIMEOUT_S) -> float | None:
        try:
            return wait_until(self.all_recording, timeout_s, "every camera recording")
        except AssertionError:
            return None

    # ---- faults: each returns (how, seconds until nvr noticed); undone before returning -----

    def camera_killed(self, n: int) -> tuple[str, float]:
        cam, sim = self.cameras[n % len(self.sims)], self.sims[n % len(self.sims)]
        start = time.monotonic()
        if n // len(self.sims) % 2 == 0:
            how = f"SIGKILL simulator of {cam}"
            sim.kill()
        else:
            how = f"stop control of {cam}"
            sim.stop("cam1")
        noticed = self._until(lambda: self.camera_state(cam) != "streaming", 30, start)
        time.sleep(HOLD_S)
        if sim.returncode is not None:
            sim.restart()
        else:
            sim.resume("cam1")
        return how, noticed

    def camera_frozen(self, n: int) -> tuple[str, float]:
        cam, sim = self.cameras[n % len(self.sims)], self.sims[n % len(self.sims)]
        start = time.monotonic()
        if n // len(self.sims) % 2 == 0:
            how = f"SIGSTOP simulator of {cam}"
            sim.sigstop()
            undo: Callable[[], object] = sim.sigcont
        else:
            how = f"freeze control of {cam}"
            sim.freeze("cam1")
            undo = lambda: sim.resume("cam1")  # noqa: E731
        try:
            noticed = self._until(lambda: self.camera_state(cam) != "streaming", 40, start)
        finally:
            undo()
        return how, noticed

    def disk_full(self, _n: int) -> tuple[str, float]:
        filler = self.vol / "filler"
        start = time.monotonic()
        try:

            def full() -> bool:
                fill(filler)  # retention may have freed some: take it too
                return self.storage_state() == "full"

            noticed = self._until(full, 60, start, poll_s=0.5)
            time.sleep(HOLD_S)
        finally:
            filler.unlink(missing_ok=True)
        return "filler file", noticed

    def drive_unmounted(self, _n: int) -> tuple[str, float]:
        start = time.monotonic()
        subprocess.run(["umount", "-l", str(self.mnt)], check=True)
        try:
            noticed = self._until(lambda: self.storage_state() == "unavailable", 30, start)
            time.sleep(HOLD_S)
        finally:
            subprocess.run(["mount", "--bind", str(self.vol), str(self.mnt)], check=True)
        return "umount -l", noticed

    def recording_off_on(self, _n: int) -> tuple[str, float]:
        start = time.monotonic()
        for cam in self.cameras:
            self._http.post(f"/api/cameras/{cam}/recording/stop").raise_for_status()
        noticed = time.monotonic() - start
        time.sleep(2.0)
        for cam in self.cameras:
            self._http.post(f"/api/cameras/{cam}/recording/start").raise_for_status()
        return "API stop/start", noticed

    def _until(
        self, done: Callable[[], bool], timeout_s: float, start: float, poll_s: float = 0.05
    ) -> float:
        while not done():
            if time.monotonic() - start > timeout_s:
                return float("nan")  # not noticed: reported, the run goes on
            time.sleep(poll_s)
        return time.monotonic() - start


def soak(args: argparse.Namespace) -> bool:
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for kind in kinds:
        if kind not in KINDS:
            raise SystemExit(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(temp_dir("soak"))
        vol, mnt = folder / "vol", folder / "mnt"
        vol.mkdir()
        mnt.mkdir()
        size = f"size={args.tmpfs_mb}m"
        stack.enter_context(mounted(["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(vol)], vol))
        stack.enter_context(mounted(["mount", "--bind", str(vol), str(mnt)], mnt))
        sims = [
            stack.enter_context(SimulatorProcess(1, gop_seconds=1.0)) for _ in range(args.cameras)
        ]
        rig = Rig(folder, sims, vol, mnt, free_port())
        stack.callback(rig.close)
        if rig.wait_recording(60) is None:
            raise RuntimeError("the cameras never started recording")
        first = rig.mark(0)
        faults = run_faults(rig, kinds, args)
        kills = run_kills(rig, args)
        logs = sorted(folder.glob("nvr*.log"))
        tracebacks = sum(log.read_text(errors="replace").count("Traceback") for log in logs)
    return report(first, faults, kills, kinds, args, tracebacks)


def run_faults(rig: Rig, kinds: list[str], args: argparse.Namespace) -> list[Injected]:
    actions: dict[str, Callable[[int], tuple[str, float]]] = {
        "camera-killed": rig.camera_killed,
        "camera-frozen": rig.camera_frozen,
        "disk-full": rig.disk_full,
        "drive-unmounted": rig.drive_unmounted,
        "recording-off-on": rig.recording_off_on,
    }
    end = rig.t0 + args.minutes * 60
    done: list[Injected] = []
    seen: Counter[str] = Counter()
    next_at = time.monotonic() + args.fault_every
    for kind in itertools.cycle(kinds):
        if next_at > end:
            break
        time.sleep(max(0.0, next_at - time.monotonic()))
        before = rig.mark(len(done))
        how, noticed = actions[kind](seen[kind])
        seen[kind] += 1
        undone = time.monotonic()
        recovered = rig.wait_recording()
        if recovered is not None:
            recovered = time.monotonic() - undone
        done.append(Injected(kind, how, before, noticed, recovered))
        status = "not recovered" if recovered is None else f"recording after {recovered:.1f} s"
        print(
            f"  [{before.at / 60:5.1f} min] {kind:<17} ({how}): noticed in {noticed:.1f} s, "
            f"{status}; RSS before it {before.rss_mb:.1f} MB, fds {before.fds}",
            flush=True,
        )
        next_at = max(next_at + args.fault_every, time.monotonic() + 2.0)
    time.sleep(max(0.0, min(next_at, end) - time.monotonic()))
    done.append(Injected("end", "", rig.mark(len(done)), 0.0, 0.0))
    return done


@dataclass(frozen=True, slots=True)
class Restart:
    killed: Mark
    recovered_s: float | None  # from the SIGKILL to every camera recording again
    repaired: int  # segments start-up recovery repaired
    after: Mark | None  # the new process once every camera records


def run_kills(rig: Rig, args: argparse.Namespace) -> list[Restart]:
    restarts: list[Restart] = []
    for _ in range(args.kills):
        killed = rig.mark(0)
        start = time.monotonic()
        rig.nvr.kill9()
        rig.nvr.close()
        rig.nvr = rig.start_nvr()
        ok = rig.wait_recording()
        took = None if ok is None else time.monotonic() - start
        log = rig.folder / f"nvr{rig.starts}.log"
        found = re.search(r"start-up recovery: (\d+) repaired", log.read_text(errors="replace"))
        after = rig.mark(0) if ok is not None else None
        restarts.append(Restart(killed, took, int(found.group(1)) if found else 0, after))
        shown = "not recording" if took is None else f"recording again after {took:.1f} s"
        print(f"  recorder-killed (SIGKILL of nvr run): {shown}", flush=True)
        time.sleep(max(0.0, start + args.fault_every - time.monotonic()))
    return restarts


def report(
    first: Mark,
    faults: list[Injected],
    kills: list[Restart],
    kinds: list[str],
    args: argparse.Namespace,
    tracebacks: int,
) -> bool:
    marks = [f.before for f in faults]  # marks[i]: just before fault i; the last: the end
    warm = len(kinds)
    while warm < len(faults) - 1 and marks[warm].at < args.warmup * 60:
        warm += 1
    warm = min(warm, len(marks) - 1)
    base, end = marks[warm], marks[-1]
    injected = faults[:-1]
    arenas = os.environ.get("MALLOC_ARENA_MAX")
    print(
        f"soak: {args.cameras} cameras, {end.at / 60:.1f} min, a fault every "
        f"{args.fault_every:g} s in rotation ({', '.join(kinds)}); warm-up: the first "
        f"{warm} faults ({base.at / 60:.1f} min)"
        + (f"; MALLOC_ARENA_MAX={arenas} from the environment" if arenas else "")
    )
    print(f"  {'when':<24} {'faults':>6} {'fds':>5} {'threads':>7} {'rss MB':>8} {'dRSS MB':>8}")
    rows = [("first all recording", first)]
    rows.append(("after warm-up", base))
    step = max(1, (len(marks) - 1 - warm) // 5)
    rows += [(f"after {m.at / 60:.0f} min", m) for m in marks[warm + step : -1 : step]]
    rows.append(("end", end))
    for label, m in rows:
        print(
            f"  {label:<24} {m.faults:>6} {m.fds:>5} {m.threads:>7} {m.rss_mb:>8.1f} "
            f"{m.rss_mb - base.rss_mb:>+8.1f}"
        )
    by_kind = Counter(f.kind for f in injected)
    lost = [f for f in injected if f.recovered_s is None or math.isnan(f.noticed_s)]
    print(
        "  faults injected: "
        + ", ".join(f"{k} {by_kind[k]}" for k in kinds)
        + f" (total {len(injected)}; not noticed or not recovered: {len(lost)})"
    )
    delta: dict[str, list[float]] = defaultdict(list)
    for i in range(warm, len(injected)):
        delta[injected[i].kind].append(marks[i + 1].rss_mb - marks[i].rss_mb)
    print("  RSS change per fault after warm-up (from just before it to just before the next):")
    for kind in kinds:
        d = delta.get(kind, [])
        if d:
            print(
                f"    {kind:<17} {len(d):>3} faults  {sum(d):+6.2f} MB in all, "
                f"{1000 * sum(d) / len(d):+6.0f} kB per fault (median "
                f"{1000 * statistics.median(d):+.0f} kB)"
            )
    for kind in kinds:
        times = [f.recovered_s for f in injected if f.kind == kind and f.recovered_s is not None]
        noticed = [f.noticed_s for f in injected if f.kind == kind]
        if times:
            print(
                f"    {kind:<17} noticed in {statistics.median(noticed):.1f} s, recording "
                f"again {statistics.median(times):.1f} s after undoing it (medians)"
            )
    ok = True
    if kills:
        took = " ".join("-" if k.recovered_s is None else f"{k.recovered_s:.1f}" for k in kills)
        rss = " ".join("-" if k.after is None else f"{k.after.rss_mb:.1f}" for k in kills)
        print(
            f"  recorder-killed x{len(kills)} (SIGKILL of nvr run, restart): recording again "
            f"after {took} s; segments repaired at start-up "
            f"{' '.join(str(k.repaired) for k in kills)}; RSS once recording {rss} MB "
            f"(first start: {first.rss_mb:.1f})"
        )
        ok = all(k.recovered_s is not None and k.repaired > 0 for k in kills)
    growth = end.rss_mb - base.rss_mb
    n_after = max(1, len(injected) - warm)
    rss_ok = growth < RSS_TARGET_MB
    fds_ok = end.fds <= base.fds
    print(
        f"  RSS {base.rss_mb:.1f} -> {end.rss_mb:.1f} MB ({growth:+.1f} MB after warm-up over "
        f"{len(injected) - warm} faults, {1000 * growth / n_after:+.0f} kB per fault), fds "
        f"{base.fds} -> {end.fds} ({end.fds - base.fds:+d}), threads {base.threads} -> "
        f"{end.threads}; tracebacks in the logs: {tracebacks}"
    )
    print(
        f"  target RSS growth after warm-up < {RSS_TARGET_MB:g} MB: {verdict(rss_ok)}, fds flat: "
        f"{verdict(fds_ok)}, every fault recovered: {verdict(not lost and ok)}"
    )
    return rss_ok and fds_ok and not lost and ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of phase 1")
    parser.add_argument("--fault-every", type=float, default=50.0, help="seconds between faults")
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0, help="minutes, at least")
    parser.add_argument("--kills", type=int, default=3, help="recorder kills in phase 2")
    parser.add_argument("--kinds", default=",".join(KINDS), help="the rotation (comma-separated)")
    parser.add_argument("--tmpfs-mb", type=int, default=128)
    parser.add_argument("--long", action="store_true", help="(the default length: 60 minutes)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("soak: skipped (mounts a tmpfs: needs root)")
        return 0
    return 0 if soak(args) else 1


if __name__ == "__main__":
    raise SystemExit(main())
