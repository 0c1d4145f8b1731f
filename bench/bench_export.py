"""Export of one hour of one 2 Mbit/s camera to MP4: export_mp4 against `ffmpeg -f concat -c copy`.

The hour is made quickly: one segment of ~60 s is recorded from the simulator (1280x720,
25 fps, 2 Mbit/s, snow, a key frame a second) by the recorder itself, then copied as 60
segments back to back into a fresh storage root with their catalog rows (copies, not
hardlinks: 60 distinct files to read, as a real hour has; ``--cold`` evicts them from the page
cache first, file by file). The range starts mid-GOP (0.37 s after a key frame).

- nvr: :func:`~nvr_gstreamer.gst.footage.export_mp4` over the catalog's parts, timed from the
  call to the finished file (an export job adds the SHA-256, timed separately);
- baseline: ``ffmpeg -f concat -safe 0 -ss START -i LIST -t 3600 -c copy`` over the same files.

Where each file starts is read from its pixels: the simulator stamps every frame with its wall
clock time (ms), so the first frame a player shows (ffmpeg, which honours edit lists) has a
stamp; the requested instant's stamp is the source segment's first stamp plus the offset.
Positive = the file starts before the requested instant. Target: <= 10 s, first frame within
one frame interval (40 ms) of the requested start.

    .venv/bin/python bench/bench_export.py [--minutes 60] [--record-seconds 60] [--cold]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import time
from datetime import datetime
from fractions import Fraction
from pathlib import Path

from _common import stream_simulator, temp_dir, verdict

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.engine.exports import sha256_of
from nvr_gstreamer.gst.footage import export_mp4
from nvr_gstreamer.storage.catalog import Catalog, SegmentRow, SegmentStatus
from nvr_gstreamer.storage.footage_runs import Footage, closed_parts
from nvr_gstreamer.storage.layout import segment_path
from nvr_gstreamer.storage.mp4_edit import trim
from nvr_gstreamer.testing.engine import engine_config, wait_until
from nvr_gstreamer.testing.frame_stamp import band_row, read_stamp

TARGET_S = 10.0
FPS = 25
WIDTH, HEIGHT = 1280, 720
INTO_GOP_S = 0.37


def record_segment(folder: Path, seconds: int) -> tuple[Path, float]:
    """One closed segment of about ``seconds`` from the simulator: (file, its duration)."""
    with stream_simulator(1, 2000, "snow") as sim:
        config = engine_config(
            {"cam1": sim.url("cam1")},
            storage=folder / "rec",
            storage_options={"segment_seconds": seconds},
        )
        app = NvrApp(config)
        app.start()
        try:

            def closed() -> list[SegmentRow]:
                rows = app.storage.catalog.segments("cam1")
                return [r for r in rows if r.status is SegmentStatus.CLOSED]

            wait_until(lambda: bool(closed()), seconds * 2 + 30, "a closed segment")
            row = closed()[0]
        finally:
            app.stop()
    assert row.duration_s is not None
    return folder / "rec" / row.path, row.duration_s


def build_hour(source: Path, duration_s: float, count: int, root: Path, t0: float) -> Catalog:
    """``count`` copies of ``source`` back to back from ``t0``, catalogued as closed."""
    root.mkdir(parents=True)
    catalog = Catalog(root)
    size = source.stat().st_size
    for i in range(count):
        start = t0 + i * duration_s
        path = segment_path(root, "cam1", datetime.fromtimestamp(start), lambda p: p.exists())
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        rel = str(path.relative_to(root))
        catalog.close_segment(
            rel, start + duration_s, duration_s, size, None, SegmentStatus.CLOSED, start, "cam1"
        )
    os.sync()
    return catalog


def evict(paths: list[Path]) -> None:
    """Drop these files (only these) from the page cache: a cold read."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def first_stamp(path: Path, *extra: str) -> int | None:
    """The stamp on the first frame ffmpeg shows of ``path``."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", *extra, "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    y = band_row(HEIGHT)
    return read_stamp(raw[y * WIDTH : (y + 1) * WIDTH], WIDTH)


def frame_times(path: Path, around_s: float) -> list[float]:
    """The video frames' PTS (s) within a second of ``around_s`` in ``path``."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals",
         f"{max(0.0, around_s - 1):.3f}%{around_s + 1:.3f}", "-show_entries", "packet=pts_time",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return sorted(float(v) for v in out.split() if v not in ("", "N/A"))


