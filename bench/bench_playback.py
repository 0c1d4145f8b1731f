"""The web app's recordings page: seek to a shown frame, and scrubbing previews, over a day of
24 h of 60 s segments, against a page without chunks and against ffmpeg per preview.

The day: one 60 s segment in the recorder's format (Matroska, H.264 1280x720 25 fps ~2 Mbit/s,
a key frame a second, snow, `nvrclockstamp` when built) made offline at full speed, then
hardlinked as every 60 s segment of camera cam1 on yesterday (local day: 1,440 files named as
the recorder names them) with a catalog row each. The real app (NvrApp + ApiServer; the camera's
URL is unreachable, so it just reconnects now and then) runs in a process of its own (its CPU is
measured); the page is /recordings?day=... in Debian's headless chromium, driven by Playwright.
One file hardlinked: its bytes stay in the page cache (a cold disk adds its reads: ~1.7 MB for a
first chunk, one GOP for a preview).

1. Seek, --seeks random instants across the day, interleaved with the baseline (order
   alternating), after 2 warm-up seeks each: from calling `window.nvrRecordings.playAt(cam, t)`
   to its resolution (the frame of instant t on screen: the player's frame callback), with the
   page's `performance.now()`; after each, the page settles (the read-ahead fetch ends) and
   pauses. The shown frame must be within one frame interval before t (a PROBLEM otherwise, as
   is a seek whose frame never showed). Baseline, in the same page: the page's own player class
   on a second <video> whose chunk request asks for the whole 60 s segment from its start
   (span=60, what a page without chunking does) before seeking to t. Server alone: HTTP GET of
   the first chunk as the page asks it (start=t, span=6), and of the whole segment (span=60),
   over keep-alive from this process. Target: page p90 <= 500 ms.
2. Previews. HTTP: `/api/cameras/cam1/preview?at=` for --previews random instants (each a new
   segment: uncached), then the same instants again (cached). Page: the timeline set to a
   1-minute window (random minute, 5 pointer positions a window), the pointer moved to a
   position once (Playwright: one pointermove), timed from the event's timeStamp to the JPEG of
   that instant decoded in `#preview img` and the next animation frame; then the same positions
   again (re-visited: the browser's cache answers, max-age=3600). Drags (what the issue says:
   "dragging over the timeline shows a still of that moment within 100 ms"): synthetic
   pointermoves, one per animation frame, across a 1-minute window in --drag-seconds; per
   frame, from the first move until the last move's preview shows, the age of the moment on
   screen (how long ago the pointer was there). --drags rounds of three: the page as it is
   over a fresh minute (the target), the same minute again (its previews in the server's
   cache: as if made at recording time), and a fresh minute with the page's `scrub` wrapped
   by the benchmark to keep one preview request in flight (a sketch of a fix, not the page).
   Baseline: `ffmpeg -ss OFFSET -i SEGMENT -frames:v 1 -vf scale=320:-1 -f image2 -` per
   request (wall and CPU). Targets: p90 <= 100 ms, pointer moved to an uncached instant; and
   the age's p90 while dragging over a fresh minute.
3. CPU per preview: the server process's CPU over the uncached HTTP previews, less its idle
   rate; `preview_jpeg` alone in this process; and what previews at recording time would cost:
   one per key frame (GOP 1 s: one a second a camera) through a steady keyframes-only pipeline
   (parse -> drop delta frames -> avdec_h264 -> scale 320 -> jpegenc) over the segment, less
   the same pipeline's reading and parsing alone. Printed: ms CPU per preview, cores per camera
   and per 16 cameras, JPEG bytes per camera and day.

A playback or preview error in the server's log, a seek that showed no frame or the wrong one,
is a PROBLEM (exit status 1, as for a missed target).

    .venv/bin/python bench/bench_playback.py [--seeks 30] [--previews 30] [--drags 3]
        [--drag-seconds 2] [--quick] [--seed 15] [--segment FILE]   # --quick: 10, 15, 2
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import random
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
from _common import cpu_seconds, temp_dir, verdict
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from nvr_gstreamer import web
from nvr_gstreamer.gst.loop import init_gstreamer
from nvr_gstreamer.storage.catalog import CATALOG_NAME, Catalog
from nvr_gstreamer.storage.layout import segment_path
from nvr_gstreamer.storage.timeline import day_bounds

CHROMIUM = "/usr/bin/chromium"
CAMERA = "cam1"
WIDTH, HEIGHT, FPS, GOP_FRAMES, BITRATE_KBPS = 1280, 720, 25, 25, 2000
SEGMENT_S = 60
FRAME_S = 1 / FPS
# The span of the page's first chunk after a seek, as the page asks it.
TIMELINE_JS = Path(web.__file__).parent / "static" / "timeline.js"
FIRST_SPAN_S = int(re.findall(r"FIRST_SPAN_S = (\d+)", TIMELINE_JS.read_text())[0])
SEEK_P90_MS = 500.0
PREVIEW_P90_MS = 100.0
MOVES_PER_WINDOW = 5
SERVE_LOG = "serve.log"
BAD_LOG_LINE = re.compile(
    r"Traceback|nvr_gstreamer\.(api|gst\.playback|gst\.preview)\S* (WARNING|ERROR)"
)


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


# ---- the day's media and catalog ------------------------------------------------------------


def make_segment(path: Path, pattern: str) -> tuple[float, bool]:
    """One 60 s segment as the recorder writes it (matroskamux offset-to-zero), made offline at
    full speed: (seconds it took, whether frames carry the nvrclockstamp)."""
    from gi.repository import Gst

    stamp = Gst.ElementFactory.find("nvrclockstamp") is not None
    parts = [
        f"videotestsrc num-buffers={SEGMENT_S * FPS} pattern={pattern}",
        f"video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate={FPS}/1",
        *(["nvrclockstamp"] if stamp else []),
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={GOP_FRAMES} "
        f"bitrate={BITRATE_KBPS}",
        "h264parse",
        "matroskamux offset-to-zero=true writing-app=nvr_gstreamer",
        f"filesink location={path}",
    ]
    t0 = time.perf_counter()
    pipeline = Gst.parse_launch(" ! ".join(parts))
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    pipeline.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        raise RuntimeError(
            f"making the segment failed: {msg.parse_error()[0] if msg else 'timeout'}"
        )
    return time.perf_counter() - t0, stamp


def probe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip())


@dataclass(frozen=True, slots=True)
class Day:
    day: date  # local
    start_utc: float
    end_utc: float
    starts: list[float]  # every segment's start (UTC), 60 s apart
    paths: list[Path]

    def segment_at(self, t: float) -> int:
        return min(len(self.starts) - 1, int((t - self.start_utc) // SEGMENT_S))


def fill_day(root: Path, day: date, source: Path, duration_s: float) -> Day:
    """``source`` hardlinked as every 60 s segment of ``day`` (local), each with a closed row."""
    start, end = day_bounds(day)
    root.mkdir(parents=True)
    Catalog(root).close()  # the schema
    starts = [start + i * SEGMENT_S for i in range(int((end - start) // SEGMENT_S))]
    paths, rows = [], []
    size = source.stat().st_size
    for s in starts:
        path = segment_path(root, CAMERA, datetime.fromtimestamp(s), lambda p: p.exists())
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, path)
        paths.append(path)
        rel = path.relative_to(root).as_posix()
        rows.append((CAMERA, rel, s, s + duration_s, duration_s, size, SEGMENT_S * FPS, "closed"))
    with contextlib.closing(sqlite3.connect(root / CATALOG_NAME)) as db, db:
        db.executemany(
            "INSERT INTO segments (camera, path, start_utc, end_utc, duration_s, size_bytes,"
            " frames, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return Day(day, start, end, starts, paths)


# ---- the server: NvrApp + ApiServer in a process of its own --------------------------------


def serve(root: Path) -> None:
    """The server process: the app over ``root`` until stdin closes."""
    from nvr_gstreamer.api.server import ApiServer
    from nvr_gstreamer.app import NvrApp
    from nvr_gstreamer.testing.engine import engine_config

    logging.basicConfig(
        filename=root.parent / SERVE_LOG,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    config = engine_config(
        {CAMERA: f"rtsp://127.0.0.1:9/{CAMERA}"},  # nothing listens: the camera reconnects
        storage=root,
        storage_options={"min_free_percent": 0},
        initial_delay_seconds=5,
        max_delay_seconds=30,
    )
    config = config.model_copy(update={"api": config.api.model_copy(update={"port": 0})})
    app = NvrApp(config)
    api = ApiServer(app)
    app.start()
    api.start()
    print(api.url, flush=True)
    try:
        sys.stdin.read()
    finally:
        api.stop()
        app.stop()


class Server:
    def __init__(self, root: Path) -> None:
        t0 = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.close()
            raise RuntimeError("the server process did not start (see serve.log)")
        self.up_s = time.perf_counter() - t0
        self.log = root.parent / SERVE_LOG

    def cpu(self) -> float:
        return cpu_seconds([self.process.pid])

    def problems(self) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if BAD_LOG_LINE.search(line)]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---- 1: seeks ----------------------------------------------------------------------------------

# After the page loaded: __bench.seekPage(cam, t) times the page's own playAt; seekWhole(cam, t,
# segStart) the same player class on a second <video>, its chunk request asking for the whole
# segment (span=60 from the segment's start), without read-ahead. Each returns the time to the
# frame of t on screen, the shown frame's wall time (null: no frame callback, the player's
# 1 s fallback resolved it), the chunk fetch's own time (Resource Timing) and size.
SEEK_INSTALL = """() => {
  const page = window.nvrRecordings, main = page.player, Player = main.constructor;
  const video = document.createElement('video');
  video.muted = true; video.playsInline = true;
  const box = main.video.getBoundingClientRect();
  video.style.cssText = `position:fixed;left:0;top:0;width:${box.width}px;height:${box.height}px`;
  document.body.appendChild(video);
  const whole = new Player(video);
  whole.tick = async () => {};
  whole.segStart = 0;
  whole.fetchChunk = (camera, _t, _span) =>
    Player.prototype.fetchChunk.call(whole, camera, whole.segStart, 60);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  async function timed(player, run, t) {
    let shown = null;
    player.onSeekShown = (meta) => { shown = player.origin + meta.mediaTime; };
    const buffered = player.camera !== null && player.isBuffered(t);
    performance.clearResourceTimings();
    const t0 = performance.now();
    await run();
    const ms = performance.now() - t0;
    player.onSeekShown = () => {};
    const r = performance.getEntriesByType('resource')
      .find((e) => e.name.includes('/playback?')) ?? null;
    await sleep(300);  // the read-ahead fetch starts within a tick (100 ms) ...
    while (player.fetching) await sleep(50);  // ... and ends before the next seek
    player.video.pause();
    return { ms, shown, buffered, note: player.note,
             fetchMs: r ? r.responseEnd - r.startTime : null, bytes: r ? r.encodedBodySize : 0 };
  }
  window.__bench = {
    seekPage: ([camera, t]) => timed(main, () => page.playAt(camera, t), t),
    seekWhole: ([camera, t, segStart]) => {
      whole.segStart = segStart;
      return timed(whole, () => whole.play(camera, t, page.dayWindow().start), t);
    },
  };
}"""


@dataclass
class SeekRuns:
    ms: list[float]
    fetch_ms: list[float]
    bytes: list[int]
    not_shown: int = 0
    wrong: int = 0
    buffered: int = 0


def seek_once(page: Page, fn: str, args: list[Any], t: float, runs: SeekRuns | None) -> None:
    got = page.evaluate(f"(a) => window.__bench.{fn}(a)", args)
    if runs is None:
        return
    if got["buffered"]:
        runs.buffered += 1
    if got["shown"] is None:
        runs.not_shown += 1
        print(f"    PROBLEM: {fn} at {t:.3f}: no frame shown ({got['note']!r})", flush=True)
    elif not t - FRAME_S - 0.002 <= got["shown"] <= t + 0.002:
        runs.wrong += 1
        print(f"    PROBLEM: {fn} at {t:.3f}: showed the frame of {got['shown']:.3f}", flush=True)
    runs.ms.append(got["ms"])
    if got["fetchMs"] is not None:
        runs.fetch_ms.append(got["fetchMs"])
        runs.bytes.append(got["bytes"])


def page_seeks(page: Page, day: Day, instants: list[float]) -> tuple[SeekRuns, SeekRuns]:
    chunked, whole = SeekRuns([], [], []), SeekRuns([], [], [])
    page.evaluate(SEEK_INSTALL)
    rng = random.Random(0)
    for _ in range(2):  # warm-up: decoders, MSE, the server's first requests
        t = rng.uniform(day.start_utc, day.end_utc - 1)
        seek_once(page, "seekPage", [CAMERA, t], t, None)
        seek_once(page, "seekWhole", [CAMERA, t, day.starts[day.segment_at(t)]], t, None)
    for i, t in enumerate(instants):
        seg = day.starts[day.segment_at(t)]
        both = [("seekPage", [CAMERA, t], chunked), ("seekWhole", [CAMERA, t, seg], whole)]
        for fn, args, runs in both if i % 2 == 0 else both[::-1]:
            seek_once(page, fn, args, t, runs)
    return chunked, whole


def http_seeks(
    url: str, day: Day, instants: list[float]
) -> tuple[list[float], list[float], list[int]]:
    """The first chunk as the page asks for it, and the whole segment: ms each, chunk sizes."""
    first, whole, sizes = [], [], []
    with httpx.Client(base_url=url, timeout=60) as http:

        def get(start: float, span: float) -> float:
            params = {"start": f"{start:.6f}", "span": span}
            t0 = time.perf_counter()
            r = http.get(f"/api/cameras/{CAMERA}/playback", params=params)
            ms = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            if span == FIRST_SPAN_S:
                sizes.append(len(r.content))
            return ms

        get(instants[0], FIRST_SPAN_S)  # warm-up
        for i, t in enumerate(instants):
            seg = day.starts[day.segment_at(t)]
            if i % 2 == 0:
                first.append(get(t, FIRST_SPAN_S))
                whole.append(get(seg, SEGMENT_S))
            else:
                whole.append(get(seg, SEGMENT_S))
                first.append(get(t, FIRST_SPAN_S))
    return first, whole, sizes


# ---- 2: previews -------------------------------------------------------------------------------

# Every pointermove (its timeStamp and the moment under the pointer, as the page reckons it)
# and every preview the page shows (decoded, and the next animation frame; with its fetch's own
# time and transfer size, 0 from the browser's cache), in the page's clock.
PREVIEW_INSTALL = """([camera]) => {
  const b = window.__bench, page = window.nvrRecordings;
  b.moves = []; b.shown = [];
  performance.setResourceTimingBufferSize(100000);
  window.addEventListener('pointermove', (e) => { b.moves.push([e.timeStamp, page.timeAt(e)]); });
  const img = document.querySelector('#preview img');
  new MutationObserver(() => {
    const at = Number(img.dataset.at);
    const url = new URL(`/api/cameras/${camera}/preview?at=${img.dataset.at}`, location.href);
    const r = performance.getEntriesByName(url.href).pop();
    const fetchMs = r ? r.responseEnd - r.startTime : null;
    img.decode().catch(() => {}).then(() => requestAnimationFrame(
      () => b.shown.push([performance.now(), at, fetchMs, r ? r.transferSize : null])));
  }).observe(img, { attributes: true, attributeFilter: ['data-at'] });
  // The sketch of a fix: while a preview request is out, keep only the newest pointer event,
  // and scrub to it when the request is answered (whose preview is shown, not dropped).
  b.oneInFlight = (on) => {
    if (!on) { delete page.scrub; return; }
    let busy = null, pending = null;
    const scrub = Object.getPrototypeOf(page).scrub;
    const run = async (e) => {
      await scrub.call(page, e);
      if (pending) { const p = pending; pending = null; await run(p); }
    };
    page.scrub = (e) => {
      if (busy) { pending = e; return busy; }
      busy = run(e).finally(() => { busy = null; });
      return busy;
    };
  };
  b.shownAfter = (at, since) => b.shown.find(([t, a]) => t >= since && Math.abs(a - at) < 1e-5);
  b.lastMove = () => b.moves[b.moves.length - 1];
  // A drag: one synthetic pointermove per animation frame from x0 to x1 in ms.
  b.drag = ([x0, x1, y, ms]) => new Promise((resolve) => {
    b.moves = []; b.shown = [];
    const t0 = performance.now();
    const step = () => {
      const f = Math.min(1, (performance.now() - t0) / ms);
      const x = x0 + (x1 - x0) * f;
      const target = document.elementFromPoint(x, y);
      const e = new PointerEvent('pointermove', { clientX: x, clientY: y, bubbles: true });
      target.dispatchEvent(e);
      if (f < 1) requestAnimationFrame(step); else resolve(null);
    };
    requestAnimationFrame(step);
  });
}"""

# The preview of the last pointer move's moment, once shown: [time, at, fetch ms, transferred].
LAST_MOVE_SHOWN = """() => {
  const b = window.__bench, m = b.lastMove(); return m ? b.shownAfter(m[1], m[0]) : undefined;
}"""

SET_WINDOW = """([a, b]) => {
  const p = window.nvrRecordings; p.window = { start: a, end: b }; p.draw();
}"""


@dataclass(frozen=True, slots=True)
class Drag:
    events: int
    shown: int  # previews shown up to the last event
    ages_ms: list[float]  # per animation frame: how long ago the pointer was at the shown moment
    last_ms: float  # from the last event to its preview (nan: never shown)
    strays: int  # previews shown of moments this drag never asked for (an earlier drag's)


def drag_ages(moves: list[list[float]], shown: list[list[Any]], frame_ms: float) -> list[float]:
    """Per animation frame from the first move until the last move's preview shows (or 5 s
    after the last move): the time since the pointer was at the moment on screen (since the
    drag began, before the first preview)."""
    start, end = moves[0][0], moves[-1][0]

    def asked_at(at: float) -> float:
        """When the pointer was at the moment ``at`` (the drag's start if never: a preview of
        an earlier drag)."""
        return next((t for t, a in moves if abs(a - at) < 1e-4), start)

    final = next(
        (t for t, at, *_ in shown if t >= end and abs(at - moves[-1][1]) < 1e-5), end + 5000
    )
    samples = [t for t, _ in moves]
    samples += [end + k * frame_ms for k in range(1, int((final - end) / frame_ms) + 1)]
    shown_since = sorted((t, asked_at(at)) for t, at, *_ in shown)
    ages = []
    for s in samples:
        on = [since for t, since in shown_since if t <= s]
        ages.append(s - (on[-1] if on else start))
    return ages


def track_box(page: Page) -> dict[str, float]:
    box = page.locator(f".row[data-camera={CAMERA}] .track").bounding_box()
    assert box is not None
    return box


@dataclass
class PagePreviews:
    ms: list[float]  # pointer event to the preview on screen
    fetch_ms: list[float]  # the preview's fetch alone (Resource Timing)
    from_cache: int = 0  # answered by the browser's cache (nothing transferred)


def page_previews(
    page: Page, day: Day, windows: int, rng: random.Random
) -> tuple[PagePreviews, PagePreviews]:
    """Pointer moved to uncached instants, then back to them: ms to the preview on screen."""
    page.evaluate(PREVIEW_INSTALL, [CAMERA])
    fresh, again = PagePreviews([], []), PagePreviews([], [])

    def move(x: float, y: float, into: PagePreviews | None) -> None:
        page.mouse.move(x, y)
        page.wait_for_function(LAST_MOVE_SHOWN, timeout=10_000)
        shown_at, _at, fetch_ms, transferred = page.evaluate(LAST_MOVE_SHOWN)
        if into is not None:
            into.ms.append(shown_at - page.evaluate("() => window.__bench.lastMove()[0]"))
            if fetch_ms is not None:
                into.fetch_ms.append(fetch_ms)
            into.from_cache += transferred == 0

    for w in range(windows + 1):  # the first: warm-up
        minute = rng.randrange(len(day.starts)) * SEGMENT_S + day.start_utc
        page.evaluate(SET_WINDOW, [minute, minute + 60])
        box = track_box(page)
        y = box["y"] + box["height"] / 2
        # Distinct seconds of the minute (the server caches per half second).
        xs = [
            box["x"] + (s + rng.uniform(0.1, 0.9)) / 60 * box["width"]
            for s in rng.sample(range(1, 59), MOVES_PER_WINDOW)
        ]
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] - 40)  # off the track
        for x in xs:
            move(x, y, fresh if w else None)
        back = xs[:]
        rng.shuffle(back)
        if back[0] == xs[-1]:  # the pointer must move
            back.reverse()
        for x in back:
            move(x, y, again if w else None)
    return fresh, again


class DragKind(Enum):
    FRESH = "page as it is, a fresh minute"
    AGAIN = "page as it is, the same minute again"
    ONE_IN_FLIGHT = "sketch: one request in flight, a fresh minute"

    @property
    def note(self) -> str:
        return {
            DragKind.FRESH: "previews made when asked",
            DragKind.AGAIN: "in the server's cache, as if made at recording time",
            DragKind.ONE_IN_FLIGHT: "the benchmark's wrapper of the page's scrub, not the page",
        }[self]


def drag(page: Page, minute: float, seconds: float) -> Drag:
    page.evaluate(SET_WINDOW, [minute, minute + 60])
    box = track_box(page)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] - 40)  # off the track
    y = box["y"] + box["height"] / 2
    page.evaluate(
        "(a) => window.__bench.drag(a)",
        [box["x"] + 2, box["x"] + box["width"] - 2, y, seconds * 1000],
    )
    with contextlib.suppress(PlaywrightTimeout):  # nothing shown in 15 s: last_ms is nan
        page.wait_for_function(LAST_MOVE_SHOWN, timeout=15_000)
    moves, shown = page.evaluate("() => [window.__bench.moves, window.__bench.shown]")
    end, last_at = moves[-1][0], moves[-1][1]
    last = next((t for t, a, *_ in shown if abs(a - last_at) < 1e-5 and t >= end), math.nan)
    frame_ms = (end - moves[0][0]) / max(1, len(moves) - 1)
    ages = drag_ages(moves, shown, frame_ms)
    page.wait_for_timeout(500)  # requests still out end before the next drag
    strays = sum(1 for _, at, *_ in shown if not any(abs(a - at) < 1e-4 for _, a in moves))
    return Drag(len(moves), sum(1 for t, *_ in shown if t <= end), ages, last - end, strays)


def page_drags(
    page: Page, day: Day, drags: int, seconds: float, rng: random.Random
) -> dict[DragKind, list[Drag]]:
    """Each round: a drag over a fresh minute, the same minute again (its previews in the
    server's cache, as if made at recording time), and a fresh minute with the page's scrub
    wrapped to keep one preview request in flight (the newest position asked next)."""
    out: dict[DragKind, list[Drag]] = {k: [] for k in DragKind}
    minutes = rng.sample(day.starts, 2 * drags)
    for i in range(drags):
        out[DragKind.FRESH].append(drag(page, minutes[2 * i], seconds))
        out[DragKind.AGAIN].append(drag(page, minutes[2 * i], seconds))
        page.evaluate("() => window.__bench.oneInFlight(true)")
        try:
            out[DragKind.ONE_IN_FLIGHT].append(drag(page, minutes[2 * i + 1], seconds))
        finally:
            page.evaluate("() => window.__bench.oneInFlight(false)")
    return out


@dataclass(frozen=True, slots=True)
class HttpPreviews:
    fresh_ms: list[float]
    cached_ms: list[float]
    cpu_ms: float  # server CPU per uncached preview, less its idle rate
    cpu_gross_ms: float
    idle_cores: float
    jpeg_bytes: float


def http_previews(server: Server, day: Day, instants: list[float]) -> HttpPreviews:
    with httpx.Client(base_url=server.url, timeout=60) as http:

        def get(t: float) -> tuple[float, int]:
            t0 = time.perf_counter()
            r = http.get(f"/api/cameras/{CAMERA}/preview", params={"at": f"{t:.6f}"})
            ms = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            return ms, len(r.content)

        get(day.start_utc + 0.5)  # warm-up (not one of the instants' segments)
        c0, w0 = server.cpu(), time.perf_counter()
        time.sleep(2.0)
        idle = (server.cpu() - c0) / (time.perf_counter() - w0)
        c0, w0 = server.cpu(), time.perf_counter()
        fresh = [get(t) for t in instants]
        cpu, wall = server.cpu() - c0, time.perf_counter() - w0
        again = instants[:]
        random.Random(1).shuffle(again)
        cached = [get(t)[0] for t in again]
    n = len(instants)
    return HttpPreviews(
        [m for m, _ in fresh],
        cached,
        (cpu - idle * wall) * 1000 / n,
        cpu * 1000 / n,
        idle,
        sum(b for _, b in fresh) / n,
    )


def ffmpeg_cmd(path: Path, offset: float) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-ss", f"{offset:.3f}", "-i", str(path),
        "-frames:v", "1", "-vf", "scale=320:-1", "-f", "image2", "-",
    ]  # fmt: skip


def ffmpeg_previews(day: Day, instants: list[float]) -> tuple[list[float], float]:
    """ms per request, CPU ms per request (the ffmpeg processes')."""
    walls = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for t in instants:
        i = day.segment_at(t)
        t0 = time.perf_counter()
        out = subprocess.run(
            ffmpeg_cmd(day.paths[i], t - day.starts[i]), capture_output=True, check=True
        )
        walls.append((time.perf_counter() - t0) * 1000)
        assert out.stdout[:2] == b"\xff\xd8", out.stderr
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return walls, cpu * 1000 / len(instants)


# ---- 3: CPU of a preview, when asked and at recording time ----------------------------------


def preview_function_cpu(path: Path, rng: random.Random, n: int) -> tuple[float, float]:
    """`preview_jpeg` in this process: (wall ms, CPU ms) per call, the means."""
    from nvr_gstreamer.gst.preview import preview_jpeg

    preview_jpeg(path, 1.0)  # warm-up
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        preview_jpeg(path, rng.uniform(0, SEGMENT_S - 1))
    return (time.perf_counter() - w0) * 1000 / n, (time.process_time() - c0) * 1000 / n


def keyframe_pipeline_cpu(path: Path, decode: bool) -> tuple[float, int, int]:
    """A steady pipeline over the whole segment that decodes its key frames only into 320 px
    JPEGs (``decode``), or only reads and parses: (CPU s, key frames, JPEG bytes)."""
    from gi.repository import Gst

    tail = (
        "avdec_h264 max-threads=1 ! videoconvert ! videoscale ! "
        "video/x-raw,width=320,pixel-aspect-ratio=1/1 ! jpegenc quality=70 ! "
        "fakesink name=sink sync=false signal-handoffs=true"
        if decode
        else "fakesink name=sink sync=false"
    )
    pipeline = Gst.parse_launch(
        f"filesrc location={path} ! matroskademux ! h264parse name=parse ! {tail}"
    )
    keys = [0]
    jpeg: list[int] = []

    def keys_only_cb(_pad: Any, info: Any) -> Any:
        buf = info.get_buffer()
        if buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
            return Gst.PadProbeReturn.DROP
        keys[0] += 1
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("parse").get_static_pad("src").add_probe(
        Gst.PadProbeType.BUFFER, keys_only_cb
    )
    if decode:
        pipeline.get_by_name("sink").connect(
            "handoff", lambda _sink, buf, _pad: jpeg.append(buf.get_size())
        )
    c0 = time.process_time()
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    cpu = time.process_time() - c0
    pipeline.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        raise RuntimeError("the key frame pipeline failed")
    return cpu, keys[0], sum(jpeg)


@dataclass(frozen=True, slots=True)
class RecordingTimeCost:
    cpu_ms_per_key: float
    keys: int
    jpeg_bytes: float


def recording_time_cost(path: Path, repeats: int = 3) -> RecordingTimeCost:
    keyframe_pipeline_cpu(path, True)  # warm-up
    decode = [keyframe_pipeline_cpu(path, True) for _ in range(repeats)]
    read = [keyframe_pipeline_cpu(path, False)[0] for _ in range(repeats)]
    keys = decode[0][1]
    per_key = (sorted(c for c, _, _ in decode)[repeats // 2] - sorted(read)[repeats // 2]) / keys
    return RecordingTimeCost(per_key * 1000, keys, decode[0][2] / keys)


# ---- the report ------------------------------------------------------------------------------


def row(label: str, values: Sequence[float], extra: str = "") -> None:
    print(
        f"  {label:<50}{ms(pct(values, 0.5)):>7}{ms(pct(values, 0.9)):>7}"
        f"{ms(max(values, default=math.nan)):>7}{len(values):>5}  {extra}"
    )


def header(title: str) -> None:
    print(f"\n{title}")
    print(f"  {'ms':<50}{'p50':>7}{'p90':>7}{'max':>7}{'n':>5}")


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split()
    from gi.repository import Gst

    return (
        f"{model}, {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.1f}; "
        f"GStreamer {Gst.version_string().split()[-1]}; ffmpeg {ff[2] if len(ff) > 2 else '?'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeks", type=int, default=30, help="each, page and baseline")
    parser.add_argument("--previews", type=int, default=30, help="uncached, HTTP and page")
    parser.add_argument("--drags", type=int, default=3, help="rounds of three drags")
    parser.add_argument("--drag-seconds", type=float, default=2.0)
    parser.add_argument("--pattern", default="snow", help="videotestsrc pattern of the footage")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--segment", type=Path, help="a 60 s segment to use instead of making one")
    parser.add_argument("--quick", action="store_true", help="10 seeks, 15 previews, 2 drags")
    parser.add_argument("--long", action="store_true", help="accepted (the defaults)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.quick:
        args.seeks, args.previews, args.drags = 10, 15, 2
    print(" ".join(["$ .venv/bin/python bench/bench_playback.py", *sys.argv[1:]]), flush=True)
    init_gstreamer()
    rng = random.Random(args.seed)
    with temp_dir("playback") as folder:
        media = folder / "media"
        media.mkdir()
        source = media / "segment.mkv"
        if args.segment:
            shutil.copyfile(args.segment, source)
            made_s, stamped = 0.0, False
        else:
            made_s, stamped = make_segment(source, args.pattern)
        print(f"machine: {machine()}", flush=True)
        duration = probe_duration(source)
        size = source.stat().st_size
        yesterday = date.today() - timedelta(days=1)
        t0 = time.perf_counter()
        day = fill_day(folder / "rec", yesterday, source, duration)
        print(
            f"media: one {duration:.2f} s segment ({WIDTH}x{HEIGHT} {FPS} fps H.264, "
            f"{size * 8 / duration / 1000:.0f} kbit/s, a key frame every {GOP_FRAMES} frames, "
            f"{args.pattern}{', stamped' if stamped else ''}, {size / 1e6:.1f} MB) "
            f"{f'made in {made_s:.1f} s' if made_s else f'from {args.segment}'}; "
            f"hardlinked as {len(day.paths):,} segments of {CAMERA} on "
            f"{yesterday.isoformat()} with catalog rows in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        return run(folder, day, source, args, rng)


def run(folder: Path, day: Day, source: Path, args: argparse.Namespace, rng: random.Random) -> int:
    seek_at = [rng.uniform(day.start_utc, day.end_utc - 1) for _ in range(args.seeks)]
    # Preview instants: each in a segment of its own (uncached), not one the seeks touched.
    segs = rng.sample(range(1, len(day.starts)), args.previews)
    preview_at = [day.starts[i] + rng.uniform(0.2, SEGMENT_S - 0.5) for i in segs]
    problems: list[str] = []

    print("CPU per preview (this process, before the server starts) ...", flush=True)
    fn_wall, fn_cpu = preview_function_cpu(source, rng, max(10, args.previews))
    at_recording = recording_time_cost(source)

    server = Server(folder / "rec")
    try:
        print(
            f"server: NvrApp + ApiServer in its own process, up in {server.up_s:.1f} s", flush=True
        )
        print(f"HTTP: {args.seeks} first chunks and whole segments ...", flush=True)
        first_ms, whole_ms, first_sizes = http_seeks(server.url, day, seek_at)
        print(f"HTTP: {args.previews} previews, uncached then cached; ffmpeg ...", flush=True)
        previews = http_previews(server, day, preview_at)
        ff_ms, ff_cpu = ffmpeg_previews(day, preview_at)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
            )
            try:
                version = browser.version
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{server.url}/recordings?day={day.day.isoformat()}")
                page.wait_for_function(
                    "() => document.querySelectorAll('.row .footage').length >= 1"
                )
                print(
                    f"page: {args.seeks} seeks, each interleaved with the baseline ...", flush=True
                )
                chunked, whole = page_seeks(page, day, seek_at)
                windows = math.ceil(args.previews / MOVES_PER_WINDOW)
                print(
                    f"page: {windows * MOVES_PER_WINDOW} preview moves, {args.drags} drags ...",
                    flush=True,
                )
                fresh, again = page_previews(page, day, windows, rng)
                drags = page_drags(page, day, args.drags, args.drag_seconds, rng)
                page.close()
            finally:
                browser.close()
    finally:
        server.close()
        problems += server.problems()

    print(f"chromium {version} (headless), load {os.getloadavg()[0]:.1f} at the end")
    header(
        f"1. Seek to a shown frame: {args.seeks} random instants across the day "
        f"({len(day.paths):,} segments), from playAt to the frame of the instant on screen"
    )
    row(
        f"page, first chunk span={FIRST_SPAN_S}",
        chunked.ms,
        f"(its fetch p50 {ms(pct(chunked.fetch_ms, 0.5))} ms, "
        f"{pct([float(b) for b in chunked.bytes], 0.5) / 1e6:.1f} MB)",
    )
    row(
        "baseline page: whole segment first (span=60)",
        whole.ms,
        f"(its fetch p50 {ms(pct(whole.fetch_ms, 0.5))} ms, "
        f"{pct([float(b) for b in whole.bytes], 0.5) / 1e6:.1f} MB)",
    )
    row(
        f"server alone: GET first chunk (start=t, span={FIRST_SPAN_S})",
        first_ms,
        f"({pct([float(b) for b in first_sizes], 0.5) / 1e6:.2f} MB)",
    )
    row("server alone: GET whole segment (span=60)", whole_ms)
    c50, c90, w50, w90 = (pct(chunked.ms, 0.5), pct(chunked.ms, 0.9),
                          pct(whole.ms, 0.5), pct(whole.ms, 0.9))  # fmt: skip
    print(
        f"  page chunked / baseline: p50 {c50 / w50:.2f}, p90 {c90 / w90:.2f} "
        f"({w90 / c90:.1f}x faster at p90)"
    )
    for name, runs in (("page", chunked), ("baseline", whole)):
        good = len(runs.ms) - runs.not_shown - runs.wrong
        print(
            f"  {name}: the frame of the instant (within one frame interval before it) shown "
            f"in {good}/{len(runs.ms)} seeks ({runs.not_shown} without a frame, {runs.wrong} "
            f"wrong, {runs.buffered} already buffered)"
        )
        if runs.not_shown or runs.wrong:
            problems.append(f"{name}: {runs.not_shown} seeks without a frame, {runs.wrong} wrong")

    header("2. Previews (320 px JPEG of the key frame at or before the instant)")
    row(
        "HTTP, uncached (a new segment each)",
        previews.fresh_ms,
        f"({previews.jpeg_bytes / 1000:.0f} kB)",
    )
    row("HTTP, re-visited (server cache)", previews.cached_ms)
    row(
        "page, pointer moved to an uncached instant",
        fresh.ms,
        f"(1-minute window; its fetch p50 {ms(pct(fresh.fetch_ms, 0.5))} ms)",
    )
    row(
        "page, pointer back at an instant",
        again.ms,
        f"({again.from_cache}/{len(again.ms)} from the browser's cache; its fetch p50 "
        f"{ms(pct(again.fetch_ms, 0.5))} ms)",
    )
    row("baseline: ffmpeg -ss per request", ff_ms, "(the exact frame, not the key frame)")
    print(f"    {' '.join(ffmpeg_cmd(Path('SEGMENT'), 12.345))}".replace("12.345", "OFFSET"))
    print(
        f"  HTTP uncached / ffmpeg: p50 {pct(previews.fresh_ms, 0.5) / pct(ff_ms, 0.5):.2f}, "
        f"p90 {pct(previews.fresh_ms, 0.9) / pct(ff_ms, 0.9):.2f}"
    )
    events = next((d.events for ds in drags.values() for d in ds), 0)
    print(
        f"  drags, {len(drags[DragKind.FRESH])} of each: {events} pointermoves (one an animation "
        f"frame) across a 1-minute window in {args.drag_seconds:g} s; per frame from the first "
        "move until the last move's preview shows: how long ago the pointer was at the moment "
        "on screen"
    )
    for kind, runs in drags.items():
        shown = [d.shown for d in runs]
        last = [d.last_ms for d in runs]
        strays = sum(d.strays for d in runs)
        row(
            f"{kind.value}",
            [a for d in runs for a in d.ages_ms],
            f"({kind.note}; previews shown during a drag: "
            f"{min(shown, default=0)}-{max(shown, default=0)}; "
            f"the last one {'/'.join(ms(v) for v in last)} ms after the pointer stopped"
            f"{f'; {strays} of an earlier drag' if strays else ''})",
        )

    print("\n3. CPU per preview")
    print(
        f"  made when asked: server process {previews.cpu_ms:.1f} ms per uncached preview "
        f"({previews.cpu_gross_ms:.1f} gross, less its idle {previews.idle_cores:.3f} cores); "
        f"preview_jpeg alone {fn_cpu:.1f} ms CPU, {fn_wall:.1f} ms wall; "
        f"ffmpeg {ff_cpu:.1f} ms CPU per request"
    )
    per_cam = at_recording.cpu_ms_per_key / 1000  # one key frame a second
    print(
        f"  at recording time, one per key frame (GOP 1 s): {at_recording.cpu_ms_per_key:.1f} ms "
        f"CPU per key frame (steady keyframes-only pipeline, {at_recording.keys} key frames, "
        f"less reading and parsing) = {per_cam:.4f} cores per camera, {16 * per_cam:.3f} for 16 "
        f"cameras, around the clock; {at_recording.jpeg_bytes / 1000:.0f} kB a JPEG = "
        f"{at_recording.jpeg_bytes * 86_400 / 1e9:.2f} GB per camera per day"
    )
    asked = previews.cpu_ms / 1000
    print(
        f"  made when asked: {asked:.3f} CPU s per preview, only while someone scrubs; one "
        f"camera's day at recording time = {86_400 * per_cam / 3600:.2f} CPU h = "
        f"{86_400 * per_cam / asked:,.0f} previews asked for"
    )

    print()
    seek_met = c90 <= SEEK_P90_MS
    preview_p90 = pct(fresh.ms, 0.9)
    preview_met = preview_p90 <= PREVIEW_P90_MS
    print(
        f"target: seek to a shown frame p90 <= {SEEK_P90_MS:.0f} ms: page {ms(c90)} ms: "
        f"{verdict(seek_met)}"
    )
    print(
        f"target: preview p90 <= {PREVIEW_P90_MS:.0f} ms (page, pointer moved to an uncached "
        f"instant): {ms(preview_p90)} ms: {verdict(preview_met)}"
    )
    ages = [a for d in drags[DragKind.FRESH] for a in d.ages_ms]
    drag_met = pct(ages, 0.9) <= PREVIEW_P90_MS
    print(
        f"target: preview p90 <= {PREVIEW_P90_MS:.0f} ms while dragging (age of the moment shown, "
        f"per frame, {DragKind.FRESH.value}): {ms(pct(ages, 0.9))} ms: {verdict(drag_met)}"
    )
    for line in problems:
        print(f"PROBLEM: {line}")
    return 0 if seek_met and preview_met and drag_met and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
