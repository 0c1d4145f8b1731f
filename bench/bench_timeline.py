"""The web app's timeline of many cameras over days: `GET /api/timeline/range` against what the
page would do without it, one `GET /api/timeline?camera=&date=` per camera and day.

The catalog: 16 cameras x the 7 local days before today, 60 s segments around the clock (1,440
a camera a day: 161,280 rows, less the outages' minutes), and today's up to now. Outages with
their reason recorded (camera down, recording off, disk full, storage unavailable; 3 a camera a
day, 1-20 minutes each) and one 10-minute stop of the recorder (nvr_stopped). --history-days N
adds N days before the week (a 30-day retention holds 23). A 17th camera reconnected every ~2
minutes all week (~5,000 outages and as many files), for the flapping figure. The rows are
written straight into SQLite, no media files. The API is the real one (NvrApp + ApiServer) in a
process of its own, its cameras never started (start-up recovery would drop rows without files);
timed over HTTP with keep-alive from this process:

1. range: one `GET /api/timeline/range` for cam01-cam16 over the 7 days, --requests times:
   p50/p90 of the whole request. Target: <= 300 ms.
2. baseline, in the same run: the per-day endpoint for each of the 16 cameras and 7 days (112
   requests, one after another), --baseline-repeats times: p50/p90 of the total.
3. flapping: the range for cam01-cam15 and the flapping cam17, --requests times.

Checked once: each camera's range answer equals its 7 day answers joined (footage and gaps,
pieces cut at midnight put back together; the segment count against the day answers' distinct
segments). A mismatch is a PROBLEM (exit status 1, as for a missed target).

    .venv/bin/python bench/bench_timeline.py [--requests 20] [--baseline-repeats 3]
        [--history-days 0]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import cpu_seconds, temp_dir, verdict

from nvr_gstreamer.api.server import ApiServer
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.storage.catalog import CATALOG_NAME
from nvr_gstreamer.storage.timeline import day_bounds
from nvr_gstreamer.testing.catalog_fill import fill_catalog
from nvr_gstreamer.testing.engine import engine_config

TARGET_MS = 300.0
CAMERAS = [f"cam{i:02d}" for i in range(1, 17)]
FLAPPING = "cam17"
DAYS = 7


def p(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of the values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def timed_get(http: httpx.Client, url: str, params: Any) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = http.get(url, params=params)
    r.read()
    ms = (time.perf_counter() - t0) * 1000
    r.raise_for_status()
    return ms, r


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _join(pieces: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Pieces of consecutive days, those cut at midnight put back together."""
    out: list[tuple[float, float, str]] = []
    for s, e, kind in sorted(pieces):
        if out and out[-1][2] == kind and abs(out[-1][1] - s) < 1e-5:
            out[-1] = (out[-1][0], e, kind)
        else:
            out.append((s, e, kind))
    return out


def _pieces(footage: list[dict[str, Any]], gaps: list[dict[str, Any]]) -> list[tuple]:
    return [(_ts(f["start"]), _ts(f["end"]), "footage") for f in footage] + [
        (_ts(g["start"]), _ts(g["end"]), g["reason"]) for g in gaps
    ]


