"""``python -m nvr_gstreamer.simulator``: the camera simulator without the main CLI."""

from __future__ import annotations

import argparse

from nvr_gstreamer.simulator.cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nvr_gstreamer.simulator",
        description="Serve simulated RTSP cameras with per-camera stop/freeze/resume faults.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
