"""The TCP receive path: nvrrtspsrc vs rtspsrc with nvrrtpstamp vs rtpbin's jitterbuffer vs ffmpeg.

For each N (default 16; 16 and 64 with --long) the simulator serves N 1280x720 25 fps streams
(pattern snow at 2000 kbit/s, GOP 1 s, as bench_cpu). Per repeat, three recorders in turn (the
order rotated from repeat to repeat, so drift on the shared machine hits all of them alike):

  native        `nvr run`, every camera `transport: tcp`, `rtp_jitterbuffer: auto` (the default:
                nvrrtspsrc reads the interleaved stream in large chunks and depayloads on one
                thread, without rtspsrc and rtpbin)
  stamp         `nvr run`, every camera `transport: tcp`, `rtp_jitterbuffer: stamp` (rtspsrc,
                rtpbin's jitterbuffer replaced by nvrrtpstamp)
  jitterbuffer  `nvr run`, every camera `transport: tcp`, `rtp_jitterbuffer: always` (the old path)
  ffmpeg        one `ffmpeg -rtsp_transport tcp -c copy -f segment` per camera (the baseline)

Each waits until every camera streams and records (nvr: `/api/cameras` says streaming, recording,
storage ok, transport tcp; ffmpeg: every file has bytes), then a warm-up, then a fixed window:
CPU cores of the recorder processes only (user + system, psutil; the simulator is shown, not
counted) and their context switches per second (voluntary + involuntary, summed over every
thread from /proc/PID/task/*/status: psutil's `num_ctx_switches()` counts the main thread only).
Ratios are against ffmpeg of the same repeat. The path is checked, not assumed: the native and
stamp runs must have no `rtpjitterbuffer` thread, the jitterbuffer run one per camera, and the API
must report each camera's receive path as the one asked for.

Timestamps. After each run (SIGTERM: open segments are finalised) the longest closed segment of the
first camera is read with ffprobe: the standard deviation of the frame-to-frame PTS deltas of its
video packets (file order; the simulator's x264 sends no B-frames, so that is presentation order),
and how many deltas are 0 (duplicate) or negative (backwards). That figure was mostly the sender's
own jitter while the simulator stamped each frame when its shared encoder output it (appsrc
do-timestamp; now it restores the capture cadence, CaptureClock), which on a loaded machine varied
by several ms from minute to minute, more than the 1 ms being judged. Hence a reference: during
every run one more `ffmpeg -c copy` (not counted) records the first camera into one file, keeping
the sender's RTP timestamps. The recorder's frames are matched to the reference's by packet size
(snow makes sizes nearly unique; the most common offset wins), and on the same frames: `sd-ref` =
the file's delta sd minus the reference's (what the path does to regularity: 0 if it keeps the
sender's timing, negative if it smooths) and `resid` = sd of the per-frame difference of deltas
(how far it moves frames from the sender's timing). ffmpeg's first two packets are left out of the
matching (it stamps them 0 and 1 ms apart).

Any WARNING, ERROR, CRITICAL or traceback in the nvr log, a wrong path, a non-zero exit or an
unreadable file is a PROBLEM: the benchmark fails. A run whose recorded bytes in the window are
not 0.9-1.15 x N x the bitrate was not steady (the sender fell behind, so the recorder had less
to do, or a recorder was catching up a backlog): its whole repeat is left out of the medians
and said so. Warm-up: 5 s, 10 s above 16 cameras.

Targets (exit status 1 if one is missed or a PROBLEM was seen): native <= 0.9 x ffmpeg (median
ratio); the native path's sd-ref <= the jitterbuffer path's + 1 ms (medians; the difference of
the files' own SDs is printed beside it); no duplicate or backwards PTS in the native path's
files. The stamp path is measured beside them, not judged.

    .venv/bin/python bench/bench_receive.py [--long] [--cameras N ...] [--repeats 3]
                                            [--seconds 15] [--warmup S]
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from _common import (
    FfmpegRecorders,
    NvrService,
    cpu_seconds,
    free_port,
    median,
    segments,
    stream_simulator,
    temp_dir,
    thread_cpu,
    thread_ctx_switches,
    verdict,
    write_config,
)

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import wait_until

TARGET = 0.9  # native path CPU <= 0.9 x ffmpeg
MAX_STDEV_EXCESS_MS = 1.0  # native path PTS-delta sd <= the jitterbuffer path's + 1 ms
JITTERBUFFER_THREAD = "rtpjitterbuffer"  # its streaming thread's name (comm)
# Recorded bytes outside this share of N x the bitrate: the sender fell behind (fewer frames,
# less work for the recorder) or a recorder was catching up a backlog. Such a repeat is left out.
THROUGHPUT_RANGE = (0.9, 1.15)
REFERENCE_SKIP = 2  # ffmpeg's first packets are not stamped from the sender's clock
# Lines of the nvr log that fail a run: Python's levels, GLib's "X-WARNING **", tracebacks.
BAD_LOG_LINE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|-WARNING \*\*|-CRITICAL \*\*")


class Recorder(Enum):
    NATIVE = "native"
    STAMP = "stamp"
    JITTERBUFFER = "jitterbuffer"
    FFMPEG = "ffmpeg"


# The `rtp_jitterbuffer` setting of each nvr recorder.
JITTERBUFFER_SETTING = {
    Recorder.NATIVE: "auto",
    Recorder.STAMP: "stamp",
    Recorder.JITTERBUFFER: "always",
}
NVR_RECORDERS = tuple(JITTERBUFFER_SETTING)


@dataclass(frozen=True, slots=True)
class Packet:
    pts_ms: float
    size: int
    key: bool


@dataclass(frozen=True, slots=True)
class Timing:
    """Frame-to-frame PTS deltas of the video of one recorded file, and against the sender's."""

    frames: int
    mean_ms: float
    stdev_ms: float  # the whole file
    duplicates: int  # delta == 0
    backwards: int  # delta < 0
    matched: int  # frames found in the reference
    vs_reference_ms: float  # on the matched frames: this file's delta sd - the reference's
    residual_ms: float  # sd of (delta - the reference's delta) on the matched frames


