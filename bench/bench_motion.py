"""Motion detection: its CPU per camera (decode and detection apart), recall and false events.

CPU. The simulator (a process of its own, not counted) serves N scene cameras (default 8;
640x360 H.264, 1000 kbit/s, GOP 1 s: a sub-stream; still scenes, the common case), at 5 fps
(a detection sub-stream, as cameras are set up for detection: the target is judged there) and
at 25 fps (every frame must still be decoded: printed for information), `--stream-fps`. Two
engines receive all N at the same time, each in a child process of its own and without storage
(nothing is recorded): "on" with `motion.enabled` (5 fps, the simulator's overlays masked) and
"off" without. Both are measured over the same fixed windows (user + system CPU of each child,
psutil), repeated (default 3 x 30 s; 5 with --long): rather than alternating windows, the
baseline is measured at the very same time, under the same load of the shared machine, and no
engine is restarted between windows (the simulator encodes each camera once for both). The
motion path per camera = (on - off) / N. Detection alone = the CPU time (thread_time) spent
inside `MotionDetector.feed`, which the "on" child wraps with an accumulator (the product is not
changed); decode, convert, scale and hand-off = the rest of the motion path. "off" / N is what
the engine's receive path costs without motion, for scale. Frames looked at per second per
camera (the detector's calls) must be about `motion.fps`.

Recall and false events, on three more cameras of the same simulator, in this process's engine
(no storage, default motion settings, the overlays masked), all at the same time:
  scripted  a scene camera; K times (default 10): the object starts, moves ~3 s, stops; then
            the event's end is awaited. Every one must make exactly one event, beginning
            within 1 s of the object's start (heard by an engine listener).
  noise     a noisy scene camera, untouched, for --quiet-minutes: no event.
  steps     a scene camera whose brightness steps every 20 s (-0.4, 0, +0.35, 0, -0.15, 0, ...)
            for --quiet-minutes: no event.

Targets (exit status 1 if one is missed): motion path <= 0.01 core per camera (median over the
windows; every camera streaming and looked at ~5 fps); recall 100 % within 1 s with exactly one
event per motion; 0 events on the quiet cameras. Default run: about 6 minutes (--long: 16).

    .venv/bin/python bench/bench_motion.py [--long] [--cameras 8] [--repeats 3] [--seconds 30]
                                           [--motions 10] [--quiet-minutes 2]
                                           [--stream-fps 5 25]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from _common import cpu_seconds, median, thread_cpu, verdict

from nvr_gstreamer.camera.motion import Frame, MotionDetector, MotionResult
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.engine.engine import CameraEngine
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.simulator.scene import OVERLAY_MASKS, Picture
from nvr_gstreamer.testing.engine import EngineWatch, engine_config, wait_until

TARGET_CORES = 0.01  # motion path per camera, decode included
TARGET_LATENCY_S = 1.0  # object start to event start
SIZE, FPS, BITRATE_KBPS = (640, 360), 25, 1000  # the sub-stream the detector decodes
MOTION_FPS = 5.0
# What changes in every frame of the simulator: its clock (top left) and its frame stamp (a band
# at the bottom), masked as a user masks a camera's overlay.
OVERLAYS = [[list(p) for p in m] for m in OVERLAY_MASKS]
MOVE_S = 3.0  # how long each scripted motion lasts
EVENT_WAIT_S = 5.0  # an event later than this after the object started is not waited for
END_WAIT_S = 30.0  # the longest wait for an event's end after the object stopped
SETTLE_S = 1.0  # after an event's end, before the next motion
STEP_EVERY_S = 20.0
STEP_LEVELS = (-0.4, 0.0, 0.35, 0.0, -0.15, 0.0)
WARM_FRAMES = 10  # the detector has its average picture (2 s at 5 fps)
SCRIPTED, NOISE, STEPS = "cam1", "cam2", "cam3"  # part 2


# ---- the engine child (part 1) --------------------------------------------------------------


class FeedMeter:
    """CPU time spent inside every ``MotionDetector.feed`` of this process (the detection
    alone): the method is wrapped in the benchmark's child, the product stays as it is."""

    def __init__(self) -> None:
        self._cells: dict[int, list[float]] = {}  # id(detector) -> [cpu s, calls]; one thread each

    def install(self) -> None:
        original = MotionDetector.feed
        cells = self._cells

        def feed(self: MotionDetector, frame: Frame, t: float) -> MotionResult:
            start = time.thread_time()
            try:
                return original(self, frame, t)
            finally:
                cell = cells.setdefault(id(self), [0.0, 0.0])
                cell[0] += time.thread_time() - start
                cell[1] += 1

        MotionDetector.feed = feed  # type: ignore[method-assign]

    def totals(self) -> tuple[float, int]:
        cells = list(self._cells.values())
        return sum(c[0] for c in cells), int(sum(c[1] for c in cells))


