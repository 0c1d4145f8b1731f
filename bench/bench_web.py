"""The web app's live view in a real browser: glass-to-glass latency, time to first frame, and
the server's CPU per viewer stream.

The simulator stamps every frame with the wall-clock time it made it (`nvrclockstamp`); the page
reads the stamp of every frame its `<video>` shows (`/static/frame_stamp.js`, injected with
Playwright into Debian's headless chromium): age = display time - the time the frame was made.
All cameras are 640x360 at 25 fps (ball, 1000 kbit/s); `nvr run` records every one of them.

1. MSE latency, per GOP (1 s and 4 s): 4 cameras, one page with 4 tiles. After every tile shows
   stamped frames and a 5 s settle, every shown frame's age for --minutes: p50/p90/p99 pooled
   over the tiles, and the drift = median of the last minute - median of the first (a fifth of
   the run each when shorter than 5 minutes). Targets: p90 <= 500 ms, |drift| <= 100 ms.
2. Time to first frame, per GOP, on the same page: layout 1, then ◀/▶ so one tile at a time
   appears (--appearances, a random 1-3 s pause between, so the keyframe phase varies). From
   `performance.now()` right before the click to the `expectedDisplayTime` of the first
   `requestVideoFrameCallback` of the tile's video. Target: p90 <= 500 ms.
3. Server CPU per viewer stream: 16 cameras (GOP 1 s) recorded by one `nvr run`; CPU (user +
   system, psutil) of the nvr process over fixed windows, interleaved a, b, a, b, ..., a:
   (a) recording only, no page; (b) recording + one page with 16 tiles (layout 16). Each b is
   compared with the mean of the a before and after it. Printed: recording CPU per camera =
   median(a)/16, the increase per viewer stream = median(b - a)/16, their ratio (target <= 10 %).
   The browser's and the simulator's cores are shown, not counted. Lost frames: after a clean
   stop, per camera the files open at or after the first window (ffprobe packet count) against
   fps x (last end - first start) in the catalog, so a gap between files counts as lost (target:
   within one frame per file); files closed before the first window (a reconnect during
   start-up) are left out and listed. Also the frames the API counted as received per window
   against fps x window (what the sender and receive path delivered; a deficit there is not the
   recorder's).
4. One camera alone on the GOP 1 s page, --single-seconds each: latency p50/p90 over MSE
   (layout 1: the grid's transport) and over WebRTC (dblclick: the single view, which tries
   WebRTC first) when the page offers it (`/static/webrtc.js` served and the tile's
   `dataset.transport` says "webrtc" through the whole run); otherwise "WebRTC: not available"
   and why. `single_view_latency` is the place for another transport.

A line of the nvr log with WARNING/ERROR/CRITICAL or a traceback, or a tile that never shows a
frame, is a PROBLEM (exit status 1, as for a missed target).

    .venv/bin/python bench/bench_web.py [--minutes 5] [--latency-cameras 4] [--cpu-cameras 16]
        [--gops 1 4] [--appearances 10] [--seconds 20] [--warmup 5] [--repeats 2]
        [--single-seconds 30] [--skip-cpu]              # --gops with no value: CPU part only
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from _common import (
    NvrService,
    cpu_seconds,
    ffprobe_streams,
    free_port,
    median,
    segments,
    temp_dir,
    verdict,
    write_config,
)
from playwright.sync_api import Browser, Page, sync_playwright

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import wait_until

CHROMIUM = "/usr/bin/chromium"
FPS = 25
SIZE = (640, 360)
LATENCY_P90_MS = 500.0
DRIFT_MS = 100.0
FIRST_FRAME_P90_MS = 500.0
VIEWER_SHARE = 0.10  # increase per viewer stream <= 10 % of recording CPU per camera
SETTLE_S = 5.0  # after every tile shows video, before latency counts
FIRST_FRAME_TIMEOUT_MS = 15000
BAD_LOG_LINE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|-WARNING \*\*|-CRITICAL \*\*")

# The page side: every tile's video reports each shown frame's age (ms) with the page's
# performance.now() when read, and counts its shown frames (stamped or not). drain() hands over
# what came since the last call.
INSTALL = """async () => {
  const m = await import('/static/frame_stamp.js');
  const bench = window.__bench = { ages: {}, frames: {}, watching: new Map() };
  // again: stop the videos' watchers and start new ones (a watcher ends if its video's
  // requestVideoFrameCallback chain was dropped).
  bench.watchAll = (again = false) => {
    for (const tile of document.querySelectorAll('.tile')) {
      const video = tile.querySelector('video'), id = tile.dataset.camera;
      if (video === null || (bench.watching.has(video) && !again)) continue;
      bench.watching.get(video)?.();
      let stopped = false;
      const stopAges = m.watchLatency(
        video, age => (bench.ages[id] ??= []).push([performance.now(), age]));
      const count = () => {
        if (stopped) return;
        bench.frames[id] = (bench.frames[id] || 0) + 1;
        video.requestVideoFrameCallback(count);
      };
      video.requestVideoFrameCallback(count);
      bench.watching.set(video, () => { stopped = true; stopAges(); });
    }
  };
  bench.drain = () => {
    const out = { ages: bench.ages, frames: bench.frames, now: performance.now() };
    bench.ages = {}; bench.frames = {};
    return out;
  };
  bench.watchAll();
}"""

# Click `selector`; for every tile the click un-hides, the ms from right before the click to
# the expected display time of its video's first frame (null: none within the timeout).
FIRST_FRAME = """async ([selector, timeoutMs]) => {
  const shown = () => [...document.querySelectorAll('.tile')].filter(t => !t.hidden);
  const before = new Set(shown().map(t => t.dataset.camera));
  const t0 = performance.now();
  document.querySelector(selector).click();
  const appeared = shown().filter(t => !before.has(t.dataset.camera));
  const first = tile => new Promise(resolve => {
    const timer = setTimeout(() => resolve([tile.dataset.camera, null]), timeoutMs);
    tile.querySelector('video').requestVideoFrameCallback((_now, meta) => {
      clearTimeout(timer);
      resolve([tile.dataset.camera, meta.expectedDisplayTime - t0]);
    });
  });
  return Promise.all(appeared.map(first));
}"""

TRANSPORT = """(id) => {
  const tile = document.querySelector(`.tile[data-camera="${id}"]`);
  return tile === null ? null : (tile.dataset.transport ?? '');
}"""


# ---- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Sample:
    at_s: float  # since the measurement began (page clock)
    age_ms: float
    camera: str


@dataclass(frozen=True, slots=True)
class Latency:
    samples: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    first_ms: float  # median of the first minute (or fifth)
    last_ms: float  # median of the last minute (or fifth)
    edge_s: float  # the length of "first" and "last"
    shown_fps: float  # frames shown per second per tile
    unstamped: int  # shown frames whose stamp could not be read
    per_camera: dict[str, int]  # stamped frames per camera

    @property
    def drift_ms(self) -> float:
        return self.last_ms - self.first_ms


def latency_of(samples: Sequence[Sample], shown: int, seconds: float, tiles: int) -> Latency:
    ages = [s.age_ms for s in samples]
    edge = 60.0 if seconds >= 300 else seconds / 5
    first = [s.age_ms for s in samples if s.at_s < edge]
    last = [s.age_ms for s in samples if s.at_s >= seconds - edge]
    per_camera: dict[str, int] = {}
    for s in samples:
        per_camera[s.camera] = per_camera.get(s.camera, 0) + 1
    return Latency(
        len(ages),
        percentile(ages, 50),
        percentile(ages, 90),
        percentile(ages, 99),
        median(first),
        median(last),
        edge,
        shown / seconds / tiles if seconds > 0 and tiles else math.nan,
        max(0, shown - len(ages)),
        per_camera,
    )


@dataclass
class Problems:
    lines: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.lines.append(text)
        print(f"  PROBLEM: {text}", flush=True)

    def check_log(self, log: Path, limit: int = 6) -> None:
        bad = [line for line in log.read_text(errors="replace").splitlines()
               if BAD_LOG_LINE.search(line)]  # fmt: skip
        for line in bad[:limit]:
            self.add(f"nvr log: {line}")
        if len(bad) > limit:
            self.add(f"nvr log: ... {len(bad) - limit} more such lines")


# ---- the server and the page -----------------------------------------------------------------


def simulator(cameras: int, gop_s: float, args: argparse.Namespace) -> SimulatorProcess:
    return SimulatorProcess(
        cameras, fps=FPS, size=SIZE, bitrate_kbps=args.bitrate, gop_seconds=gop_s
    )


@contextlib.contextmanager
def recording_nvr(
    folder: Path, sim: SimulatorProcess, problems: Problems, segment_s: int = 60
) -> Iterator[NvrService]:
    """`nvr run` recording every camera of ``sim``, its API and web app on a free port."""
    port = free_port()
    urls = {name: sim.url(name) for name in sim.camera_names}
    config = write_config(folder, urls, api_port=port, storage={"segment_seconds": segment_s})
    log = folder / "nvr.log"
    nvr = NvrService(config, port, log)
    try:
        wait_until(lambda: nvr.all_recording(len(urls)), 90, "every camera recording")
        yield nvr
    finally:
        nvr.close()
        problems.check_log(log)


def base_url(nvr: NvrService) -> str:
    return f"http://127.0.0.1:{nvr.api_port}"


def open_page(browser: Browser, nvr: NvrService, cameras: int, per_page: int) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(base_url(nvr) + "/")
    page.wait_for_function(f"document.querySelectorAll('.tile').length === {cameras}")
    page.click(f'#layouts button[data-per-page="{per_page}"]')
    page.evaluate(INSTALL)
    return page


@dataclass(frozen=True, slots=True)
class Drained:
    ages: dict[str, list[tuple[float, float]]]  # camera -> (page ms, age ms)
    frames: dict[str, int]  # camera -> frames shown
    now_ms: float  # the page's performance.now()


def drain(page: Page) -> Drained:
    raw: Any = page.evaluate("() => window.__bench.drain()")
    ages = {str(k): [(float(t), float(a)) for t, a in v] for k, v in raw["ages"].items()}
    frames = {str(k): int(v) for k, v in raw["frames"].items()}
    return Drained(ages, frames, float(raw["now"]))


def wait_for_video(
    page: Page, cameras: Sequence[str], timeout_s: float, problems: Problems
) -> None:
    """Until every tile of ``cameras`` showed a stamped frame; the ones that never do are a
    PROBLEM (the run goes on without them)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not seen.issuperset(cameras):
        page.wait_for_timeout(250)
        seen.update(k for k, v in drain(page).ages.items() if v)
    missing = sorted(set(cameras) - seen)
    if missing:
        problems.add(f"no stamped frame within {timeout_s:g} s in tile(s) {', '.join(missing)}")


