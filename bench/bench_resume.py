"""Resume time after the camera returns: nvr's probe against two retry schedules without one.

One camera recorded in-process (NvrApp). The simulator is SIGKILLed (every connection closes at
once), stays away for the outage (default 5 and 60 s; 300 s with --long), and is started again on
the same port. Resume = from `sim.restart()` returning to the camera's state `streaming`
(EngineWatch state events). Three configs, each in the same run:

- nvr: the default config (backoff 5 -> 60 s, a probe every 0.25 s for the first 10 minutes of an
  outage, then every 1 s; once the port was found closed the probe is a TCP connect only and the
  pipeline starts as soon as the port accepts again);
- original: the original system's schedule, backoff 5 -> 60 s and no probe. Approximation: the
  probe cannot be switched off, so `probe_interval_seconds: 60` (the maximum) makes it fire at most
  once a minute; with a 60 s outage it may fire shortly after the return and flatter the baseline;
- fixed10: Frigate's pacing, a fixed 10 s restart loop (initial = max = 10 s), probe off as above.

    .venv/bin/python bench/bench_resume.py [--long] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

from _common import median, temp_dir, verdict

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import EngineWatch, engine_config

TARGET_S = 1.5
CONFIGS: dict[str, dict[str, float]] = {
    "nvr": {},
    "original": {"probe_interval_seconds": 60, "probe_slow_interval_seconds": 60},
    "fixed10": {
        "initial_delay_seconds": 10,
        "max_delay_seconds": 10,
        "probe_interval_seconds": 60,
        "probe_slow_interval_seconds": 60,
    },
}


def resume_once(reconnect: dict[str, float], outage_s: float, gop_s: float) -> float:
    """One outage of ``outage_s``; return the seconds from the camera's return to streaming."""
    with temp_dir("resume") as folder, SimulatorProcess(1, gop_seconds=gop_s) as sim:
        config = engine_config({"cam1": sim.url("cam1")}, storage=folder, **reconnect)
        app = NvrApp(config)
        watch = EngineWatch(app.engine)
        app.start()
        try:
            watch.wait_for("cam1", CameraState.STREAMING, 30)
            down = time.monotonic()
            sim.kill()
            watch.wait_for("cam1", CameraState.RECONNECTING, 10, after=down)
            time.sleep(max(0.0, outage_s - (time.monotonic() - down)))  # the outage itself
            sim.restart()
            back = time.monotonic()
            timeout = outage_s + 120
            return watch.wait_for("cam1", CameraState.STREAMING, timeout, after=back) - back
        finally:
            watch.close()
            app.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="also a 300 s outage")
    parser.add_argument("--outages", type=float, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of outages under 30 s")
    parser.add_argument("--gop", type=float, default=1.0, help="camera keyframe interval (s)")
    args = parser.parse_args(argv)
    outages = args.outages or ([5.0, 60.0, 300.0] if args.long else [5.0, 60.0])
    print(
        "resume time after the camera returns (s, from sim.restart() returning to streaming; "
        f"camera GOP {args.gop:g} s)"
    )
    print(f"{'outage s':>9} {'config':>9} {'median':>8} {'runs':>24}")
    ok = True
    for outage in outages:
        repeats = args.repeats if outage < 30 else 1
        medians: dict[str, float] = {}
        for name, reconnect in CONFIGS.items():
            runs = [resume_once(reconnect, outage, args.gop) for _ in range(repeats)]
            medians[name] = median(runs)
            text = " ".join(f"{r:.2f}" for r in runs)
            print(f"{outage:>9g} {name:>9} {medians[name]:>8.2f} {text:>24}", flush=True)
        met = medians["nvr"] <= TARGET_S
        ok &= met
        print(
            f"  outage {outage:g} s: nvr {medians['nvr']:.2f} s vs original "
            f"{medians['original']:.2f} s ({medians['original'] - medians['nvr']:+.2f} s), "
            f"fixed10 {medians['fixed10']:.2f} s ({medians['fixed10'] - medians['nvr']:+.2f} s); "
            f"target nvr <= {TARGET_S} s median: {verdict(met)}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