@dataclass(frozen=True, slots=True)
class ChildSample:
    feed_cpu_s: float
    feed_calls: int
    frames: dict[str, int]  # per camera: frames looked at (MotionWatch.frames)
    states: dict[str, str]
    recording: bool  # any camera records (it must not)


def engine_child(conn: Connection, urls: dict[str, str], motion: bool) -> None:
    """A child process: an engine without storage on ``urls``, with or without motion; answers
    "sample" with a :class:`ChildSample` until "stop" (or the parent is gone)."""
    meter = FeedMeter()
    meter.install()
    options: dict[str, dict[str, object]] = {}
    if motion:
        settings = {"enabled": True, "fps": MOTION_FPS, "masks": OVERLAYS}
        options = {cid: {"motion": settings} for cid in urls}
    engine = CameraEngine(engine_config(urls, camera_options=options))
    engine.start()

    def sample() -> ChildSample:
        cpu, calls = meter.totals()
        frames = {}
        for cid, rt in engine.runtimes.items():
            frames[cid] = rt.motion.frames if rt.motion is not None else 0
        statuses = engine.statuses()
        states = {cid: s.state.value for cid, s in statuses.items()}
        return ChildSample(cpu, calls, frames, states, any(s.recording for s in statuses.values()))

    def ready() -> bool:
        s = sample()
        streaming = all(v == CameraState.STREAMING.value for v in s.states.values())
        return streaming and (not motion or min(s.frames.values()) >= WARM_FRAMES)

    try:
        try:
            wait_until(ready, 90, "every camera streaming (and looked at)")
        except AssertionError as e:
            conn.send(("error", f"{e}; {sample()}"))
            return
        conn.send(("ready", None))
        while True:
            try:
                command = conn.recv()
            except EOFError:  # the parent is gone
                return
            if command == "sample":
                conn.send(("sample", sample()))
            else:
                return
    finally:
        engine.stop()