@dataclass(frozen=True, slots=True)
class Run:
    recorder: Recorder
    cores: float  # recorder CPU seconds / wall seconds
    ctx_per_s: float  # recorder context switches per second, every thread
    simulator: float  # the simulator's cores over the same window (not counted)
    mbit_per_s: float  # recorded bytes, all cameras
    jitterbuffer_threads: int | None  # rtpjitterbuffer threads of nvr run (None: ffmpeg)
    timing: Timing | None
    problems: tuple[str, ...]  # the recorder misbehaved (log errors, wrong path, bad file)
    threads: dict[str, float]  # nvr run: cores per thread name (digits at the end as *)
    load: float  # 1-min load average at the end of the window
    behind: str | None  # the stream was not steady in the window: the repeat is left out


def folder_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*.mkv"))


def ctx_total(pids: Sequence[int]) -> dict[tuple[int, int], int]:
    return {(pid, tid): n for pid in pids for tid, n in thread_ctx_switches(pid).items()}


@dataclass(frozen=True, slots=True)
class Window:
    cores: float
    ctx_per_s: float
    simulator: float
    mbit_per_s: float
    threads: dict[str, float]  # cores per thread name, digits at the end as * (first pid only)
    load: float


def window(pids: list[int], sim_pid: int, bytes_fn: Callable[[], int], seconds: float) -> Window:
    threads0 = thread_cpu(pids[0])
    ctx0, cpu0, sim0 = ctx_total(pids), cpu_seconds(pids), cpu_seconds([sim_pid])
    bytes0, t0 = bytes_fn(), time.monotonic()
    time.sleep(seconds)  # the fixed measurement window
    ctx1, cpu1, sim1 = ctx_total(pids), cpu_seconds(pids), cpu_seconds([sim_pid])
    bytes1, t1 = bytes_fn(), time.monotonic()
    threads1 = thread_cpu(pids[0])
    wall = t1 - t0
    # A thread that ended in the window loses its count; one that began counts from zero.
    switches = sum(n - ctx0.get(key, 0) for key, n in ctx1.items())
    groups: dict[str, float] = {}
    for (name, tid), used in threads1.items():
        key = name.rstrip("0123456789") + ("*" if name[-1:].isdigit() else "")
        groups[key] = groups.get(key, 0.0) + (used - threads0.get((name, tid), 0.0)) / wall
    return Window(
        (cpu1 - cpu0) / wall,
        switches / wall,
        (sim1 - sim0) / wall,
        (bytes1 - bytes0) * 8 / wall / 1e6,
        groups,
        os.getloadavg()[0],
    )


