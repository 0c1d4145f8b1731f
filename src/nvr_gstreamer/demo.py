"""``nvr demo``: simulated cameras, and (once the service exists) recording them with the API."""

from __future__ import annotations

import argparse
import sys


def run_demo(args: argparse.Namespace) -> int:
    from nvr_gstreamer.simulator import cli as sim_cli

    parser = argparse.ArgumentParser(prog="nvr demo")
    sim_cli.add_arguments(parser)
    sim_args = parser.parse_args(["--cameras", str(args.cameras), "--port", str(args.port)])
    print(
        "nvr demo: serving simulated cameras. Recording them into ./demo-recordings with the\n"
        "HTTP API and metrics comes with the Service issue; until then, watch a camera with\n"
        f"  ffplay -rtsp_transport tcp rtsp://127.0.0.1:{args.port}/cam1\n"
        "Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )
    return sim_cli.run(sim_args)