def collect(page: Page, seconds: float, cameras: Sequence[str] | None = None) -> Latency:
    """Every shown frame's age for ``seconds`` (of ``cameras``, default all)."""
    start = drain(page).now_ms  # and forget what came before
    samples: list[Sample] = []
    shown = 0
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        page.wait_for_timeout(min(5.0, left) * 1000)
        got = drain(page)
        for cam, rows in got.ages.items():
            if cameras is None or cam in cameras:
                samples += [Sample((t - start) / 1000, age, cam) for t, age in rows]
        shown += sum(n for cam, n in got.frames.items() if cameras is None or cam in cameras)
    tiles = len(cameras) if cameras is not None else len({s.camera for s in samples})
    return latency_of(samples, shown, seconds, tiles)


# ---- 1, 2 and 4: one GOP setting ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GopResult:
    gop_s: float
    latency: Latency
    first_frames_ms: list[float | None]  # None: no frame within the timeout
    single: dict[str, Latency | str]  # transport -> latency, or why not measured


def first_frames(page: Page, cameras: int, count: int, rng: random.Random) -> list[float | None]:
    """Layout 1, then ▶ to the last page and ◀ back, and so on: one tile appears per click."""
    page.click('#layouts button[data-per-page="1"]')
    page.wait_for_timeout(2000)
    results: list[float | None] = []
    at, step = 0, 1
    while len(results) < count:
        if not 0 <= at + step < cameras:
            step = -step
        at += step
        page.wait_for_timeout(rng.uniform(1000, 3000))  # the keyframe phase varies
        selector = "#next" if step > 0 else "#prev"
        got: Any = page.evaluate(FIRST_FRAME, [selector, FIRST_FRAME_TIMEOUT_MS])
        for _camera, ms in got:
            results.append(None if ms is None else float(ms))
    return results