class Reference:
    """`ffmpeg -c copy` of one camera into one file for a whole run (not counted): the sender's
    RTP timestamps of the frames the recorder under test records too."""

    def __init__(self, url: str, path: Path) -> None:
        self.path = path
        self.log = path.with_suffix(".log")
        cmd = [
            "ffmpeg", "-nostdin", "-loglevel", "warning", "-rtsp_transport", "tcp",
            "-i", url, "-c", "copy", "-f", "matroska", str(path),
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=log)

    def writing(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the reference ffmpeg exited with {self.process.returncode}")
        return self.path.exists() and self.path.stat().st_size > 0

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # finalises the file
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def video_packets(path: Path, timeout_s: float = 120.0) -> list[Packet]:
    """Every video packet with a PTS, in file order (ffprobe)."""
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "v:0",
            "-show_entries", "stream=time_base:packet=pts,size,flags",
            "-of", "compact=p=0:nk=1", str(path),
        ],
        capture_output=True, text=True, timeout=timeout_s, check=True,
    )  # fmt: skip
    rows = [line.strip().split("|") for line in out.stdout.splitlines() if line.strip()]
    bases = [row[0] for row in rows if len(row) == 1 and "/" in row[0]]
    if not bases:
        raise ValueError(f"{path.name}: no video stream")
    num, den = (int(x) for x in bases[0].split("/"))
    return [
        Packet(int(row[0]) * 1000 * num / den, int(row[1]), "K" in row[2])
        for row in rows
        if len(row) == 3 and row[0].lstrip("-").isdigit()
    ]


def deltas(pts: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(pts)]


def timing(path: Path, reference: Path) -> Timing:
    own = video_packets(path)
    if len(own) < 3:
        raise ValueError(f"{path.name}: {len(own)} video packets with a PTS")
    whole = deltas([p.pts_ms for p in own])
    ref = video_packets(reference)[REFERENCE_SKIP:]
    where: dict[int, list[int]] = {}
    for j, p in enumerate(ref):
        where.setdefault(p.size, []).append(j)
    # Key frames differ by a few bytes (parameter sets); the others are byte for byte the same.
    votes = Counter(j - i for i, p in enumerate(own) if not p.key for j in where.get(p.size, []))
    if not votes:
        raise ValueError(f"{path.name}: no frame found in the reference")
    offset = votes.most_common(1)[0][0]
    pairs = [
        (p.pts_ms, ref[i + offset].pts_ms) for i, p in enumerate(own) if 0 <= i + offset < len(ref)
    ]
    if len(pairs) < 3:
        raise ValueError(f"{path.name}: {len(pairs)} frames found in the reference")
    mine = deltas([a for a, _ in pairs])
    theirs = deltas([b for _, b in pairs])
    return Timing(
        len(own),
        statistics.fmean(whole),
        statistics.pstdev(whole),
        sum(1 for d in whole if d == 0),
        sum(1 for d in whole if d < 0),
        len(pairs),
        statistics.pstdev(mine) - statistics.pstdev(theirs),
        statistics.pstdev([a - b for a, b in zip(mine, theirs, strict=True)]),
    )


def unsteady(mbit_per_s: float, cameras: int, kbit_per_s: int) -> str | None:
    """Why the window's throughput says the stream was not steady, or None."""
    share = mbit_per_s / (cameras * kbit_per_s / 1000)
    low, high = THROUGHPUT_RANGE
    if low <= share <= high:
        return None
    return (
        f"recorded {mbit_per_s:.1f} Mbit/s = {share:.2f} x {cameras} x {kbit_per_s} kbit/s "
        f"(outside {low:g}-{high:g}): "
        + ("the sender fell behind" if share < low else "a backlog was being caught up")
    )


def log_problems(log: Path, limit: int = 8) -> list[str]:
    text = log.read_text(errors="replace").splitlines()
    bad = [line for line in text if BAD_LOG_LINE.search(line)]
    shown = [f"nvr log: {line}" for line in bad[:limit]]
    if len(bad) > limit:
        shown.append(f"nvr log: ... {len(bad) - limit} more such lines")
    return shown


