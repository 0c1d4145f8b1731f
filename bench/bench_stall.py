"""Stall detection time: a frozen camera (connection open, nothing flows) until `reconnecting`.

One camera recorded in-process (NvrApp); `sim.freeze(cam1)` hangs it. Measured from the freeze
call returning to the engine's `reconnecting` event (EngineWatch). nvr runs with its default
stall timeout of 5 s; the baseline is the same engine with `stall_timeout_seconds: 300`, so only
rtspsrc's own timeout (its GstRTSPSrcTimeout / EOS) can notice the hang.

    .venv/bin/python bench/bench_stall.py [--long] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

from _common import median, temp_dir, verdict

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import EngineWatch, engine_config

STALL_S = 5.0
BASELINE_STALL_S = 300.0


def detect_once(stall_s: float, timeout_s: float) -> float:
    with temp_dir("stall") as folder, SimulatorProcess(1, gop_seconds=1.0) as sim:
        config = engine_config(
            {"cam1": sim.url("cam1")}, storage=folder, stall_timeout_seconds=stall_s
        )
        app = NvrApp(config)
        watch = EngineWatch(app.engine)
        app.start()
        try:
            watch.wait_for("cam1", CameraState.STREAMING, 30)
            sim.freeze("cam1")
            frozen = time.monotonic()
            states = (CameraState.RECONNECTING, CameraState.CONNECTING)
            return watch.wait_for("cam1", states, timeout_s, after=frozen) - frozen
        finally:
            watch.close()
            sim.resume("cam1")
            app.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="more repeats")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    repeats = args.repeats * 2 if args.long else args.repeats
    nvr = [detect_once(STALL_S, 30) for _ in range(repeats)]
    base = [detect_once(BASELINE_STALL_S, 120) for _ in range(max(1, repeats // 2))]
    target = STALL_S + 1.0
    print("stall detection: freeze -> reconnecting (s)")
    print(f"  nvr (stall_timeout {STALL_S:g} s): median {median(nvr):.2f}  runs {_fmt(nvr)}")
    print(
        f"  baseline rtspsrc timeout (stall_timeout {BASELINE_STALL_S:g} s): median "
        f"{median(base):.2f}  runs {_fmt(base)}"
    )
    met = max(nvr) <= target
    print(
        f"  nvr is {median(base) - median(nvr):.1f} s sooner ({median(base) / median(nvr):.1f}x); "
        f"target <= {target:g} s (worst run {max(nvr):.2f} s): {verdict(met)}"
    )
    return 0 if met else 1


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    raise SystemExit(main())
