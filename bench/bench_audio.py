"""What audio adds to CPU per camera: `nvr run` recording video only, video + AAC, video + G.711.

One simulator serves the N cameras of every variant side by side (default N=8; 1280x720 25 fps,
pattern snow at 2000 kbit/s, GOP 1 s, as bench_cpu): N with video only, N that also send AAC-LC
(16 kHz mono, 32 kbit/s), N that also send G.711 A-law (8 kHz mono, 64 kbit/s). Per repeat, each
variant in turn (the order rotated from repeat to repeat, so drift on the shared machine hits all
variants alike) is recorded by a fresh `nvr run` with only that variant's N cameras; its CPU time
(user + system of the `nvr run` process, psutil) is measured over a fixed window after warm-up.
Ratios and the extra CPU are against the video-only run of the same repeat. The simulator's CPU
is shown but not counted: it differs per variant, since it encodes the audio it sends.

Check that the audio is really recorded: during the window every camera of an audio variant must
report its audio codec in `/api/cameras`, and after `nvr run` stopped (every file finalised) one
segment per run is read with ffprobe: video only must have no audio stream, an audio variant
exactly one, in its codec, with about as many packets per second as the camera sends.

    .venv/bin/python bench/bench_audio.py [--long] [--cameras 8] [--repeats 3] [--seconds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from _common import (
    NvrService,
    cpu_seconds,
    ffprobe_streams,
    free_port,
    median,
    segments,
    temp_dir,
    thread_cpu,
    write_config,
)

from nvr_gstreamer.simulator.model import AudioCodec
from nvr_gstreamer.simulator.process import SimulatorProcess

# What ffprobe calls each codec, and the packets per second the simulator sends (the AAC frame is
# 1024 samples at 16 kHz; G.711 and Opus go in 20 ms packets).
EXPECTED: dict[AudioCodec, tuple[str, float]] = {
    AudioCodec.AAC: ("aac", 16000 / 1024),
    AudioCodec.PCMA: ("pcm_alaw", 50.0),
    AudioCodec.PCMU: ("pcm_mulaw", 50.0),
    AudioCodec.OPUS: ("opus", 50.0),
}
MIN_PACKET_SHARE = 0.8  # of the expected packets per second over the file's duration


@dataclass(frozen=True, slots=True)
class Run:
    audio: AudioCodec
    cores: float  # nvr run: CPU seconds / wall seconds
    simulator: float  # the simulator over the same window (not counted)
    mbit_per_s: float  # recorded bytes, all N cameras
    check: str  # the audio check in words
    ok: bool
    threads: dict[str, float]  # cores per thread name (digits at the end as *), nvr run only


def thread_groups(
    before: dict[tuple[str, int], float], after: dict[tuple[str, int], float], wall: float
) -> dict[str, float]:
    """Cores per thread name over the window; trailing digits (one thread per camera) as *."""
    groups: dict[str, float] = {}
    for (name, tid), seconds in after.items():
        key = name.rstrip("0123456789") + ("*" if name[-1:].isdigit() else "")
        groups[key] = groups.get(key, 0.0) + (seconds - before.get((name, tid), 0.0)) / wall
    return groups


def folder_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*.mkv"))


def check_api(cameras: list[dict[str, object]], audio: AudioCodec) -> str | None:
    """None if every camera reports the expected audio codec, else what is wrong."""
    want = None if audio is AudioCodec.NONE else audio.value
    wrong = {str(c["id"]): c.get("audio_codec") for c in cameras if c.get("audio_codec") != want}
    return f"/api/cameras audio_codec {wrong} (expected {want})" if wrong else None


def check_file(rec: Path, camera: str, audio: AudioCodec) -> tuple[str, bool]:
    """ffprobe the longest closed segment of ``camera``: its streams, in words, and whether OK."""
    rows = [
        r
        for r in segments(rec)
        if r.camera == camera and r.status == "closed" and r.end_utc is not None
    ]
    if not rows:
        return f"{camera}: no closed segment", False
    row = max(rows, key=lambda r: (r.end_utc or 0.0) - r.start_utc)
    streams, duration = ffprobe_streams(row.path)
    video = [s for s in streams if s.kind == "video"]
    sound = [s for s in streams if s.kind == "audio"]
    words = f"{row.path.name}: " + " + ".join(s.codec for s in streams)
    if audio is AudioCodec.NONE:
        return words + ", no audio stream", len(video) == 1 and not sound
    if len(video) != 1 or len(sound) != 1 or not duration:
        return words + f" (expected h264 + {EXPECTED[audio][0]})", False
    codec, rate = EXPECTED[audio]
    a = sound[0]
    per_s = a.packets / duration
    words += f" {a.sample_rate} Hz {a.channels} ch, {a.packets} pkts in {duration:.1f} s"
    words += f" = {per_s:.1f}/s (sent {rate:.1f}/s)"
    return words, a.codec == codec and per_s >= MIN_PACKET_SHARE * rate


def measure(
    sim: SimulatorProcess, names: list[str], audio: AudioCodec, args: argparse.Namespace
) -> Run:
    urls = {name: sim.url(name) for name in names}
    with temp_dir("audio") as folder:
        port = free_port()
        config = write_config(folder, urls, api_port=port, storage={"segment_seconds": 60})
        nvr = NvrService(config, port, folder / "nvr.log")
        try:
            nvr.wait_streaming(len(urls), timeout_s=90)
            time.sleep(args.warmup)  # settle start-up costs (and the audio branches) first
            rec = folder / "rec"
            nvr_pid = nvr.process.pid
            threads0 = thread_cpu(nvr_pid)
            cpu0, sim0 = cpu_seconds([nvr_pid]), cpu_seconds([sim.pid])
            bytes0, t0 = folder_bytes(rec), time.monotonic()
            time.sleep(args.seconds)  # the fixed measurement window
            cpu1, sim1 = cpu_seconds([nvr_pid]), cpu_seconds([sim.pid])
            bytes1, t1 = folder_bytes(rec), time.monotonic()
            threads1 = thread_cpu(nvr_pid)
            api_problem = check_api(nvr.cameras(), audio)
        finally:
            nvr.close()  # SIGTERM: every open segment is finalised
        words, ok = check_file(rec, names[0], audio)
        if api_problem:
            words, ok = f"{words}; {api_problem}", False
    wall = t1 - t0
    return Run(
        audio,
        (cpu1 - cpu0) / wall,
        (sim1 - sim0) / wall,
        (bytes1 - bytes0) * 8 / wall / 1e6,
        words,
        ok,
        thread_groups(threads0, threads1, wall),
    )


def spread(values: list[float], fmt: str) -> str:
    return " ".join(format(v, fmt) for v in values)


def print_threads(variants: list[AudioCodec], runs: dict[AudioCodec, list[Run]], n: int) -> None:
    """Where the extra goes: per nvr thread name, ms of CPU per second per camera."""
    base = runs[AudioCodec.NONE]
    names = sorted({k for v in variants for r in runs[v] for k in r.threads})
    print("nvr threads, ms CPU/s per camera (median over repeats; digits at the end as *):")
    header = f"  {'thread':<18} {'none':>7}"
    for v in variants[1:]:
        header += f" {v.value:>7} {'extra':>7}"
    print(header)
    rows = []
    for name in names:
        video = median([r.threads.get(name, 0.0) * 1000 / n for r in base])
        cells = f"  {name:<18} {video:>7.2f}"
        biggest = video
        for v in variants[1:]:
            per = [r.threads.get(name, 0.0) * 1000 / n for r in runs[v]]
            extra = median(
                [a - b.threads.get(name, 0.0) * 1000 / n for a, b in zip(per, base, strict=True)]
            )
            cells += f" {median(per):>7.2f} {extra:>+7.2f}"
            biggest = max(biggest, median(per))
        rows.append((biggest, cells))
    for biggest, cells in sorted(rows, key=lambda r: -r[0]):
        if biggest >= 0.05:
            print(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="5 repeats, also PCMU and Opus")
    parser.add_argument("--cameras", type=int, default=8, help="cameras per variant")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (5 with --long)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--bitrate", type=int, default=2000, help="video kbit/s per camera")
    parser.add_argument("--pattern", default="snow")
    parser.add_argument(
        "--audio",
        nargs="+",
        type=AudioCodec,
        default=None,
        help="audio variants besides video only (default aac pcma; --long adds pcmu opus)",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.long else 3)
    extra = args.audio or (
        [AudioCodec.AAC, AudioCodec.PCMA, AudioCodec.PCMU, AudioCodec.OPUS]
        if args.long
        else [AudioCodec.AAC, AudioCodec.PCMA]
    )
    variants = [AudioCodec.NONE, *(a for a in extra if a is not AudioCodec.NONE)]
    n = args.cameras
    # Variant i records cameras i*N+1 .. (i+1)*N of one simulator.
    names = [f"cam{i}" for i in range(1, n * len(variants) + 1)]
    cams = {v: names[i * n : (i + 1) * n] for i, v in enumerate(variants)}
    camera_audio = {name: v for v in variants if v is not AudioCodec.NONE for name in cams[v]}
    print(
        f"what audio adds to CPU: {n} cameras per variant, 1280x720 25 fps {args.pattern} "
        f"{args.bitrate} kbit/s (+ audio), {args.seconds:g} s window after {args.warmup:g} s "
        f"warm-up, {repeats} repeats (order rotated), {os.cpu_count()} CPU(s)"
    )
    print(
        f"{'rep':>3} {'variant':<8} {'nvr cores':>9} {'/camera':>8} {'x video':>8} "
        f"{'extra ms/s/cam':>14} {'sim cores':>9} {'Mbit/s':>7}  audio check",
        flush=True,
    )
    runs: dict[AudioCodec, list[Run]] = {v: [] for v in variants}
    ratios: dict[AudioCodec, list[float]] = {v: [] for v in variants}
    extras: dict[AudioCodec, list[float]] = {v: [] for v in variants}
    ok = True
    with SimulatorProcess(
        len(names),
        size=(1280, 720),
        fps=25,
        bitrate_kbps=args.bitrate,
        gop_seconds=1.0,
        camera_audio=camera_audio,
        extra_args=["--pattern", args.pattern],
    ) as sim:
        for rep in range(repeats):
            shift = rep % len(variants)
            order = variants[shift:] + variants[:shift]
            done = {v: measure(sim, cams[v], v, args) for v in order}
            base = done[AudioCodec.NONE]
            for v in variants:  # printed in the same order every repeat
                run = done[v]
                ratio = run.cores / base.cores if base.cores else float("nan")
                extra_ms = (run.cores - base.cores) / n * 1000
                runs[v].append(run)
                ratios[v].append(ratio)
                extras[v].append(extra_ms)
                ok &= run.ok
                print(
                    f"{rep + 1:>3} {v.value:<8} {run.cores:>9.3f} {run.cores / n:>8.4f} "
                    f"{ratio:>8.2f} {extra_ms:>+14.2f} {run.simulator:>9.3f} "
                    f"{run.mbit_per_s:>7.1f}  {'OK' if run.ok else 'FAILED'}: {run.check}",
                    flush=True,
                )
    print(
        f"per variant (median of {repeats}; ratio and extra against video only in the same repeat):"
    )
    for v in variants:
        cores = [r.cores for r in runs[v]]
        line = (
            f"  {v.value:<5} {median(cores):.3f} cores, {median(cores) / n:.4f} per camera, "
            f"sim {median([r.simulator for r in runs[v]]):.2f} (not counted)"
        )
        if v is not AudioCodec.NONE:
            line += (
                f"; x video {median(ratios[v]):.2f} (runs {spread(ratios[v], '.2f')}); "
                f"extra {median(extras[v]):+.2f} ms CPU/s per camera "
                f"(runs {spread(extras[v], '+.2f')}; stdev {statistics.pstdev(extras[v]):.2f})"
            )
        print(line)
    print_threads(variants, runs, n)
    print(f"audio check (API + ffprobe, every run): {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