def warmup_s(cameras: int, args: argparse.Namespace) -> float:
    """--warmup, or 5 s (10 s above 16 cameras: 64 streams take longer to settle here)."""
    return float(args.warmup) if args.warmup is not None else (10.0 if cameras > 16 else 5.0)


def print_log_tail(log: Path, lines: int = 25) -> None:
    """What went wrong, before the temp dir goes: the first bad lines and the end of the log."""
    print("      nvr run did not get every camera recording:", flush=True)
    for problem in log_problems(log, limit=12):
        print(f"      {problem}", flush=True)
    print(f"      last {lines} lines of its log:")
    for line in log.read_text(errors="replace").splitlines()[-lines:]:
        print(f"      | {line}", flush=True)


def measure_nvr(
    sim: SimulatorProcess,
    urls: dict[str, str],
    recorder: Recorder,
    reference: Reference,
    args: argparse.Namespace,
) -> Run:
    n = len(urls)
    problems: list[str] = []
    with temp_dir(f"receive-{recorder.value}") as folder:
        port = free_port()
        options = {"transport": "tcp", "rtp_jitterbuffer": JITTERBUFFER_SETTING[recorder]}
        config = write_config(
            folder, urls, api_port=port, storage={"segment_seconds": 60}, camera_options=options
        )
        rec = folder / "rec"
        nvr = NvrService(config, port, folder / "nvr.log")
        try:
            try:
                wait_until(
                    lambda: nvr.all_recording(n, "tcp"), max(90, 2 * n), "every camera recording"
                )
            except (AssertionError, RuntimeError):
                nvr.close()
                print_log_tail(folder / "nvr.log")  # before the temp dir goes
                raise
            time.sleep(warmup_s(n, args))  # settle start-up costs before the window
            pid = nvr.process.pid
            measured = window([pid], sim.pid, lambda: folder_bytes(rec), args.seconds)
            threads = sum(1 for name, _ in thread_cpu(pid) if name == JITTERBUFFER_THREAD)
            if not nvr.all_recording(n, "tcp"):
                problems.append("not every camera still streaming and recording after the window")
            paths = Counter(c.get("receive_path") for c in nvr.cameras())
            if paths != Counter({recorder.value: n}):
                problems.append(f"receive paths {dict(paths)} (expected {recorder.value} x {n})")
        finally:
            nvr.close()  # SIGTERM: every open segment is finalised
            reference.close()
        if nvr.process.returncode != 0:
            problems.append(f"nvr run exited with {nvr.process.returncode}")
        expected = n if recorder is Recorder.JITTERBUFFER else 0
        if threads != expected:
            problems.append(f"{threads} {JITTERBUFFER_THREAD} threads (expected {expected})")
        problems += log_problems(folder / "nvr.log")
        first = next(iter(urls))
        rows = [r for r in segments(rec) if r.camera == first and r.status == "closed"]
        found = None
        if not rows:
            problems.append(f"{first}: no closed segment in the catalog")
        else:
            row = max(rows, key=lambda r: (r.end_utc or 0.0) - r.start_utc)
            try:
                found = timing(row.path, reference.path)
            except (subprocess.SubprocessError, ValueError) as exc:
                problems.append(f"{row.path.name}: {exc}")
    return Run(
        recorder,
        measured.cores,
        measured.ctx_per_s,
        measured.simulator,
        measured.mbit_per_s,
        threads,
        found,
        tuple(problems),
        measured.threads,
        measured.load,
        unsteady(measured.mbit_per_s, n, args.bitrate),
    )


def measure_ffmpeg(
    sim: SimulatorProcess, urls: dict[str, str], reference: Reference, args: argparse.Namespace
) -> Run:
    problems: list[str] = []
    with temp_dir("receive-ffmpeg") as folder:
        rec = FfmpegRecorders(urls, folder / "rec")
        try:
            # 64 ffmpegs probing their streams at once take a while on 2 cores.
            wait_until(rec.all_writing, max(60, 2 * len(urls)), "every ffmpeg writing")
            time.sleep(warmup_s(len(urls), args))
            pids = [p.pid for p in rec.processes]
            measured = window(pids, sim.pid, rec.bytes_written, args.seconds)
        finally:
            rec.close()  # SIGINT: every file is finalised
            reference.close()
        files = sorted((folder / "rec").glob(f"{next(iter(urls))}_*.mkv"))
        found = None
        try:
            found = timing(files[0], reference.path) if files else None
        except (subprocess.SubprocessError, ValueError) as exc:
            problems.append(f"ffmpeg file: {exc}")
    return Run(
        Recorder.FFMPEG,
        measured.cores,
        measured.ctx_per_s,
        measured.simulator,
        measured.mbit_per_s,
        None,
        found,
        tuple(problems),
        {},
        measured.load,
        unsteady(measured.mbit_per_s, len(urls), args.bitrate),
    )


