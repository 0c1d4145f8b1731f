"""The ``nvr`` command: run, gui, demo, service, check-config, probe, simulate."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from nvr_gstreamer import __version__
from nvr_gstreamer.config import ConfigError, NvrConfig, load_config
from nvr_gstreamer.core.logsetup import setup_logging
from nvr_gstreamer.core.redact import redact, redact_url

UNIT_DIR = "/etc/systemd/system"

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_USAGE = 2


def _summary(config: NvrConfig, source: str) -> str:
    cams = config.cameras
    recording = sum(1 for c in cams if c.enabled and c.record)
    disabled = sum(1 for c in cams if not c.enabled)
    st = config.storage
    lines = [
        f"{source}: OK",
        f"  cameras: {len(cams)} ({recording} recording continuously, {disabled} disabled)",
        f"  storage: {st.path} (segments {st.segment_seconds} s, retention "
        f"{st.retention_days or 'until space runs out'}"
        f"{' days' if st.retention_days else ''}, keep {st.min_free_percent:g}% free)",
        f"  reconnect: {config.reconnect.initial_delay_seconds:g} s doubling to "
        f"{config.reconnect.max_delay_seconds:g} s, stall after "
        f"{config.reconnect.stall_timeout_seconds:g} s",
        f"  api: http://{config.api.host}:{config.api.port}"
        f"{' (token required)' if config.api.token else ''}",
        "  catalog: "
        + (redact_url(config.catalog.url.get_secret_value()) if config.catalog.url else
           f"{st.path / 'catalog.sqlite3'} (SQLite)"),
    ]  # fmt: skip
    if st.remote is not None:
        lines.append(f"  object storage: {st.remote.endpoint} bucket {st.remote.bucket}")
    if config.cluster is not None:
        k = config.cluster
        lines.append(
            f"  cluster node: {k.node_id} (capacity {k.capacity}, lease {k.lease_seconds:g} s"
            f"{', site ' + k.site if k.site else ''})"
        )
    for c in cams:
        flags: list[str] = [c.transport]
        if not c.enabled:
            flags.append("disabled")
        elif c.record:
            flags.append("record")
        lines.append(f"  - {c.id} ({c.display_name}): {redact_url(c.url)} [{', '.join(flags)}]")
    return "\n".join(lines)


def _cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        n = len(exc.problems)
        print(f"{exc.source}: {n} problem{'s' if n != 1 else ''}", file=sys.stderr)
        return EXIT_CONFIG
    print(_summary(config, args.config))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    from nvr_gstreamer.service.runner import run_service

    return run_service(config)


def _cmd_cluster(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    if config.catalog.url is None or config.cluster is None:
        print(f"{args.config}: not a cluster node (cluster and catalog.url)", file=sys.stderr)
        return EXIT_CONFIG
    from nvr_gstreamer.cluster.status import cluster_status, format_status
    from nvr_gstreamer.storage.database import DB_ERRORS, Connector

    db = Connector(None, config.catalog.url.get_secret_value())
    try:
        with db.transaction() as tx:
            status = cluster_status(tx, config.cluster.lease_seconds)
    except DB_ERRORS as exc:
        print(f"cannot read the cluster: {redact(str(exc))}", file=sys.stderr)
        return 1
    finally:
        db.reset()
    print(format_status(status))
    return EXIT_OK


def _cmd_service(args: argparse.Namespace) -> int:
    from nvr_gstreamer.service import unit

    unit_dir = Path(args.unit_dir)
    if args.action == "uninstall":
        try:
            removed = unit.uninstall(args.name, unit_dir, stop=not args.no_start)
        except unit.ServiceError as exc:
            print(f"nvr service uninstall: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        if removed is None:
            print(f"no {unit_dir / f'{args.name}.service'}: nothing to remove")
        else:
            print(f"removed {removed}; the user and the recordings are kept")
        return EXIT_OK
    if args.config is None:
        print("nvr service install: -c CONFIG is required", file=sys.stderr)
        return EXIT_USAGE
    config_path = Path(args.config).absolute()
    try:
        config = load_config(config_path)
    except ConfigError as exc:  # the same errors as check-config
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    try:
        spec = unit.UnitSpec(
            name=args.name,
            executable=unit.nvr_executable(),
            config=config_path,
            storage=Path(config.storage.path).absolute(),
            user=args.user,
        )
        if args.print:
            print(unit.render_unit(spec), end="")
            return EXIT_OK
        path = unit.install(spec, unit_dir, start=not args.no_start)
    except (unit.ServiceError, OSError) as exc:
        print(f"nvr service install: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.no_start:
        print(
            f"wrote {path}; start it with: systemctl daemon-reload && "
            f"systemctl enable --now {args.name}"
        )
    else:
        print(f"started {args.name}.service ({path}); its logs: journalctl -u {args.name}")
    return EXIT_OK


def _cmd_gui(args: argparse.Namespace) -> int:
    try:
        from nvr_gstreamer.gui.main import run_gui
    except ImportError as exc:
        print(
            f"nvr gui: the desktop app needs PySide6 and its system libraries ({exc}); "
            "run scripts/setup",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    return run_gui(args.config, args.demo_output, args.demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from nvr_gstreamer.demo import run_demo

    return run_demo(args)


def _cmd_probe(args: argparse.Namespace) -> int:
    from nvr_gstreamer.camera import probe_report as pr
    from nvr_gstreamer.core.redact import register_secret

    try:
        request = pr.make_request(args.url, args.user, args.password, args.timeout, args.seconds)
    except pr.ProbeUsageError as exc:
        print(f"nvr probe: {exc}", file=sys.stderr)
        return int(pr.ExitCode.USAGE)
    for secret in pr.secrets_of(request):
        register_secret(secret)
    from nvr_gstreamer.gst.discover import run_probe

    report = run_probe(request)
    print(pr.render_json(report) if args.json else pr.render_text(report))
    return report.exit_code


def _cmd_simulate(args: argparse.Namespace) -> int:
    from nvr_gstreamer.simulator import cli as sim_cli

    return sim_cli.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nvr", description="nvr_gstreamer: a network video recorder on GStreamer."
    )
    parser.add_argument("--version", action="version", version=f"nvr {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the recorder service (cameras, recording, HTTP API)")
    p.add_argument("-c", "--config", required=True, help="config file (YAML)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("gui", help="open the desktop app (live grid, recording, playback)")
    p.add_argument("-c", "--config", help="config file (YAML); without it, offers demo cameras")
    p.add_argument(
        "--demo", action="store_true", help="without -c: start the simulated demo cameras at once"
    )
    p.add_argument(
        "--demo-output", default="demo-recordings", help="where the demo cameras are recorded"
    )
    p.set_defaults(func=_cmd_gui)

    p = sub.add_parser("demo", help="simulated cameras recorded into ./demo-recordings")
    p.add_argument("--cameras", type=int, default=4, help="number of simulated cameras")
    p.add_argument("--port", type=int, default=8554, help="RTSP port of the simulator")
    p.add_argument("--output", default="demo-recordings", help="where the recordings go")
    p.add_argument("--api-port", type=int, default=8080, help="port of the HTTP API")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "service",
        help="install or remove the systemd unit that runs `nvr run` at boot",
        description="install: validate the config, create the system user, give it the "
        "storage root, write /etc/systemd/system/NAME.service (Type=notify, watchdog, "
        "hardened), enable and start it. uninstall: stop, disable and remove the unit "
        "(the user and the recordings stay).",
    )
    p.add_argument("action", choices=["install", "uninstall"])
    p.add_argument("-c", "--config", help="config file (YAML), for install")
    p.add_argument("--user", default="nvr", help="system user the service runs as")
    p.add_argument("--name", default="nvr", help="unit name (NAME.service)")
    p.add_argument("--print", action="store_true", help="print the unit and do nothing else")
    p.add_argument("--unit-dir", default=UNIT_DIR, help="where the unit goes (default %(default)s)")
    p.add_argument(
        "--no-start", action="store_true", help="write (or remove) the unit; leave systemctl alone"
    )
    p.set_defaults(func=_cmd_service)

    p = sub.add_parser("cluster", help="cluster mode: show nodes and who records which camera")
    p.add_argument("action", choices=["status"], help="status: nodes, leases and cameras")
    p.add_argument("-c", "--config", required=True, help="a node's config file (YAML)")
    p.set_defaults(func=_cmd_cluster)

    p = sub.add_parser("check-config", help="validate a config file and summarise it")
    p.add_argument("config", help="config file (YAML)")
    p.set_defaults(func=_cmd_check_config)

    from nvr_gstreamer.camera import probe_report as pr

    p = sub.add_parser(
        "probe",
        help="connect to a camera once: reachability, auth, transports, streams, GOP, bitrate",
        description="Connect to URL once over RTP/TCP and once over RTP/UDP, as the recorder\n"
        "would, and report what setting up the camera needs: whether it is reachable (and\n"
        "why not), the authentication result, which transports work, and every stream with\n"
        "its codec, resolution, frame rate, measured GOP and bitrate, audio rate and\n"
        "channels. The password never appears in any output.",
        epilog=pr.exit_code_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="URL", help="rtsp://[user:password@]host[:port]/path")
    p.add_argument("--user", help="RTSP user name; ${ENV_VAR} is taken from the environment")
    p.add_argument(
        "--password", help="RTSP password; write '${ENV_VAR}' to take it from the environment"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=pr.DEFAULT_TIMEOUT_S,
        help="seconds each attempt may take to connect and bring media (default %(default)g)",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=pr.DEFAULT_WINDOW_S,
        help="measure until every video stream showed two keyframes, at most this many "
        "seconds (default %(default)g)",
    )
    p.add_argument(
        "--json", action="store_true", help=f"print JSON (schema {pr.SCHEMA}, see README)"
    )
    p.set_defaults(func=_cmd_probe)

    from nvr_gstreamer.simulator import cli as sim_cli

    p = sub.add_parser("simulate", help="serve simulated RTSP cameras for tests and demos")
    sim_cli.add_arguments(p)
    p.set_defaults(func=_cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(logging, args.log_level))
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return result
