"""Command line of the simulator: ``nvr simulate`` / ``python -m nvr_gstreamer.simulator``.

:func:`add_arguments` fills a parser, :func:`run` serves until SIGINT/SIGTERM and returns the exit
code (0 on a signal, 1 if serving failed, 2 for bad arguments). This module imports GStreamer only
inside :func:`run`.

Longer than ~300 lines: the simulator's every option, validated with the file and value it came
from, is one command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable
from fractions import Fraction
from typing import Any, TypeVar

from nvr_gstreamer.simulator.model import (
    DEFAULT_BITRATE_KBPS,
    DEFAULT_CAMERAS,
    DEFAULT_FPS,
    DEFAULT_GOP_SECONDS,
    DEFAULT_PATTERN,
    DEFAULT_PORT,
    DEFAULT_SIZE,
    AllowedTransports,
    AudioCodec,
    Codec,
    Credentials,
    ReadyInfo,
    SimulatorConfig,
    VideoSize,
    parse_audio,
    parse_camera_option,
    parse_fps,
    parse_transports,
)
from nvr_gstreamer.simulator.scene import Picture

logger = logging.getLogger(__name__)

PATTERNS = ("ball", "smpte", "snow", "pinwheel", "spokes", "zone-plate", "gamut", "circular")

_T = TypeVar("_T")


def _arg_type(parse: Callable[[str], _T], name: str) -> Callable[[str], _T]:
    """Wrap a parser raising ValueError so argparse reports its message and exits with 2."""

    def convert(text: str) -> _T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    convert.__name__ = name
    return convert


def _camera_codec(text: str) -> tuple[str, Codec]:
    name, sep, codec = text.partition("=")
    if not sep or not name:
        raise ValueError(f"expected NAME=CODEC such as cam2=h265, got {text!r}")
    try:
        return name, Codec(codec.lower())
    except ValueError:
        raise ValueError(f"codec must be h264 or h265, got {codec!r}") from None


def _audio_option(text: str) -> tuple[str | None, AudioCodec]:
    return parse_camera_option(text, parse_audio)


def _transports_option(text: str) -> tuple[str | None, AllowedTransports]:
    return parse_camera_option(text, parse_transports)


def _named(parse: Callable[[str], tuple[str | None, _T]]) -> Callable[[str], tuple[str, _T]]:
    """Like ``parse`` but the ``NAME=`` part is required."""

    def convert(text: str) -> tuple[str, _T]:
        name, value = parse(text)
        if name is None:
            raise ValueError(f"expected NAME=VALUE such as cam2=..., got {text!r}")
        return name, value

    return convert


def _split_camera_options(
    given: list[tuple[str | None, _T]], default: _T
) -> tuple[_T, dict[str, _T]]:
    """The value for every camera (the last bare one, else ``default``) and per-camera values."""
    per_camera: dict[str, _T] = {}
    for name, value in given:
        if name is None:
            default = value
        else:
            per_camera[name] = value
    return default, per_camera


def _camera_name(text: str) -> str:
    # The same rule as CameraSpec's names; unknown names are reported once the cameras are known.
    if not text or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in text):
        raise ValueError(f"expected a camera name such as cam2, got {text!r}")
    return text


def _pictures(
    scene: list[str | None], noise: list[str | None]
) -> tuple[Picture, dict[str, Picture]]:
    """The picture of every camera and per camera from ``--scene``/``--noise`` (None: all).

    Noise implies a scene; a camera named by neither option gets the default."""

    def picture(name: str | None) -> Picture:
        if None in noise or name in noise:
            return Picture.NOISY_SCENE
        if None in scene or name in scene:
            return Picture.SCENE
        return Picture.PATTERN

    named = {n for n in (*scene, *noise) if n is not None}
    return picture(None), {name: picture(name) for name in sorted(named)}


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0..65535 (0: any free port), got {text}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser``."""
    parser.add_argument(
        "--cameras",
        type=_arg_type(int, "number"),
        default=DEFAULT_CAMERAS,
        metavar="N",
        help=f"number of cameras cam1..camN (default {DEFAULT_CAMERAS})",
    )
    parser.add_argument(
        "--port",
        type=_arg_type(_port, "port"),
        default=DEFAULT_PORT,
        metavar="P",
        help=f"RTSP port, 0 for any free port (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--control-port",
        type=_arg_type(_port, "port"),
        default=None,
        metavar="P",
        help="HTTP control port on 127.0.0.1 (default: RTSP port + 1; any free port if --port 0)",
    )
    parser.add_argument(
        "--address",
        default="127.0.0.1",
        help="address the RTSP server listens on (default 127.0.0.1)",
    )
    parser.add_argument(
        "--auth",
        type=_arg_type(Credentials.parse, "USER:PASS"),
        default=None,
        metavar="USER:PASS",
        help="require RTSP basic authentication on every camera",
    )
    parser.add_argument(
        "--auth-digest",
        action="store_true",
        help="with --auth: Digest authentication instead of Basic (as many cameras ship)",
    )
    parser.add_argument(
        "--fps",
        type=_arg_type(parse_fps, "fps"),
        default=DEFAULT_FPS,
        metavar="F",
        help=f"frames per second (default {DEFAULT_FPS})",
    )
    parser.add_argument(
        "--size",
        type=_arg_type(VideoSize.parse, "WxH"),
        default=DEFAULT_SIZE,
        metavar="WxH",
        help="frame size (default 640x360)",
    )
    parser.add_argument(
        "--codec",
        type=_arg_type(lambda s: Codec(s.lower()), "codec"),
        default=Codec.H264,
        metavar="h264|h265",
        help="codec of every camera (default h264)",
    )
    parser.add_argument(
        "--camera-codec",
        type=_arg_type(_camera_codec, "NAME=CODEC"),
        action="append",
        default=[],
        metavar="NAME=CODEC",
        help="codec of one camera, e.g. cam2=h265 (repeatable)",
    )
    parser.add_argument(
        "--audio",
        type=_arg_type(_audio_option, "[NAME=]AUDIO"),
        action="append",
        default=[],
        metavar="[NAME=]AUDIO",
        help="audio next to the video: none (default), aac, pcma, pcmu or opus; a bare value sets "
        "every camera, NAME=AUDIO one camera, e.g. --audio pcma --audio cam2=aac (repeatable)",
    )
    parser.add_argument(
        "--camera-audio",
        dest="audio",
        type=_arg_type(_named(_audio_option), "NAME=AUDIO"),
        action="append",
        metavar="NAME=AUDIO",
        help="audio of one camera, e.g. cam2=pcma (repeatable; same as --audio NAME=AUDIO)",
    )
    parser.add_argument(
        "--transports",
        type=_arg_type(_transports_option, "[NAME=]TRANSPORTS"),
        action="append",
        default=[],
        metavar="[NAME=]any|udp|tcp",
        help="RTP transports a camera accepts: any (default), udp (SETUP over TCP gets 461), "
        "tcp (SETUP over UDP gets 461); a bare value sets every camera, NAME=T one camera, "
        "e.g. --transports cam3=udp (repeatable)",
    )
    parser.add_argument(
        "--camera-transports",
        dest="transports",
        type=_arg_type(_named(_transports_option), "NAME=TRANSPORTS"),
        action="append",
        metavar="NAME=any|udp|tcp",
        help="transports of one camera, e.g. cam3=udp (repeatable; same as --transports NAME=T)",
    )
    parser.add_argument(
        "--bitrate",
        type=_arg_type(int, "kbps"),
        default=DEFAULT_BITRATE_KBPS,
        metavar="KBPS",
        help=f"target bitrate in kbit/s (default {DEFAULT_BITRATE_KBPS})",
    )
    parser.add_argument(
        "--gop-seconds",
        type=_arg_type(float, "seconds"),
        default=DEFAULT_GOP_SECONDS,
        metavar="S",
        help=f"seconds between key frames (default {DEFAULT_GOP_SECONDS:g})",
    )
    parser.add_argument(
        "--pattern",
        choices=PATTERNS,
        default=DEFAULT_PATTERN,
        help=f"videotestsrc picture (default {DEFAULT_PATTERN})",
    )
    parser.add_argument(
        "--scene",
        type=_arg_type(_camera_name, "NAME"),
        nargs="?",
        action="append",
        const=None,
        default=[],
        metavar="NAME",
        help="show a still scene instead of the moving pattern, for motion detection: an object "
        "and the brightness are then commanded over the control endpoint; bare: every camera, "
        "NAME: one camera (repeatable); each scene camera is encoded on its own",
    )
    parser.add_argument(
        "--noise",
        type=_arg_type(_camera_name, "NAME"),
        nargs="?",
        action="append",
        const=None,
        default=[],
        metavar="NAME",
        help="a scene with mild sensor noise (implies --scene); bare: every camera, NAME: one "
        "camera (repeatable)",
    )
    parser.add_argument(
        "--no-overlay",
        action="store_true",
        help="do not draw the clock (drawn only if the pango plugin is installed)",
    )


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Build the configuration; raise ValueError with a user-facing message."""
    fps: Fraction = args.fps
    audio, camera_audio = _split_camera_options(args.audio, AudioCodec.NONE)
    transports, camera_transports = _split_camera_options(args.transports, AllowedTransports.ANY)
    picture, camera_pictures = _pictures(args.scene, args.noise)
    return SimulatorConfig.build(
        args.cameras,
        codec=args.codec,
        camera_codecs=dict(args.camera_codec),
        audio=audio,
        camera_audio=camera_audio,
        transports=transports,
        camera_transports=camera_transports,
        picture=picture,
        camera_pictures=camera_pictures,
        port=args.port,
        control_port=args.control_port,
        address=args.address,
        auth=args.auth,
        auth_digest=args.auth_digest,
        fps=fps,
        size=args.size,
        bitrate_kbps=args.bitrate,
        gop_seconds=args.gop_seconds,
        pattern=args.pattern,
        overlay=not args.no_overlay,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM. Prints one ``SIMULATOR READY {json}`` line when serving."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"simulator: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return _serve(config)


def _serve(config: SimulatorConfig) -> int:
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import GLib

    from nvr_gstreamer.gst.loop import init_gstreamer
    from nvr_gstreamer.simulator.control import ControlServer
    from nvr_gstreamer.simulator.server import Simulator, SimulatorError, iter_camera_urls

    init_gstreamer()  # with the project's own elements (the frame stamp)
    loop = GLib.MainLoop()
    exit_code = 0

    def fatal(text: str) -> None:
        nonlocal exit_code
        logger.error("stopping: %s", text)
        exit_code = 1
        loop.quit()

    def signal_cb(signum: int) -> bool:
        logger.info("got %s, stopping", signal.Signals(signum).name)
        loop.quit()
        return GLib.SOURCE_REMOVE

    simulator = Simulator(config)
    control: ControlServer | None = None
    try:
        simulator.start(on_fatal=fatal)
        control = ControlServer(simulator, "127.0.0.1", config.effective_control_port)
        control.start()
        for signum in (signal.SIGINT, signal.SIGTERM):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, signal_cb, signum)
        info = ReadyInfo(
            port=simulator.port,
            control_port=control.port,
            pid=os.getpid(),
            address=config.address,
            cameras=config.cameras,
            auth_user=config.auth.user if config.auth else None,
        )
        _print(info.to_line())
        user = config.auth.user if config.auth else None
        names = tuple(c.name for c in config.cameras)
        for camera, url in zip(
            config.cameras, iter_camera_urls(config.address, info.port, names, user), strict=True
        ):
            _print(f"  {url}  ({camera.describe()})")
        _print(f"  control: http://127.0.0.1:{info.control_port}/cameras")
        loop.run()
    except (SimulatorError, OSError) as exc:
        logger.error("cannot serve: %s", exc)
        return 1
    finally:
        if control is not None:
            control.close()
        simulator.close()
    logger.info("stopped")
    return exit_code


def _print(line: Any) -> None:
    print(line, flush=True)