def print_simulator_state(sim: SimulatorProcess, ffmpeg_log: Path) -> None:
    """Why a recorder got nothing: the reference's ffmpeg output and the simulator's view."""
    print("      the reference ffmpeg wrote nothing; its output:", flush=True)
    for line in ffmpeg_log.read_text(errors="replace").splitlines()[-10:]:
        print(f"      | {line}")
    try:
        states = sim.status()
        shown = " ".join(f"{c}={st.state.value}/{st.clients}" for c, st in states.items())
        print(f"      simulator (camera=state/clients): {shown}")
    except Exception as exc:  # a diagnostic: say what happened, the run fails anyway
        print(f"      simulator status failed: {exc}")
    print(f"      simulator returncode {sim.returncode}; its last output:")
    for line in sim.output().splitlines()[-15:]:
        print(f"      | {line}", flush=True)


def start_reference(sim: SimulatorProcess, urls: dict[str, str], folder: Path) -> Reference:
    """The reference, writing. A second try if the first gets nothing in 45 s (seen once, at
    N=16 right after an `nvr run`; the diagnostics say what it and the simulator saw)."""
    for attempt in (1, 2):
        reference = Reference(next(iter(urls.values())), folder / f"reference-{attempt}.mkv")
        try:
            wait_until(reference.writing, 45, "the reference ffmpeg writing")
            return reference
        except (AssertionError, RuntimeError) as exc:
            reference.close()
            print(f"      reference, try {attempt}: {exc}", flush=True)
            print_simulator_state(sim, reference.log)
    raise RuntimeError("the reference ffmpeg wrote nothing, twice")


def measure(
    sim: SimulatorProcess, urls: dict[str, str], recorder: Recorder, args: argparse.Namespace
) -> Run:
    """One run of ``recorder``, with the reference recording the first camera throughout."""
    with temp_dir("receive-reference") as folder:
        reference = start_reference(sim, urls, folder)
        try:
            if recorder is Recorder.FFMPEG:
                return measure_ffmpeg(sim, urls, reference, args)
            return measure_nvr(sim, urls, recorder, reference, args)
        finally:
            reference.close()


def spread(values: Sequence[float], fmt: str) -> str:
    return " ".join(format(v, fmt) for v in values)


def print_run(rep: int, run: Run, base: Run, n: int) -> None:
    ratio = run.cores / base.cores if base.cores else float("nan")
    t = run.timing
    timing = (
        f"{t.stdev_ms:>6.2f} {t.mean_ms:>6.2f} {t.duplicates:>4}/{t.backwards:<3} {t.frames:>6} "
        f"{t.matched:>5} {t.vs_reference_ms:>+7.2f} {t.residual_ms:>6.2f}"
        if t
        else f"{'-':>6} {'-':>6} {'-':>8} {'-':>6} {'-':>5} {'-':>7} {'-':>6}"
    )
    threads = "-" if run.jitterbuffer_threads is None else str(run.jitterbuffer_threads)
    print(
        f"{rep:>3} {run.recorder.value:<12} {run.cores:>6.3f} {ratio:>8.2f} "
        f"{run.ctx_per_s:>7.0f} {run.ctx_per_s / n:>7.1f} {run.mbit_per_s:>6.1f} {threads:>3} "
        f"{timing} {run.simulator:>5.2f} {run.load:>5.1f}",
        flush=True,
    )
    for problem in run.problems:
        print(f"      PROBLEM: {problem}", flush=True)
    if run.behind:
        print(f"      NOT STEADY (repeat left out): {run.behind}", flush=True)


