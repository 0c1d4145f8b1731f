"""Where GStreamer's CPU per recorded stream goes: rtspsrc alone, then stage by stage.

A diagnostic for bench_cpu (issue 7, item 1). For N simulated 1280x720 25 fps ~2 Mbit/s streams,
one helper process runs N GStreamer pipelines of one variant (no Python in the data path), and
the CPU of that process is measured over a fixed window; the same streams recorded by one
``ffmpeg -c copy -f segment`` per camera are the baseline, in the same run. Variants:

  rtspsrc-nojb   rtspsrc ! fakesink, rtpbin's jitterbuffer replaced by an identity (the RTSP
                 reader and RTP session alone; timestamps are then wrong, so not usable as such)
  rtspsrc        rtspsrc ! fakesink (what any rtspsrc-based recorder pays before depayloading)
  parse          rtspsrc ! depay ! h264parse ! fakesink
  record         nvr's recording graph without Python: ... ! identity ! tee ! queue ! valve !
                 splitmuxsink(matroskamux, unbuffered filesink)

Each line also gives voluntary + involuntary context switches per second of the recorder, the
cost of GStreamer's thread hand-offs (ffmpeg is one thread per camera).

    .venv/bin/python bench/bench_cpu_floor.py [--cameras 16] [--seconds 15] [--repeats 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _common import FfmpegRecorders, cpu_seconds, temp_dir

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import wait_until

VARIANTS = ("rtspsrc-nojb", "rtspsrc", "parse", "record")


def ctx_switches(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def window(pids: list[int], seconds: float) -> tuple[float, float]:
    """(cores, context switches per second) of the processes over the window."""
    cpu0, cs0, t0 = cpu_seconds(pids), ctx_switches(pids), time.monotonic()
    time.sleep(seconds)
    cpu1, cs1, t1 = cpu_seconds(pids), ctx_switches(pids), time.monotonic()
    return (cpu1 - cpu0) / (t1 - t0), (cs1 - cs0) / (t1 - t0)


def measure_gst(variant: str, urls: list[str], args: argparse.Namespace) -> tuple[float, float]:
    with temp_dir("cpu-floor") as folder:
        cmd = [sys.executable, __file__, "--serve", variant, "--folder", str(folder), *urls]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(args.warmup + 3)  # connect, first keyframe, settle
            if proc.poll() is not None:
                raise RuntimeError(f"variant {variant} exited with {proc.returncode}")
            return window([proc.pid], args.seconds)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def measure_ffmpeg(urls: list[str], args: argparse.Namespace) -> tuple[float, float]:
    with temp_dir("cpu-floor-ffmpeg") as folder:
        rec = FfmpegRecorders({f"cam{i}": u for i, u in enumerate(urls)}, folder / "rec")
        try:
            wait_until(rec.all_writing, 60, "every ffmpeg writing")
            time.sleep(args.warmup)
            return window([p.pid for p in rec.processes], args.seconds)
        finally:
            rec.close()


def serve(variant: str, folder: Path, urls: list[str]) -> None:
    """The helper process: N pipelines of one variant until SIGINT."""
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst

    Gst.init(None)

    def make(factory: str, **props: object) -> Gst.Element:
        el = Gst.ElementFactory.make(factory)
        for key, value in props.items():
            el.set_property(key.rstrip("_").replace("_", "-"), value)
        return el

    def no_jitterbuffer(_src: Gst.Element, manager: Gst.Element) -> None:
        # rtpbin sets "latency" on whatever it gets (a harmless warning on identity).
        manager.connect("request-jitterbuffer", lambda *_a: make("identity", silent=True))

    def build(i: int, url: str) -> Gst.Pipeline:
        pipeline = Gst.Pipeline.new(f"p{i}")
        src = make("rtspsrc", location=url, latency=200)
        Gst.util_set_object_arg(src, "protocols", "tcp")
        if variant == "rtspsrc-nojb":
            src.connect("new-manager", no_jitterbuffer)
        chain: list[Gst.Element] = []
        if variant in ("parse", "record"):
            chain += [make("rtph264depay"), make("h264parse", config_interval=-1)]
        if variant == "record":
            mux = make("matroskamux", offset_to_zero=True)
            sink = make("filesink", async_=False)
            Gst.util_set_object_arg(sink, "buffer-mode", "unbuffered")
            split = make("splitmuxsink", muxer=mux, sink=sink, send_keyframe_requests=False)
            split.set_property("max-size-time", 60 * Gst.SECOND)
            split.set_property("location", str(folder / f"cam{i}_%03d.mkv"))
            queue = make("queue", max_size_buffers=0, leaky=2)
            queue.set_property("max-size-time", 10 * Gst.SECOND)
            chain += [make("identity", silent=True), make("tee"), queue, make("valve"), split]
        else:
            chain.append(make("fakesink", sync=False, async_=False))
        pipeline.add(src)
        for el in chain:
            pipeline.add(el)
        for a, b in itertools.pairwise(chain):
            a.link(b)
        first = chain[0].get_static_pad("sink")

        def pad_added(_src: Gst.Element, pad: Gst.Pad) -> None:
            caps = pad.get_current_caps() or pad.query_caps(None)
            if caps.get_structure(0).get_string("media") == "video" and not first.is_linked():
                pad.link(first)

        src.connect("pad-added", pad_added)
        pipeline.set_state(Gst.State.PLAYING)
        return pipeline

    pipelines = [build(i, u) for i, u in enumerate(urls)]
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, lambda: loop.quit() or False)
    loop.run()
    for p in pipelines:
        p.set_state(Gst.State.NULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("urls", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.folder, args.urls)
        return 0
    print(
        f"GStreamer cost floor: {args.cameras} x 1280x720 25 fps snow 2000 kbit/s, "
        f"{args.seconds:g} s windows, {args.repeats} repeat(s), {os.cpu_count()} CPU(s)"
    )
    print(f"{'variant':<14} {'cores':>6} {'x ffmpeg':>9} {'ctxsw/s':>8}   (ffmpeg same round)")
    with SimulatorProcess(
        args.cameras,
        size=(1280, 720),
        fps=25,
        bitrate_kbps=2000,
        gop_seconds=1.0,
        extra_args=["--pattern", "snow"],
    ) as sim:
        urls = [sim.url(name) for name in sim.camera_names]
        for _ in range(args.repeats):
            ff_cores, ff_cs = measure_ffmpeg(urls, args)
            print(f"{'ffmpeg':<14} {ff_cores:>6.3f} {1.0:>9.2f} {ff_cs:>8.0f}", flush=True)
            for variant in args.variants:
                cores, cs = measure_gst(variant, urls, args)
                ratio = cores / ff_cores
                print(f"{variant:<14} {cores:>6.3f} {ratio:>9.2f} {cs:>8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