class EngineChild:
    """:func:`engine_child` in a spawned process (a fresh interpreter: its own GStreamer)."""

    def __init__(self, urls: dict[str, str], motion: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self.process = context.Process(
            target=engine_child, args=(child_conn, urls, motion), daemon=True
        )
        self.process.start()
        child_conn.close()
        assert self.process.pid is not None
        self.pid: int = self.process.pid

    def _reply(self, timeout_s: float) -> tuple[str, Any]:
        if not self._conn.poll(timeout_s):
            raise RuntimeError(f"engine child {self.pid}: no answer in {timeout_s:g} s")
        kind, value = self._conn.recv()
        if kind == "error":
            raise RuntimeError(f"engine child {self.pid}: {value}")
        return kind, value

    def wait_ready(self, timeout_s: float) -> None:
        self._reply(timeout_s)

    def sample(self) -> ChildSample:
        self._conn.send("sample")
        _kind, value = self._reply(10)
        assert isinstance(value, ChildSample)
        return value

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self.process.join(20)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._conn.close()


# ---- part 1: CPU ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    wall_s: float
    on: float  # cores of the "on" child
    off: float  # cores of the "off" child
    simulator: float  # not counted
    feed: float  # cores inside MotionDetector.feed, all cameras
    feed_calls: int
    frames_per_s: dict[str, float]  # per camera, "on" child
    states_ok: bool  # every camera of both children streamed, nothing recorded
    on_threads: dict[str, float]  # cores per thread name (trailing digits as *)
    off_threads: dict[str, float]


def thread_groups(
    before: dict[tuple[str, int], float], after: dict[tuple[str, int], float], wall: float
) -> dict[str, float]:
    groups: dict[str, float] = {}
    for (name, tid), seconds in after.items():
        key = name.rstrip("0123456789") + ("*" if name[-1:].isdigit() else "")
        groups[key] = groups.get(key, 0.0) + (seconds - before.get((name, tid), 0.0)) / wall
    return groups


def window(on: EngineChild, off: EngineChild, sim_pid: int, seconds: float) -> Window:
    s_on0, s_off0 = on.sample(), off.sample()
    th_on0, th_off0 = thread_cpu(on.pid), thread_cpu(off.pid)
    on0, off0, sim0 = cpu_seconds([on.pid]), cpu_seconds([off.pid]), cpu_seconds([sim_pid])
    t0 = time.monotonic()
    time.sleep(seconds)  # the fixed measurement window
    on1, off1, sim1 = cpu_seconds([on.pid]), cpu_seconds([off.pid]), cpu_seconds([sim_pid])
    t1 = time.monotonic()
    th_on1, th_off1 = thread_cpu(on.pid), thread_cpu(off.pid)
    s_on1, s_off1 = on.sample(), off.sample()
    wall = t1 - t0
    streaming = CameraState.STREAMING.value
    ok = all(
        v == streaming for s in (s_on0, s_on1, s_off0, s_off1) for v in s.states.values()
    ) and not any(s.recording for s in (s_on0, s_on1, s_off0, s_off1))
    return Window(
        wall,
        (on1 - on0) / wall,
        (off1 - off0) / wall,
        (sim1 - sim0) / wall,
        (s_on1.feed_cpu_s - s_on0.feed_cpu_s) / wall,
        s_on1.feed_calls - s_on0.feed_calls,
        {cid: (s_on1.frames[cid] - s_on0.frames[cid]) / wall for cid in s_on1.frames},
        ok,
        thread_groups(th_on0, th_on1, wall),
        thread_groups(th_off0, th_off1, wall),
    )


def spread(values: list[float], fmt: str) -> str:
    return " ".join(format(v, fmt) for v in values)


def print_threads(windows: list[Window], n: int) -> None:
    """Where the motion path's CPU goes: per thread name, ms CPU/s per camera, on vs off."""
    names = sorted({k for w in windows for k in (*w.on_threads, *w.off_threads)})
    rows = []
    for name in names:
        on = median([w.on_threads.get(name, 0.0) * 1000 / n for w in windows])
        off = median([w.off_threads.get(name, 0.0) * 1000 / n for w in windows])
        rows.append((max(on, off), f"    {name:<18} {on:>7.2f} {off:>7.2f} {on - off:>+7.2f}"))
    print("  threads, ms CPU/s per camera (median of the windows; trailing digits as *):")
    print(f"    {'thread':<18} {'on':>7} {'off':>7} {'extra':>7}")
    for biggest, line in sorted(rows, key=lambda r: -r[0]):
        if biggest >= 0.05:
            print(line)


def measure_cpu(
    sim: SimulatorProcess, names: list[str], args: argparse.Namespace, fps: int, judged: bool
) -> bool:
    """One CPU measurement of a sub-stream at ``fps``; True when the target is met (or when
    it is not ``judged``: printed for information only)."""
    n = len(names)
    urls = {name: sim.url(name) for name in names}
    print(
        f"CPU of motion detection: {n} scene cameras {SIZE[0]}x{SIZE[1]} {fps} fps H.264 "
        f"{BITRATE_KBPS} kbit/s, looked at {MOTION_FPS:g} fps; engines 'on' and 'off' (no "
        f"storage) measured over the same {args.repeats} x {args.seconds:g} s windows after "
        f"{args.warmup:g} s warm-up; {os.cpu_count()} CPU(s)"
    )
    print(
        "  cores per camera: path = (on - off) / N; detect = inside MotionDetector.feed; "
        "decode+ = path - detect (decode, convert, scale, hand-off); receive = off / N"
    )
    print(
        f"  {'win':>3} {'on':>6} {'off':>6} {'on/off':>6} {'path':>7} {'detect':>7} "
        f"{'decode+':>7} {'receive':>7} {'ms/frame':>8} {'frames/s/cam':>14} {'sim':>5}",
        flush=True,
    )
    on, off = EngineChild(urls, motion=True), EngineChild(urls, motion=False)
    windows: list[Window] = []
    try:
        on.wait_ready(120)
        off.wait_ready(120)
        time.sleep(args.warmup)
        for rep in range(args.repeats):
            w = window(on, off, sim.pid, args.seconds)
            windows.append(w)
            rates = list(w.frames_per_s.values())
            per_frame = w.feed * w.wall_s / w.feed_calls * 1000 if w.feed_calls else float("nan")
            print(
                f"  {rep + 1:>3} {w.on:>6.3f} {w.off:>6.3f} {w.on / w.off:>6.2f} "
                f"{(w.on - w.off) / n:>7.4f} {w.feed / n:>7.4f} "
                f"{(w.on - w.off - w.feed) / n:>7.4f} "
                f"{w.off / n:>7.4f} {per_frame:>8.2f} "
                f"{statistics.mean(rates):>5.2f} ({min(rates):.1f}-{max(rates):.1f}) "
                f"{w.simulator:>5.2f}{'' if w.states_ok else '  PROBLEM: a camera not streaming'}",
                flush=True,
            )
    finally:
        on.close()
        off.close()
    path = [(w.on - w.off) / n for w in windows]
    detect = [w.feed / n for w in windows]
    rest = [p - d for p, d in zip(path, detect, strict=True)]
    receive = [w.off / n for w in windows]
    rates = [statistics.mean(w.frames_per_s.values()) for w in windows]
    calls = sum(w.feed_calls for w in windows)
    per_frame_ms = sum(w.feed * w.wall_s for w in windows) / calls * 1000 if calls else 0.0
    print(f"  per camera (median of {len(windows)} windows; runs in brackets):")
    print(f"    motion path     {median(path):.4f} cores  ({spread(path, '.4f')})")
    print(
        f"      detection     {median(detect):.4f} cores  ({spread(detect, '.4f')}); "
        f"{per_frame_ms:.2f} ms CPU per frame"
    )
    print(f"      decode+scale  {median(rest):.4f} cores  ({spread(rest, '.4f')})")
    print(
        f"    receive only    {median(receive):.4f} cores  ({spread(receive, '.4f')}; motion off)"
    )
    print(f"    frames looked at {median(rates):.2f}/s per camera (asked {MOTION_FPS:g})")
    print_threads(windows, n)
    states_ok = all(w.states_ok for w in windows)
    rate_ok = all(abs(r - MOTION_FPS) <= 0.1 * MOTION_FPS for r in rates)
    met = median(path) <= TARGET_CORES and states_ok and rate_ok
    why = "" if states_ok and rate_ok else " (a camera not streaming, or frames/s off)"
    label = "target" if judged else "(informational, every frame decoded)"
    print(
        f"  {label} motion path <= {TARGET_CORES} core per camera on a {fps} fps sub-stream, "
        f"decode included: {verdict(met)} "
        f"({median(path):.4f}; {median(path) / TARGET_CORES:.1f} x the target){why}",
        flush=True,
    )
    return met or not judged


# ---- part 2: recall and false events --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Motion:
    latency_s: float | None  # object start to the first event's start (None: no event)
    events: int  # events begun from this object start to the next one
    ended_s: float | None  # object stop to the event's end


@contextlib.contextmanager
def running(engine: CameraEngine) -> Iterator[EngineWatch]:
    watch = EngineWatch(engine)
    engine.start()
    try:
        yield watch
    finally:
        watch.close()
        engine.stop()


def starts(watch: EngineWatch, camera: str, since: float, until: float) -> list[float]:
    """When events of ``camera`` were heard beginning, in [since, until) (monotonic)."""
    return [
        at
        for at, ev in list(watch.motion_events)
        if ev.camera_id == camera and ev.started and since <= at < until
    ]


def script(sim: SimulatorProcess, watch: EngineWatch, count: int) -> tuple[list[Motion], float]:
    """The scripted motions; each one's outcome, and when the script ended (monotonic)."""
    moved: list[float] = []
    results: list[tuple[float | None, float | None]] = []
    for _ in range(count):
        moved.append(time.monotonic())
        sim.object_start(SCRIPTED)
        latency: float | None = None
        with contextlib.suppress(AssertionError):
            heard, _ev = watch.wait_motion(SCRIPTED, True, EVENT_WAIT_S, after=moved[-1])
            latency = heard - moved[-1]
        time.sleep(max(0.0, moved[-1] + MOVE_S - time.monotonic()))
        sim.object_stop(SCRIPTED)
        stopped = time.monotonic()
        ended: float | None = None
        if latency is not None:
            with contextlib.suppress(AssertionError):
                heard, _ev = watch.wait_motion(SCRIPTED, False, END_WAIT_S, after=stopped)
                ended = heard - stopped
        results.append((latency, ended))
        time.sleep(SETTLE_S)
    done = time.monotonic()
    bounds = [*moved[1:], done]
    motions = [
        Motion(lat, len(starts(watch, SCRIPTED, at, until)), end)
        for (lat, end), at, until in zip(results, moved, bounds, strict=True)
    ]
    return motions, done


def step_brightness(sim: SimulatorProcess, until: float, stop: threading.Event) -> list[float]:
    """Steps the brightness of STEPS through STEP_LEVELS until ``until``; the step times."""
    steps: list[float] = []
    i = 0
    while not stop.is_set() and time.monotonic() < until:
        sim.brightness(STEPS, STEP_LEVELS[i % len(STEP_LEVELS)])
        steps.append(time.monotonic())
        i += 1
        stop.wait(min(STEP_EVERY_S, max(0.0, until - time.monotonic())))
    sim.brightness(STEPS, 0.0)
    return steps


def measure_events(sim: SimulatorProcess, args: argparse.Namespace) -> bool:
    quiet_s = args.quiet_minutes * 60
    levels = ", ".join(f"{v:+g}" if v else "0" for v in STEP_LEVELS)
    print(
        f"recall and false events: {SCRIPTED} scene, {args.motions} scripted motions (object "
        f"{MOVE_S:g} s, stop, the event's end awaited); {NOISE} noisy scene and {STEPS} scene "
        f"with a brightness step every {STEP_EVERY_S:g} s ({levels}, ...), "
        f"both for {args.quiet_minutes:g} min at the same time; default motion settings "
        f"(overlays masked), no storage",
        flush=True,
    )
    cams = [SCRIPTED, NOISE, STEPS]
    options: dict[str, dict[str, object]] = {
        cid: {"motion": {"enabled": True, "masks": OVERLAYS}} for cid in cams
    }
    engine = CameraEngine(engine_config({c: sim.url(c) for c in cams}, camera_options=options))

    def frames(cid: str) -> int:
        watch = engine.runtimes[cid].motion
        assert watch is not None
        return watch.frames

    with running(engine) as watch:
        for cid in cams:
            watch.wait_for(cid, CameraState.STREAMING, 60)
        wait_until(lambda: all(frames(c) >= WARM_FRAMES for c in cams), 30, "frames looked at")
        t0 = time.monotonic()
        frames0 = {c: frames(c) for c in cams}
        stop = threading.Event()
        stepped: list[float] = []

        def stepper() -> None:
            stepped.extend(step_brightness(sim, t0 + quiet_s, stop))

        thread = threading.Thread(target=stepper, name="brightness-steps", daemon=True)
        thread.start()
        try:
            motions, _end = script(sim, watch, args.motions)
            time.sleep(max(0.0, t0 + quiet_s - time.monotonic()))
        finally:
            stop.set()
            thread.join(10)
        t1 = time.monotonic()
        looked = {c: (frames(c) - frames0[c]) / (t1 - t0) for c in cams}
        quiet = {c: starts(watch, c, t0, t0 + quiet_s) for c in (NOISE, STEPS)}
    return report_events(motions, quiet, stepped, looked, t0, args)


def report_events(
    motions: list[Motion],
    quiet: dict[str, list[float]],
    stepped: list[float],
    looked: dict[str, float],
    t0: float,
    args: argparse.Namespace,
) -> bool:
    print(f"  {'#':>3} {'event after start':>17} {'events':>6} {'end after stop':>14}")
    for i, m in enumerate(motions, 1):
        lat = f"{m.latency_s:.2f} s" if m.latency_s is not None else "none"
        end = f"{m.ended_s:.1f} s" if m.ended_s is not None else "none"
        print(f"  {i:>3} {lat:>17} {m.events:>6} {end:>14}")
    latencies = [m.latency_s for m in motions if m.latency_s is not None]
    hits = [
        m
        for m in motions
        if m.latency_s is not None and m.latency_s <= TARGET_LATENCY_S and m.events == 1
    ]
    recall = len(hits) / len(motions) if motions else float("nan")
    recall_ok = len(hits) == len(motions) > 0
    lat_words = (
        f"latency p50 {median(latencies):.2f} s, max {max(latencies):.2f} s"
        if latencies
        else "no event at all"
    )
    print(
        f"  target recall 100 % (exactly one event per motion, within {TARGET_LATENCY_S:g} s): "
        f"{verdict(recall_ok)} ({len(hits)}/{len(motions)} = {recall:.0%}; {lat_words}; "
        f"{sum(m.events for m in motions)} events in all)"
    )
    ok = recall_ok
    for cid, what in ((NOISE, "noisy scene"), (STEPS, "brightness steps")):
        events = quiet[cid]
        met = not events and looked[cid] >= 0.8 * MOTION_FPS
        ok &= met
        words = f"{len(events)} event(s)"
        if events:
            words += " at " + ", ".join(f"{at - t0:.0f} s" for at in events)
            if cid == STEPS and stepped:
                after = [min((at - s for s in stepped if s <= at), default=-1.0) for at in events]
                words += " (" + ", ".join(f"{a:.1f} s after a step" for a in after) + ")"
        print(
            f"  target 0 events on {cid} ({what}, {args.quiet_minutes:g} min, "
            f"{looked[cid]:.1f} frames/s looked at): {verdict(met)} ({words})"
        )
    print(f"  frames looked at on {SCRIPTED}: {looked[SCRIPTED]:.1f}/s", flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="10 quiet minutes, 5 windows")
    parser.add_argument("--cameras", type=int, default=8, help="cameras of the CPU part")
    parser.add_argument("--repeats", type=int, default=None, help="CPU windows (default 3; 5)")
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--motions", type=int, default=10, help="scripted motions")
    parser.add_argument(
        "--stream-fps",
        type=int,
        nargs="+",
        default=[5, 25],
        help="frame rates of the sub-stream in the CPU part; the target is judged at the "
        "first (a detection sub-stream at the detector's 5 fps, as cameras are set up for "
        "detection); the others are printed for information",
    )
    parser.add_argument(
        "--quiet-minutes", type=float, default=None, help="quiet cameras (default 2; 10 --long)"
    )
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (5 if args.long else 3)
    if args.quiet_minutes is None:
        args.quiet_minutes = 10.0 if args.long else 2.0
    # One simulator per sub-stream frame rate for the CPU part, then one for the events part.
    cpu_ok = True
    for i, fps in enumerate(args.stream_fps):
        with SimulatorProcess(
            args.cameras,
            picture=Picture.SCENE,
            size=SIZE,
            fps=fps,
            bitrate_kbps=BITRATE_KBPS,
            gop_seconds=1.0,
        ) as sim:
            cpu_ok &= measure_cpu(sim, list(sim.camera_names), args, fps, judged=i == 0)
    with SimulatorProcess(
        3,
        picture=Picture.SCENE,
        camera_pictures={NOISE: Picture.NOISY_SCENE},
        size=SIZE,
        fps=FPS,
        bitrate_kbps=BITRATE_KBPS,
        gop_seconds=1.0,
    ) as sim:
        events_ok = measure_events(sim, args)
    return 0 if cpu_ok and events_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