def check(range_answer: dict[str, Any], days: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Where the range answer differs from the day answers joined (empty: nowhere)."""
    problems = []
    for cam in range_answer["cameras"]:
        day_answers = days[cam["camera"]]
        joined = _join([x for d in day_answers for x in _pieces(d["footage"], d["gaps"])])
        got = _join(_pieces(cam["footage"], cam["gaps"]))
        same = len(joined) == len(got) and all(
            a[2] == b[2] and abs(a[0] - b[0]) < 1e-5 and abs(a[1] - b[1]) < 1e-5
            for a, b in zip(joined, got, strict=True)
        )
        if not same:
            problems.append(f"{cam['camera']}: {len(got)} pieces, the days joined {len(joined)}")
        ids = {s["id"] for d in day_answers for s in d["segments"]}
        if cam["segment_count"] != len(ids):
            problems.append(f"{cam['camera']}: {cam['segment_count']} segments, days {len(ids)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--long", action="store_true", help="accepted (the defaults)")
    parser.add_argument("--baseline-repeats", type=int, default=3)
    parser.add_argument("--history-days", type=int, default=0)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    print("$ .venv/bin/python bench/bench_timeline.py " + " ".join(sys.argv[1:]))

    today = date.today()
    days = [today - timedelta(days=i) for i in range(DAYS, 0, -1)]
    start_utc, end_utc = day_bounds(days[0])[0], day_bounds(days[-1])[1]
    stop = day_bounds(days[3])[0] + 3 * 3600
    with temp_dir("timeline") as folder:
        root = folder / "rec"
        now = time.time()
        t0 = time.perf_counter()
        first = start_utc - args.history_days * 86_400
        stopped = [(stop, stop + 600)]
        rows = fill_catalog(root, CAMERAS, first, now, stopped=stopped)
        flapping = fill_catalog(
            root, [FLAPPING], first, now, outages_per_day=720, outage_s=(5, 60), stopped=stopped,
            seed=2, runs=False,
        )  # fmt: skip
        with contextlib.closing(sqlite3.connect(root / CATALOG_NAME)) as db:
            week, outages = db.execute(
                "SELECT (SELECT COUNT(*) FROM segments WHERE camera != ? AND start_utc >= ?"
                " AND start_utc < ?), (SELECT COUNT(*) FROM interruptions WHERE camera != ?"
                " AND start_utc >= ? AND start_utc < ?)",
                (FLAPPING, start_utc, end_utc, FLAPPING, start_utc, end_utc),
            ).fetchone()
        print(
            f"catalog: {rows:,} segment rows of cam01-cam16 ({week:,} in the week, with "
            f"{outages} outages), {flapping:,} of {FLAPPING}; written in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        return run(root, args, days, start_utc, end_utc)


def serve(root: Path) -> None:
    """The server process: the API over the catalog in ``root`` until stdin closes."""
    urls = {cid: f"rtsp://127.0.0.1:9/{cid}" for cid in [*CAMERAS, FLAPPING]}
    config = engine_config(urls, storage=root)
    config = config.model_copy(update={"api": config.api.model_copy(update={"port": 0})})
    t0 = time.perf_counter()
    app = NvrApp(config)  # opening the catalog builds any index it lacks
    opened_s = time.perf_counter() - t0
    api = ApiServer(app)
    api.start()
    print(f"{api.url} {opened_s:.2f}", flush=True)
    try:
        sys.stdin.read()
    finally:
        api.stop()
        app.storage.stop()


def run(root: Path, args: argparse.Namespace, days: list[date], start: float, end: float) -> int:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    url, opened_s = server.stdout.readline().split()
    print(f"catalog opened in {float(opened_s):.2f} s (by the server process)")
    load_before = os.getloadavg()[0]
    week = {
        "camera": CAMERAS,
        "start": datetime.fromtimestamp(start).astimezone().isoformat(),
        "end": datetime.fromtimestamp(end).astimezone().isoformat(),
    }
    flap = {**week, "camera": [*CAMERAS[:15], FLAPPING]}
    day_answers: dict[str, list[dict[str, Any]]] = {}
    day_bytes = 0

    def load_days(http: httpx.Client) -> float:
        """The page without the range endpoint: every camera's every day, one after another."""
        nonlocal day_bytes
        total = 0.0
        day_bytes = 0
        for cam in CAMERAS:
            day_answers[cam] = []
            for d in days:
                ms, r = timed_get(http, "/api/timeline", {"camera": cam, "date": d.isoformat()})
                total += ms
                day_bytes += len(r.content)
                day_answers[cam].append(r.json())
        return total

    phases: list[tuple[str, list[float], float]] = []  # label, wall ms per run, CPU ms per run

    def measure(label: str, runs: int, once: Callable[[], float]) -> None:
        cpu0 = cpu_seconds([server.pid])
        wall = [once() for _ in range(runs)]
        phases.append((label, wall, (cpu_seconds([server.pid]) - cpu0) * 1000 / runs))

    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            timed_get(http, "/api/timeline/range", week)  # warm-up
            measure(
                "range, 16 cameras x 7 days (1 request)",
                args.requests,
                lambda: timed_get(http, "/api/timeline/range", week)[0],
            )
            last = timed_get(http, "/api/timeline/range", week)[1]
            answer, size = last.json(), len(last.content)
            measure(
                f"baseline: per camera per day ({DAYS * len(CAMERAS)} requests)",
                args.baseline_repeats,
                lambda: load_days(http),
            )
            measure(
                "range with a flapping camera",
                args.requests,
                lambda: timed_get(http, "/api/timeline/range", flap)[0],
            )
            flap_answer = timed_get(http, "/api/timeline/range", flap)[1].json()
    finally:
        server.stdin.close()
        server.wait(30)

    problems = check(answer, day_answers)
    pieces = sum(len(c["footage"]) + len(c["gaps"]) for c in answer["cameras"])
    kinds = ", ".join(sorted({g["reason"] for c in answer["cameras"] for g in c["gaps"]}))
    flap_gaps = next(len(c["gaps"]) for c in flap_answer["cameras"] if c["camera"] == FLAPPING)
    print(f"range answer: {size / 1000:.0f} kB, {pieces} footage spans and gaps ({kinds})")
    print(f"baseline answers: {day_bytes / 1e6:.1f} MB in {DAYS * len(CAMERAS)} requests")
    load_after = os.getloadavg()[0]
    print(f"load average: {load_before:.1f} before, {load_after:.1f} after, {os.cpu_count()} CPUs")
    print()
    print(f"{'':<46}{'p50 ms':>9}{'p90 ms':>9}{'CPU ms':>9}{'runs':>6}")
    for label, wall, cpu_ms in phases:
        print(
            f"{label:<46}{statistics.median(wall):>9.0f}{p(wall, 0.9):>9.0f}{cpu_ms:>9.0f}"
            f"{len(wall):>6}"
        )
    print(f"  (CPU: the server process's, per run; {FLAPPING}: {flap_gaps} gaps in the week)")
    print()
    range_ms, baseline_ms = phases[0][1], phases[1][1]
    r50, r90, b50 = statistics.median(range_ms), p(range_ms, 0.9), statistics.median(baseline_ms)
    print(f"range / baseline (p50): {r50 / b50:.3f}  ({b50 / r50:.0f}x faster)")
    status = 0
    met = r90 <= TARGET_MS
    print(f"target: range p90 <= {TARGET_MS:.0f} ms: {verdict(met)}")
    if not met:
        status = 1
    if problems:
        status = 1
        print("PROBLEM: the range answer differs from the day answers joined:")
        for line in problems[:20]:
            print("  " + line)
    else:
        print("check: every camera's range answer equals its 7 day answers joined")
    return status


if __name__ == "__main__":
    sys.exit(main())
