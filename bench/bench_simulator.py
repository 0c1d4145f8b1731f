"""CPU cost of the camera simulator per served camera.

Starts the simulator with 1 camera and then with N cameras (default 16, 640x360, 15 fps), attaches
one real RTSP client per camera (``rtspsrc protocols=tcp ! fakesink`` in a *separate* process, so
the client's CPU is not counted), and measures the simulator process's CPU time (user + system)
over a fixed window. Prints CPU as a fraction of one core, per served camera, and the N/1 ratio.

    .venv/bin/python bench/bench_simulator.py [--cameras 16] [--size 640x360] [--fps 15]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import psutil

from nvr_gstreamer.simulator.cli import PATTERNS
from nvr_gstreamer.simulator.model import Codec, VideoSize
from nvr_gstreamer.simulator.process import SimulatorProcess

CLIENT_READY = "CLIENT READY"


@dataclass(frozen=True, slots=True)
class RunResult:
    cameras: int
    cpu_cores: float
    """Simulator CPU time / wall time: 1.0 is one core busy."""
    packets_per_s: tuple[float, ...]
    """RTP packets per second received by each camera's client."""
    rss_mib: float

    @property
    def cpu_per_camera(self) -> float:
        return self.cpu_cores / self.cameras


def run_client(urls: list[str]) -> int:
    """Client process: one ``rtspsrc ! fakesink`` per URL; reports packet counts on request."""
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    counts = [0] * len(urls)
    first = threading.Event()
    lock = threading.Lock()
    pipeline = Gst.Pipeline.new("clients")
    for index, url in enumerate(urls):
        src = Gst.ElementFactory.make("rtspsrc")
        src.set_property("location", url)
        src.set_property("protocols", "tcp")
        src.set_property("latency", 200)
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        pipeline.add(src)
        pipeline.add(sink)

        def pad_added_cb(_src: Gst.Element, pad: Gst.Pad, sink: Gst.Element = sink) -> None:
            pad.link(sink.get_static_pad("sink"))

        def count_cb(
            _pad: Gst.Pad, _info: Gst.PadProbeInfo, index: int = index
        ) -> Gst.PadProbeReturn:
            with lock:
                counts[index] += 1
                if all(counts):
                    first.set()
            return Gst.PadProbeReturn.OK

        src.connect("pad-added", pad_added_cb)
        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count_cb)
    pipeline.set_state(Gst.State.PLAYING)
    if not first.wait(30):
        print(f"no data from {counts.count(0)} camera(s)", file=sys.stderr, flush=True)
        pipeline.set_state(Gst.State.NULL)
        return 1
    print(CLIENT_READY, flush=True)
    for line in sys.stdin:  # "report" -> counts; EOF -> quit
        if line.strip() == "report":
            with lock:
                print(json.dumps(counts), flush=True)
    pipeline.set_state(Gst.State.NULL)
    return 0


class ClientProcess:
    def __init__(self, urls: list[str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--client", *urls],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._readline(40.0)
        if line != CLIENT_READY:
            self.close()
            raise RuntimeError(f"client not ready: {line!r}")

    def _readline(self, timeout_s: float) -> str:
        assert self._process.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self._process.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout_s)
        return result[0].strip() if result else ""

    def counts(self) -> list[int]:
        assert self._process.stdin is not None
        self._process.stdin.write("report\n")
        self._process.stdin.flush()
        return [int(c) for c in json.loads(self._readline(10.0))]

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def measure(cameras: int, args: argparse.Namespace) -> RunResult:
    size: VideoSize = args.size
    with SimulatorProcess(
        cameras,
        codec=Codec(args.codec),
        fps=args.fps,
        size=(size.width, size.height),
        gop_seconds=1.0,
        bitrate_kbps=args.bitrate,
        extra_args=["--pattern", args.pattern],
    ) as sim:
        client = ClientProcess([sim.url(name) for name in sim.camera_names])
        try:
            status = sim.status()
            served = sum(1 for s in status.values() if s.clients >= 1)
            if served != cameras:
                raise RuntimeError(f"only {served} of {cameras} cameras have a client")
            time.sleep(args.warmup)  # let start-up costs settle before the window
            process = psutil.Process(sim.pid)
            cpu0, wall0, counts0 = _cpu(process), time.monotonic(), client.counts()
            time.sleep(args.seconds)  # the measurement window itself
            cpu1, wall1, counts1 = _cpu(process), time.monotonic(), client.counts()
            rss_mib = process.memory_info().rss / 2**20
        finally:
            client.close()
    wall = wall1 - wall0
    rates = tuple((b - a) / wall for a, b in zip(counts0, counts1, strict=True))
    return RunResult(cameras, (cpu1 - cpu0) / wall, rates, rss_mib)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--size", type=VideoSize.parse, default=VideoSize(640, 360))
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--codec", choices=[c.value for c in Codec], default="h264")
    parser.add_argument("--pattern", choices=PATTERNS, default="ball", help="test picture")
    parser.add_argument("--bitrate", type=int, default=None, help="kbit/s (simulator default)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--client", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        return run_client(args.client)

    print(
        f"simulator benchmark: {args.size} @ {args.fps:g} fps {args.codec}, pattern "
        f"{args.pattern}, one TCP client per camera in a separate process, {args.seconds:g} s "
        f"window, {os.cpu_count()} CPU(s)"
    )
    results = [measure(1, args), measure(args.cameras, args)]
    header = ("cameras", "cpu (cores)", "cpu/camera", "rtp pkt/s/cam", "rss MiB")
    print("{:>8} {:>12} {:>11} {:>16} {:>8}".format(*header))
    for r in results:
        rates = f"{min(r.packets_per_s):.0f}-{max(r.packets_per_s):.0f}"
        print(
            f"{r.cameras:>8} {r.cpu_cores:>12.3f} {r.cpu_per_camera:>11.4f} {rates:>16} "
            f"{r.rss_mib:>8.1f}"
        )
    one, many = results
    ratio = many.cpu_cores / one.cpu_cores if one.cpu_cores else float("inf")
    marginal = (many.cpu_cores - one.cpu_cores) / (many.cameras - 1) if many.cameras > 1 else 0.0
    print(f"ratio {many.cameras} cameras / 1 camera: {ratio:.2f}x CPU for {many.cameras}x cameras")
    print(f"marginal cost per additional served camera: {marginal:.4f} of a core")
    fits = many.cpu_cores < 1.0
    verdict = "YES" if fits else "NO"
    print(
        f"{many.cameras} cameras fit under one core: {verdict} ({many.cpu_cores:.3f} of one core)"
    )
    starved = [i + 1 for i, rate in enumerate(many.packets_per_s) if rate < args.fps * 0.9]
    if starved:
        print(f"WARNING: cameras {starved} received fewer RTP packets than frames per second")
    return 0 if fits else 1


if __name__ == "__main__":
    raise SystemExit(main())
