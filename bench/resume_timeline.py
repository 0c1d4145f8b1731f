"""Where the resume time goes: a timeline of one camera's return, event by event.

Diagnostic for bench_resume (issue 7, item 2). Same scenario (one recorded camera in-process,
simulator SIGKILLed, away for --outage s, started again on the same port); every line is a
time relative to `sim.restart()` returning: probes sent and their results, pipeline starts,
the pipeline's state changes, rtspsrc's pad (the first RTP data), the first buffer after the
parser and whether it is a keyframe, the state `streaming` (what bench_resume measures) and
the first frame through the recorder's keyframe gate (the first recorded frame).

The hooks wrap methods of this process's classes (only here, never in the product), so the
timeline costs the product nothing.

    .venv/bin/python bench/resume_timeline.py [--outage 5] [--gop 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from _common import temp_dir
from gi.repository import Gst

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.supervisor import CameraState, Reach
from nvr_gstreamer.engine import engine as engine_mod
from nvr_gstreamer.engine import runtime as runtime_mod
from nvr_gstreamer.gst import pipeline as pipeline_mod
from nvr_gstreamer.gst import recorder as recorder_mod
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import EngineWatch, engine_config

marks: list[tuple[float, str]] = []


def mark(what: str) -> None:
    marks.append((time.monotonic(), what))


def install_hooks() -> None:
    prober = engine_mod.ThreadProber
    submit = prober.submit

    def timed_submit(
        self: Any, url: str, timeout_s: float, connect_only: bool, done: Callable[[Reach], None]
    ) -> None:
        sent = time.monotonic()
        kind = "connect" if connect_only else "DESCRIBE"

        def timed_done(reach: Reach) -> None:
            mark(f"probe ({kind}) -> {reach.value}, sent {time.monotonic() - sent:.3f} s before")
            done(reach)

        submit(self, url, timeout_s, connect_only, timed_done)

    prober.submit = timed_submit  # type: ignore[method-assign]

    runtime = runtime_mod.CameraRuntime
    start = runtime._start_pipeline

    def timed_start(self: Any, generation: int) -> None:
        mark(f"StartPipeline (generation {generation})")
        start(self, generation)

    runtime._start_pipeline = timed_start  # type: ignore[method-assign]

    cls = pipeline_mod.CameraPipeline
    bus_cb, pad_cb, first_cb = cls._bus_cb, cls._pad_added_cb, cls._first_buffer_cb

    def timed_bus(self: Any, bus: Any, message: Any) -> bool:
        if message.type == Gst.MessageType.STATE_CHANGED and message.src is self.pipeline:
            _old, new, _pending = message.parse_state_changed()
            mark(f"pipeline {new.value_nick}")
        return bool(bus_cb(self, bus, message))

    def timed_pad(self: Any, src: Any, pad: Any) -> None:
        mark("rtspsrc pad added (first RTP data)")
        pad_cb(self, src, pad)

    def timed_first(self: Any, pad: Any, info: Any) -> Any:
        delta = info.get_buffer().has_flags(Gst.BufferFlags.DELTA_UNIT)
        mark(f"first buffer after the parser ({'delta' if delta else 'keyframe'})")
        return first_cb(self, pad, info)

    cls._bus_cb = timed_bus  # type: ignore[method-assign]
    cls._pad_added_cb = timed_pad  # type: ignore[method-assign]
    cls._first_buffer_cb = timed_first  # type: ignore[method-assign]

    rec = recorder_mod.RecorderBranch
    gate_cb = rec._keyframe_gate_cb

    def timed_gate(self: Any, pad: Any, info: Any) -> Any:
        buf = info.get_buffer()
        key = buf is not None and not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        if key and not self.gate_passed:
            mark("first recorded frame (through the keyframe gate)")
        return gate_cb(self, pad, info)

    rec._keyframe_gate_cb = timed_gate  # type: ignore[method-assign]


def timeline(outage_s: float, gop_s: float, reconnect: dict[str, float]) -> float:
    marks.clear()
    with temp_dir("timeline") as folder, SimulatorProcess(1, gop_seconds=gop_s) as sim:
        app = NvrApp(engine_config({"cam1": sim.url("cam1")}, storage=folder, **reconnect))
        watch = EngineWatch(app.engine)
        app.start()
        try:
            watch.wait_for("cam1", CameraState.STREAMING, 30)
            down = time.monotonic()
            sim.kill()
            watch.wait_for("cam1", CameraState.RECONNECTING, 10, after=down)
            time.sleep(max(0.0, outage_s - (time.monotonic() - down)))  # the outage itself
            mark("sim.restart() called")
            sim.restart()
            back = time.monotonic()
            mark("sim.restart() returned")
            streaming = watch.wait_for("cam1", CameraState.STREAMING, outage_s + 120, after=back)
            mark("state streaming (what bench_resume measures)")
            time.sleep(1.0)  # let the recorder's gate report
        finally:
            watch.close()
            app.stop()
    for at, what in marks:
        if at >= back - 0.5:
            print(f"  {at - back:+8.3f}  {what}")
    return streaming - back


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=5.0)
    parser.add_argument("--gop", type=float, default=1.0, help="camera keyframe interval (s)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--probe-interval", type=float, default=None)
    args = parser.parse_args(argv)
    reconnect = (
        {} if args.probe_interval is None else {"probe_interval_seconds": args.probe_interval}
    )
    install_hooks()
    print(f"resume timeline: outage {args.outage:g} s, GOP {args.gop:g} s (s from restart())")
    for run in range(1, args.runs + 1):
        print(f"run {run}:")
        resume = timeline(args.outage, args.gop, reconnect)
        print(f"  resume {resume:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