def webrtc_offered(nvr: NvrService) -> bool:
    try:
        return httpx.get(base_url(nvr) + "/static/webrtc.js", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def single_view_latency(
    page: Page, camera: str, index: int, transport: str, seconds: float
) -> Latency | str:
    """THE PLACE FOR WEBRTC: latency of camera ``camera`` (tile ``index``) seen alone, over
    ``transport``, or why it was not measured. "webrtc": the single view (dblclick the tile),
    which tries WebRTC first and falls back to MSE; "mse": layout 1 on the camera's page (the
    grid's transport, one tile). The tile's `dataset.transport` says what the page uses."""
    tile = f'.tile[data-camera="{camera}"]'
    if transport == "webrtc":
        page.dispatch_event(tile, "dblclick")
    else:
        page.click('#layouts button[data-per-page="1"]')
        for _ in range(index + len(page.query_selector_all(".tile"))):
            page.click("#prev")  # to the first page
        for _ in range(index):
            page.click("#next")
    try:
        deadline = time.monotonic() + 15
        while (now := page.evaluate(TRANSPORT, camera)) != transport:
            if time.monotonic() > deadline:
                return f"the tile's transport stayed {now!r}"
            page.wait_for_timeout(200)
        page.evaluate("() => window.__bench.watchAll(true)")  # the view may have a new <video>
        page.wait_for_timeout(SETTLE_S * 1000)
        result = collect(page, seconds, [camera])
        if (now := page.evaluate(TRANSPORT, camera)) != transport:
            return f"the tile went over to {now!r}"
        return result if result.samples else "no stamped frame shown"
    finally:
        if transport == "webrtc":
            page.dispatch_event(tile, "dblclick")  # back to the grid
        page.click('#layouts button[data-per-page="4"]')
        page.wait_for_timeout(1000)


def gop_run(
    browser: Browser, gop_s: float, args: argparse.Namespace, problems: Problems
) -> GopResult:
    n = args.latency_cameras
    seconds = args.minutes * 60
    print(
        f"GOP {gop_s:g} s: {n} cameras, one page with {min(n, 4)} tiles, {seconds:g} s", flush=True
    )
    with (
        simulator(n, gop_s, args) as sim,
        temp_dir(f"web-gop{gop_s:g}") as folder,
        recording_nvr(folder, sim, problems) as nvr,
    ):
        page = open_page(browser, nvr, n, 4)
        try:
            wait_for_video(page, sim.camera_names[:4], 30, problems)
            page.wait_for_timeout(SETTLE_S * 1000)
            latency = collect(page, seconds, sim.camera_names[:4])
            rng = random.Random(f"{args.seed}-{gop_s}")
            firsts = first_frames(page, n, args.appearances, rng)
            page.click('#layouts button[data-per-page="4"]')
            single: dict[str, Latency | str] = {}
            if gop_s == min(args.gops):
                wait_for_video(page, sim.camera_names[:1], 30, problems)
                camera = sim.camera_names[0]
                for transport in ("mse", "webrtc"):
                    if transport == "webrtc" and not webrtc_offered(nvr):
                        single[transport] = "/static/webrtc.js is not served"
                        continue
                    single[transport] = single_view_latency(
                        page, camera, 0, transport, args.single_seconds
                    )
        finally:
            page.close()
    return GopResult(gop_s, latency, firsts, single)


# ---- 3: CPU per viewer stream ------------------------------------------------------------------


def browser_pids() -> list[int]:
    """Chromium's processes (children of Playwright's driver, below this process)."""
    pids = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name().startswith("chrom"):
                pids.append(child.pid)
    return pids


def cpu_of(pids: Sequence[int]) -> dict[int, float]:
    result = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            result[pid] = cpu_seconds([pid])
    return result


@dataclass(frozen=True, slots=True)
class Window:
    viewing: bool
    cores: float  # nvr run
    browser: float  # chromium, every process (not counted)
    simulator: float  # (not counted)
    received_share: float  # frames the API counted / (cameras x fps x window)
    shown_fps: float  # frames the page showed per tile per second (b only)
    load: float


def received_frames(nvr: NvrService) -> int:
    total = 0
    for camera in nvr.cameras():
        frames = camera["frames"]
        assert isinstance(frames, int)
        total += frames
    return total


def window(nvr: NvrService, sim: SimulatorProcess, page: Page | None, seconds: float) -> Window:
    cameras = len(sim.camera_names)
    browsers = browser_pids()
    if page is not None:
        drain(page)
    b0, frames0 = cpu_of(browsers), received_frames(nvr)
    cpu0, sim0, t0 = cpu_seconds([nvr.process.pid]), cpu_seconds([sim.pid]), time.monotonic()
    time.sleep(seconds)  # the fixed measurement window
    cpu1, sim1, t1 = cpu_seconds([nvr.process.pid]), cpu_seconds([sim.pid]), time.monotonic()
    b1, frames1 = cpu_of(browser_pids()), received_frames(nvr)
    shown = sum(drain(page).frames.values()) if page is not None else 0
    wall = t1 - t0
    return Window(
        page is not None,
        (cpu1 - cpu0) / wall,
        sum(v - b0.get(pid, 0.0) for pid, v in b1.items()) / wall,
        (sim1 - sim0) / wall,
        (frames1 - frames0) / (cameras * FPS * wall),
        shown / wall / cameras,
        os.getloadavg()[0],
    )


@dataclass(frozen=True, slots=True)
class CameraFrames:
    """One camera's files that were open during the windows (those closed before are start-up)."""

    camera: str
    files: int
    frames: int  # video packets of those files
    expected: float  # fps x (last end - first start): a gap between files counts as lost

    @property
    def lost(self) -> float:
        return self.expected - self.frames


@dataclass(frozen=True, slots=True)
class CpuResult:
    cameras: int
    windows: list[Window]
    frames: list[CameraFrames]
    startup_files: list[str]  # closed before the first window (a reconnect at start-up)


def cpu_run(browser: Browser, args: argparse.Namespace, problems: Problems) -> CpuResult:
    n = args.cpu_cameras
    print(
        f"CPU per viewer stream: {n} cameras, GOP 1 s, windows of {args.seconds:g} s, "
        f"a/b x {args.repeats} + a",
        flush=True,
    )
    windows: list[Window] = []
    with simulator(n, 1.0, args) as sim, temp_dir("web-cpu") as folder:
        with recording_nvr(folder, sim, problems, segment_s=3600) as nvr:
            time.sleep(args.warmup)
            measured_from = time.time()
            for i in range(args.repeats + 1):
                windows.append(window(nvr, sim, None, args.seconds))
                print_window(windows[-1], n)
                if i == args.repeats:
                    break
                page = open_page(browser, nvr, n, 16)
                try:
                    wait_for_video(page, sim.camera_names, 60, problems)
                    page.wait_for_timeout(args.warmup * 1000)
                    windows.append(window(nvr, sim, page, args.seconds))
                    print_window(windows[-1], n)
                finally:
                    page.close()
                time.sleep(args.warmup)  # the viewers gone: their sockets closed
        # nvr run stopped cleanly: every file is closed.
        spans: dict[str, list[tuple[float, float, int]]] = {}
        startup: list[str] = []
        for row in segments(folder / "rec"):
            if row.end_utc is None:
                problems.add(f"{row.path.name}: not closed ({row.status})")
            elif row.end_utc < measured_from:
                startup.append(f"{row.path.name} ({row.frames} frames)")
            else:
                streams, _ = ffprobe_streams(row.path)
                video = sum(s.packets for s in streams if s.kind == "video")
                spans.setdefault(row.camera, []).append((row.start_utc, row.end_utc, video))
    frames = [
        CameraFrames(
            cam,
            len(rows),
            sum(r[2] for r in rows),
            FPS * (max(r[1] for r in rows) - min(r[0] for r in rows)),
        )
        for cam, rows in sorted(spans.items())
    ]
    return CpuResult(n, windows, frames, startup)


def print_window(w: Window, cameras: int) -> None:
    what = f"b: recording + {cameras} tiles" if w.viewing else "a: recording only"
    shown = f"{w.shown_fps:5.1f}" if w.viewing else "    -"
    print(
        f"  {what:<26} nvr {w.cores:.3f} cores  browser {w.browser:.2f}  sim {w.simulator:.2f}  "
        f"received {w.received_share:.3f} of fps  shown/tile {shown} fps  load {w.load:.1f}",
        flush=True,
    )


# ---- the report ------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "  -" if value is None or math.isnan(value) else f"{value:.0f}"


def report_gops(results: Sequence[GopResult]) -> bool:
    ok = True
    print(
        "\nMSE glass-to-glass latency, ms (4 tiles; drift = median of the last vs the first "
        "minute, or fifth when shorter):"
    )
    print(
        f"  {'GOP':>4} {'frames':>7} {'p50':>5} {'p90':>5} {'p99':>5} {'first':>6} {'last':>5} "
        f"{'drift':>6} {'shown fps':>9} {'unread':>6}  targets p90 <= {LATENCY_P90_MS:g}, "
        f"|drift| <= {DRIFT_MS:g}"
    )
    for r in results:
        lat = r.latency
        tiles = ", ".join(f"{c} {k}" for c, k in sorted(lat.per_camera.items()))
        met = lat.p90_ms <= LATENCY_P90_MS and abs(lat.drift_ms) <= DRIFT_MS
        ok &= met
        print(
            f"  {r.gop_s:>3g}s {lat.samples:>7} {ms(lat.p50_ms):>5} {ms(lat.p90_ms):>5} "
            f"{ms(lat.p99_ms):>5} {ms(lat.first_ms):>6} {ms(lat.last_ms):>5} "
            f"{lat.drift_ms:>+6.0f} {lat.shown_fps:>9.1f} {lat.unstamped:>6}  {verdict(met)}  "
            f"(first/last {lat.edge_s:g} s; frames per tile: {tiles})"
        )
    print("\nTime to first frame after a tile appears, ms (layout 1, ◀/▶):")
    print(f"  {'GOP':>4} {'n':>3} {'p50':>5} {'p90':>5} {'max':>5} {'none':>5}  target p90 <= 500")
    for r in results:
        got = [v for v in r.first_frames_ms if v is not None]
        missing = len(r.first_frames_ms) - len(got)
        p90 = percentile(got, 90)
        met = missing == 0 and p90 <= FIRST_FRAME_P90_MS
        ok &= met
        print(
            f"  {r.gop_s:>3g}s {len(r.first_frames_ms):>3} {ms(percentile(got, 50)):>5} "
            f"{ms(p90):>5} {ms(max(got, default=math.nan)):>5} {missing:>5}  {verdict(met)}  "
            f"({', '.join(ms(v) for v in r.first_frames_ms)})"
        )
    for r in results:
        for transport, view in r.single.items():
            name = "WebRTC" if transport == "webrtc" else "MSE"
            if isinstance(view, str):
                print(f"Single view, GOP {r.gop_s:g} s, {name}: not available ({view})")
            else:
                print(
                    f"Single view, GOP {r.gop_s:g} s, {name}: p50 {ms(view.p50_ms)} ms, p90 "
                    f"{ms(view.p90_ms)} ms ({view.samples} frames, {view.shown_fps:.1f} fps shown)"
                )
    return ok


def report_cpu(r: CpuResult) -> bool:
    a = [w.cores for w in r.windows if not w.viewing]
    b = [w.cores for w in r.windows if w.viewing]
    # Each b against the mean of the a just before and just after it (drift on a shared machine).
    increases = [b[i] - (a[i] + a[i + 1]) / 2 for i in range(len(b))]
    per_camera = median(a) / r.cameras
    per_viewer = median(increases) / r.cameras
    share = per_viewer / per_camera if per_camera > 0 else math.inf
    met = share <= VIEWER_SHARE
    print(f"\nServer CPU, {r.cameras} cameras (nvr run only; cores):")
    print(f"  a recording only:      {', '.join(f'{v:.3f}' for v in a)}")
    print(f"  {f'b + {r.cameras} tiles:':<22} {', '.join(f'{v:.3f}' for v in b)}")
    print(f"  b - mean(a around):    {', '.join(f'{v:+.3f}' for v in increases)}")
    print(
        f"  recording per camera {per_camera:.4f} cores; increase per viewer stream "
        f"{per_viewer:.4f} cores = {share:.1%} of it; target <= {VIEWER_SHARE:.0%}: {verdict(met)}"
    )
    files = sum(f.files for f in r.frames)
    lost = sum(f.lost for f in r.frames)
    worst = max(r.frames, key=lambda f: f.lost, default=None)
    frames_ok = len(r.frames) == r.cameras and lost <= files
    print(
        f"  recorded frames from the first window on, {len(r.frames)} cameras, {files} files: "
        f"{sum(f.frames for f in r.frames)} vs fps x span {sum(f.expected for f in r.frames):.0f}: "
        f"lost {lost:+.1f} (worst {worst.camera if worst else '-'} "
        f"{worst.lost if worst else math.nan:+.1f}); target within one frame per file: "
        f"{verdict(frames_ok)}"
    )
    if r.startup_files:
        print(
            f"  left out: {len(r.startup_files)} file(s) closed before the first window (a "
            f"reconnect during start-up): {', '.join(r.startup_files)}"
        )
    shown = [w.shown_fps for w in r.windows if w.viewing]
    received_b = [w.received_share for w in r.windows if w.viewing]
    received_a = [w.received_share for w in r.windows if not w.viewing]
    print(
        f"  received frames / (fps x window): a {median(received_a):.3f}, "
        f"b {median(received_b):.3f}; the page showed {median(shown):.1f} fps per tile in b"
    )
    return met and frames_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="accepted (the defaults are long)")
    parser.add_argument("--minutes", type=float, default=5.0, help="latency run per GOP")
    parser.add_argument(
        "--gops", type=float, nargs="*", default=[1.0, 4.0], help="none: no latency runs"
    )
    parser.add_argument("--latency-cameras", type=int, default=4)
    parser.add_argument("--cpu-cameras", type=int, default=16)
    parser.add_argument("--appearances", type=int, default=10, help="per GOP")
    parser.add_argument("--seconds", type=float, default=20.0, help="CPU window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=2, help="b windows (a around each)")
    parser.add_argument("--single-seconds", type=float, default=30.0)
    parser.add_argument("--bitrate", type=int, default=1000, help="kbit/s per camera")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args(argv)
    print(
        f"web live view: {SIZE[0]}x{SIZE[1]} {FPS} fps ball {args.bitrate} kbit/s, headless "
        f"chromium, {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    problems = Problems()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            gops = [gop_run(browser, gop, args, problems) for gop in args.gops]
            cpu = None if args.skip_cpu else cpu_run(browser, args, problems)
        finally:
            browser.close()
    ok = report_gops(gops) if gops else True
    if cpu is not None:
        ok &= report_cpu(cpu)
    if problems.lines:
        print(f"  {len(problems.lines)} PROBLEM(s), see above")
    return 0 if ok and not problems.lines else 1


if __name__ == "__main__":
    raise SystemExit(main())