def run_n(n: int, args: argparse.Namespace) -> bool:
    """Every repeat at N cameras, then the summary and the verdicts; False if any is missed."""
    print(
        f"\nN={n}: 1280x720 25 fps {args.pattern} {args.bitrate} kbit/s, transport tcp, "
        f"{args.seconds:g} s window after {warmup_s(n, args):g} s warm-up, {args.repeats} repeats "
        f"(order rotated), {os.cpu_count()} CPU(s)"
    )
    print(
        f"{'rep':>3} {'recorder':<12} {'cores':>6} {'x ffmpeg':>8} {'ctx/s':>7} {'/stream':>7} "
        f"{'Mbit/s':>6} {'jb':>3} {'PTS sd':>6} {'mean':>6} {'dup/back':>8} {'frames':>6} "
        f"{'match':>5} {'sd-ref':>7} {'resid':>6} {'sim':>5} {'load':>5}",
        flush=True,
    )
    recorders = list(Recorder)
    repeats: list[dict[Recorder, Run]] = []
    with stream_simulator(n, args.bitrate, args.pattern) as sim:
        urls = {name: sim.url(name) for name in sim.camera_names}
        for rep in range(args.repeats):
            shift = rep % len(recorders)
            done = {r: measure(sim, urls, r, args) for r in recorders[shift:] + recorders[:shift]}
            repeats.append(done)
            for recorder in recorders:  # printed in the same order every repeat
                print_run(rep + 1, done[recorder], done[Recorder.FFMPEG], n)
    return summarise(n, repeats)


def print_threads(runs: dict[Recorder, list[Run]], rows: int = 6) -> None:
    """Where nvr run's CPU goes on each path: median cores per thread name."""
    names = {name for rec in NVR_RECORDERS for r in runs[rec] for name in r.threads}
    per = {
        name: [median([r.threads.get(name, 0.0) for r in runs[rec]]) for rec in NVR_RECORDERS]
        for name in names
    }
    top = sorted(per.items(), key=lambda kv: -max(kv[1]))[:rows]
    heads = "".join(f"{rec.value:>13}" for rec in NVR_RECORDERS)
    print(f"  nvr threads, median cores (digits at the end as *): {heads}")
    for name, values in top:
        print(f"    {name:<48} " + "".join(f"{v:>13.3f}" for v in values))