def facts(path: Path) -> dict[str, float]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=start_time,duration,nb_frames:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    data = json.loads(out)
    s = data["streams"][0]
    return {
        "start": float(s.get("start_time", "nan")),
        "duration": float(data["format"]["duration"]),
        "frames": float(s.get("nb_frames", "nan")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the export")
    parser.add_argument("--long", action="store_true", help="accepted (the defaults)")
    parser.add_argument("--record-seconds", type=int, default=60, help="the segment recorded")
    parser.add_argument("--cold", action="store_true", help="evict the segments from the cache")
    args = parser.parse_args(argv)
    span = args.minutes * 60
    print(
        f"export of {args.minutes:g} min of one camera (1280x720 25 fps snow 2 Mbit/s, GOP 1 s), "
        f"{'cold' if args.cold else 'warm'} page cache, {os.cpu_count()} CPU(s)",
        flush=True,
    )
    with temp_dir("export") as folder:
        source, seg_s = record_segment(folder / "record", args.record_seconds)
        t0 = time.time() - 86400  # yesterday: nothing of it is being recorded
        # A key frame every second from each segment's start: 0.37 s into a GOP of the 2nd.
        start = t0 + seg_s + 10 + INTO_GOP_S
        end = start + span
        count = math.ceil((end - t0) / seg_s) + 1
        root = folder / "hour"
        catalog = build_hour(source, seg_s, count, root, t0)
        rows = catalog.segments("cam1", start, end)
        parts = closed_parts(rows, root)
        total_mb = sum(p.path.stat().st_size for p in parts) / 1e6
        print(
            f"source: {seg_s:.3f} s segment, {source.stat().st_size / 1e6:.1f} MB; "
            f"{len(parts)} parts in range, {total_mb:.0f} MB",
            flush=True,
        )
        # The requested instant's stamp: the source's first frame's, plus the offset into it.
        part = next(p for p in parts if p.start_utc <= start < p.end_utc)
        into = start - part.start_utc
        s0 = first_stamp(source)
        assert s0 is not None, "the simulator's frames carry no stamp"
        wanted_stamp = s0 + into * 1000
        # The recording's own clock: the frame on screen at the start, and the next one.
        origin = frame_times(source, 0.0)[0]
        times = [t - origin for t in frame_times(source, into + origin)]
        on_screen = max(t for t in times if t <= into + 0.001)
        gap = min(t for t in times if t > on_screen) - on_screen

        if args.cold:
            evict([p.path for p in parts])
        dest = folder / "nvr.mp4"
        began = time.monotonic()
        result = export_mp4(Footage(parts), start, end, dest)
        nvr_s = time.monotonic() - began
        began = time.monotonic()
        sha256_of(dest)
        sha_s = time.monotonic() - began
        nvr = facts(dest)
        nvr_stamp = first_stamp(dest)
        key_stamp = first_stamp(dest, "-ignore_editlist", "1")
        assert nvr_stamp is not None and key_stamp is not None

        listing = folder / "concat.txt"
        listing.write_text("".join(f"file '{p.path}'\n" for p in parts))
        offset = start - parts[0].start_utc
        base = folder / "ffmpeg.mp4"
        cmd = [
            "ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-ss", f"{offset:.3f}",
            "-i", str(listing), "-t", f"{span:.3f}", "-c", "copy", str(base),
        ]  # fmt: skip
        if args.cold:
            evict([p.path for p in parts])
        began = time.monotonic()
        subprocess.run(cmd, check=True, timeout=600)
        ff_s = time.monotonic() - began
        ff = facts(base)
        ff_stamp = first_stamp(base)
        assert ff_stamp is not None
        # What the edit list costs on its own (read moov, crop, rewrite it): once more, on the
        # finished file, after everything above was measured.
        began = time.monotonic()
        trim(dest, Fraction(0), Fraction(span))
        edit_s = time.monotonic() - began

    print(
        f"nvr:      export_mp4(...) {nvr_s:6.2f} s (of which the edit list ~{edit_s * 1000:.0f} "
        f"ms; + SHA-256 {sha_s:.2f} s)"
    )
    print(f"baseline: {' '.join(cmd[:11])} ... -c copy: {ff_s:6.2f} s")
    rows_out = [("nvr", nvr, nvr_stamp, nvr_s), ("ffmpeg", ff, ff_stamp, ff_s)]
    print(
        f"{'':8} {'seconds':>8} {'duration s':>11} {'frames':>7} {'start_time':>10} "
        f"{'first frame before the start (pixels)':>38}"
    )
    for name, f, stamp, secs in rows_out:
        early_ms = wanted_stamp - stamp
        print(
            f"{name:8} {secs:8.2f} {f['duration']:11.3f} {f['frames']:7.0f} {f['start']:10.3f} "
            f"{early_ms:35.0f} ms"
        )
    early = start - result.start_utc
    print(
        f"nvr reports: first frame {early * 1000:.0f} ms before the start, decoded from the key "
        f"frame {(start - result.keyframe_utc) * 1000:.0f} ms before (pixels: "
        f"{wanted_stamp - key_stamp:.0f} ms); the recording's frame on screen at the start: "
        f"{(into - on_screen) * 1000:.0f} ms before it, the next "
        f"{(on_screen + gap - into) * 1000:.0f} ms after (live timestamps: frames "
        f"{gap * 1000:.0f} ms apart there)"
    )
    # The frame on screen at the start, by the recording's timestamps; within one frame
    # interval of the start unless the camera's frames were further apart right there.
    right_frame = abs(early - (into - on_screen)) <= 0.002
    lasts = abs(nvr["duration"] - (end - result.start_utc)) <= 1 / FPS
    met = nvr_s <= TARGET_S and right_frame and -0.002 <= early < max(1 / FPS, gap) and lasts
    print(
        f"target: <= {TARGET_S:g} s, the first frame the one on screen at the start, within one "
        f"frame interval ({1000 / FPS:.0f} ms), lasting the range: {nvr_s:.2f} s, "
        f"{early * 1000:.0f} ms, {nvr['duration']:.3f} s: {verdict(met)}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
