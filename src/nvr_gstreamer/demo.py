"""``nvr demo``: simulated cameras recorded into ./demo-recordings, no camera or config needed.

It prints the API and metrics URLs and how to break a camera and watch it come back.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from nvr_gstreamer.api.server import ApiError, ApiServer
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.config import ApiConfig, CameraConfig, MotionConfig, NvrConfig, StorageConfig
from nvr_gstreamer.service.runner import wait_for_signal
from nvr_gstreamer.simulator.model import AudioCodec
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.simulator.scene import OVERLAY_MASKS, Picture

logger = logging.getLogger(__name__)


def demo_config(
    camera_urls: Mapping[str, str],
    output: Path,
    api_port: int = 8080,
    motion_camera: str | None = None,
) -> NvrConfig:
    """The simulated cameras at ``camera_urls`` recorded into ``output`` (one-minute
    segments, kept for a day), the API on ``api_port``; ``motion_camera`` (a scene camera)
    detects motion, with the simulator's overlays masked; everything else as by default."""
    motion = MotionConfig(enabled=True, masks=[list(m) for m in OVERLAY_MASKS])
    return NvrConfig(
        storage=StorageConfig(path=output, segment_seconds=60, retention_days=1),
        api=ApiConfig(port=api_port),
        cameras=[
            CameraConfig(id=name, url=url, motion=motion)
            if name == motion_camera
            else CameraConfig(id=name, url=url)
            for name, url in camera_urls.items()
        ],
    )


def run_demo(args: argparse.Namespace) -> int:
    root = Path(args.output).resolve()
    # Like real cameras, some send audio: cam2 AAC, cam3 G.711 A-law (recorded untouched).
    audio = {"cam2": AudioCodec.AAC, "cam3": AudioCodec.PCMA}
    # The last camera shows a still scene and detects motion (an object moves on command).
    scene = f"cam{args.cameras}" if args.cameras >= 2 else None
    with SimulatorProcess(
        cameras=args.cameras,
        port=args.port,
        control_port=args.port + 1,
        camera_audio={n: a for n, a in audio.items() if int(n[3:]) <= args.cameras},
        camera_pictures={scene: Picture.SCENE} if scene else None,
    ) as sim:
        config = demo_config({n: sim.url(n) for n in sim.camera_names}, root, args.api_port, scene)
        app = NvrApp(config)
        try:
            api = ApiServer(app)
        except ApiError as exc:
            print(f"nvr demo: {exc} (choose another with --api-port)", file=sys.stderr)
            app.storage.stop()
            return 1
        app.start()
        api.start()
        control = f"http://127.0.0.1:{sim.control_port}"
        motion_hint = (
            f"             curl -X POST {control}/cameras/{scene}/object-start  (motion: an "
            f"event on {scene}; object-stop ends it)\n"
            f"             {api.url}/recordings  (every camera's day, events marked)\n"
            if scene
            else ""
        )
        print(
            f"\nnvr demo: recording {len(sim.camera_names)} simulated cameras into {root}\n"
            f"  cameras:   rtsp://127.0.0.1:{sim.port}/cam1 .. cam{len(sim.camera_names)}"
            f"  (ffplay -rtsp_transport tcp rtsp://127.0.0.1:{sim.port}/cam1;"
            " cam2 and cam3 send audio)\n"
            f"  API:       {api.url}/api/cameras   {api.url}/api/health   {api.url}/docs\n"
            f"  metrics:   {api.url}/metrics\n"
            f"  try:       curl -X POST {control}/cameras/cam2/stop     (a camera goes away)\n"
            f"             curl {api.url}/api/cameras/cam2            (reconnecting, next retry)\n"
            f"             curl -X POST {control}/cameras/cam2/resume   (it is back in ~1 s)\n"
            f"             curl -X POST {control}/cameras/cam3/freeze   (a hung camera: "
            "noticed within the stall timeout)\n"
            f"             curl -X POST {api.url}/api/cameras/cam1/recording/stop\n"
            f"{motion_hint}"
            "  Ctrl-C stops.\n",
            flush=True,
        )
        wait_for_signal()  # (a handler that set an Event could deadlock: see there)
        print("nvr demo: stopping, finalising open segments", flush=True)
        api.stop()
        app.stop()
    return 0