def summarise(n: int, all_repeats: list[dict[Recorder, Run]]) -> bool:
    problems = sum(len(r.problems) for rep in all_repeats for r in rep.values())
    kept = [rep for rep in all_repeats if not any(r.behind for r in rep.values())]
    left_out = len(all_repeats) - len(kept)
    if not kept:
        print(f"N={n}: no repeat with steady streams in every run: no figures (MISSED)")
        return False
    runs = {recorder: [rep[recorder] for rep in kept] for recorder in Recorder}
    ratios = {
        recorder: [
            rep[recorder].cores / rep[Recorder.FFMPEG].cores
            if rep[Recorder.FFMPEG].cores
            else float("nan")
            for rep in kept
        ]
        for recorder in Recorder
    }
    repeats = len(kept)
    print(
        f"N={n}, medians of {repeats} repeats (ratios against ffmpeg of the same repeat"
        + (f"; {left_out} repeat(s) not steady, left out" if left_out else "")
        + "):"
    )
    sd: dict[Recorder, list[float]] = {}
    vs_ref: dict[Recorder, list[float]] = {}
    for recorder, label in (
        (Recorder.NATIVE, "native (rtp_jitterbuffer: auto)"),
        (Recorder.STAMP, "stamp (stamp)"),
        (Recorder.JITTERBUFFER, "jitterbuffer (always)"),
        (Recorder.FFMPEG, "ffmpeg -c copy"),
    ):
        rs = runs[recorder]
        cores = median([r.cores for r in rs])
        ctx = median([r.ctx_per_s for r in rs])
        sd[recorder] = [r.timing.stdev_ms for r in rs if r.timing]
        vs_ref[recorder] = [r.timing.vs_reference_ms for r in rs if r.timing]
        line = f"  {label:<31} {cores:.3f} cores ({cores / n:.4f}/stream)"
        if recorder is not Recorder.FFMPEG:
            cpu = ratios[recorder]
            line += f", x ffmpeg {median(cpu):.2f} (runs {spread(cpu, '.2f')})"
        line += (
            f", {ctx:.0f} ctx switches/s ({ctx / n:.0f}/stream); PTS-delta sd "
            f"{median(sd[recorder]):.2f} ms (runs {spread(sd[recorder], '.2f')}), "
            f"minus the sender's on the same frames {median(vs_ref[recorder]):+.2f} ms "
            f"(runs {spread(vs_ref[recorder], '+.2f')})"
        )
        print(line)
    native, stamp, old = (runs[r] for r in NVR_RECORDERS)
    print_threads(runs)
    for label, new in (("native", native), ("stamp", stamp)):
        cpu_vs_old = [a.cores / b.cores for a, b in zip(new, old, strict=True) if b.cores]
        ctx_vs_old = [
            a.ctx_per_s / b.ctx_per_s for a, b in zip(new, old, strict=True) if b.ctx_per_s
        ]
        print(
            f"  {label} vs jitterbuffer, same repeat: CPU x {median(cpu_vs_old):.2f} "
            f"(runs {spread(cpu_vs_old, '.2f')}), ctx switches x {median(ctx_vs_old):.2f} "
            f"(runs {spread(ctx_vs_old, '.2f')})"
        )
    cpu_ratio = median(ratios[Recorder.NATIVE])
    cpu_ok = cpu_ratio <= TARGET
    print(
        f"  target native <= {TARGET} x ffmpeg at N={n}: {verdict(cpu_ok)} ({cpu_ratio:.2f}x; "
        f"stamp {median(ratios[Recorder.STAMP]):.2f}x, "
        f"the old path {median(ratios[Recorder.JITTERBUFFER]):.2f}x)"
    )
    raw = median(sd[Recorder.NATIVE]) - median(sd[Recorder.JITTERBUFFER])
    print(
        f"  PTS-delta sd of the files, native - jitterbuffer (medians): {raw:+.2f} ms "
        f"(within {MAX_STDEV_EXCESS_MS:g} ms: {verdict(raw <= MAX_STDEV_EXCESS_MS)}; runs "
        f"minutes apart, so mostly the sender's jitter: judged on the same frames below)"
    )
    same = median(vs_ref[Recorder.NATIVE]) - median(vs_ref[Recorder.JITTERBUFFER])
    complete = all(len(vs_ref[r]) == repeats for r in (Recorder.NATIVE, Recorder.JITTERBUFFER))
    sd_ok = complete and same <= MAX_STDEV_EXCESS_MS
    print(
        f"  target PTS-delta sd of native <= jitterbuffer's + {MAX_STDEV_EXCESS_MS:g} ms, each "
        f"against the sender on the same frames: {verdict(sd_ok)} ({same:+.2f} ms)"
    )
    bad = sum(r.timing.duplicates + r.timing.backwards for r in native if r.timing)
    ts_ok = bad == 0 and all(r.timing for r in native)
    print(
        f"  target no duplicate or backwards PTS in the native path's files: {verdict(ts_ok)} "
        f"({bad} in {sum(1 for r in native if r.timing)} files)"
    )
    if problems:
        print(f"  {problems} PROBLEM lines above: the recorder misbehaved (see them)")
    return cpu_ok and sd_ok and ts_ok and not problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="N=16 and N=64")
    parser.add_argument("--cameras", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=None, help="default 5 s, 10 s above N=16")
    parser.add_argument("--bitrate", type=int, default=2000, help="kbit/s per camera")
    parser.add_argument("--pattern", default="snow")
    args = parser.parse_args(argv)
    counts = args.cameras or ([16, 64] if args.long else [16])
    print(
        "receive path over TCP: nvr with nvrrtspsrc (rtp_jitterbuffer: auto) vs rtspsrc stamping "
        "RTP in place (stamp) vs rtpbin's jitterbuffer (always) vs ffmpeg -c copy. "
        "jb = rtpjitterbuffer threads of nvr run; "
        "PTS sd / mean = sd and mean (ms) of frame-to-frame PTS deltas in one closed file of the "
        "first camera; match = its frames found in the reference recording of the sender's RTP "
        "timestamps; sd-ref = the file's delta sd minus the sender's on those frames; resid = sd "
        "of the per-frame difference; sim = simulator cores (not counted); load = 1-min load "
        "average at the end of the window"
    )
    ok = True
    for n in counts:
        ok &= run_n(n, args)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
