"""``nvr run``: the recorder as a long-running service.

Storage is claimed and recovered, the cameras start, the API binds; then systemd hears
``READY=1`` (when it started us with ``Type=notify``), the watchdog keeps ``STATUS=`` current
and pings only while every loop turns, and SIGTERM or SIGINT stop everything with every open
segment finalised (``STOPPING=1`` first).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Mapping

from nvr_gstreamer.config import NvrConfig
from nvr_gstreamer.core.sdnotify import SdNotifier, watchdog_interval_s
from nvr_gstreamer.service.watchdog import Watchdog, status_line

logger = logging.getLogger("nvr_gstreamer.run")

EXIT_OK = 0
EXIT_CONFIG = 1


def wait_for_signal() -> int:
    """Block until SIGTERM or SIGINT; return the signal number.

    The handler only appends to a list: one that called ``Event.set()`` could run while the
    main thread held that Event's lock inside ``wait()`` and wait for itself forever (seen: a
    demo that never stopped). ``time.sleep`` is cut short by the signal."""
    got: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        got.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    while not got:
        time.sleep(1.0)
    return got[0]


def run_service(config: NvrConfig) -> int:
    from nvr_gstreamer.api.server import ApiError, ApiServer
    from nvr_gstreamer.app import NvrApp

    notifier = SdNotifier()
    try:
        app = NvrApp(config)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"nvr run: cannot use storage folder {config.storage.path}: {reason}", file=sys.stderr
        )
        return EXIT_CONFIG
    try:
        api = ApiServer(app)
    except ApiError as exc:
        print(f"nvr run: {exc}", file=sys.stderr)
        app.storage.stop()
        return EXIT_CONFIG
    app.start()
    api.start()
    logger.info("API at %s/api/cameras, metrics at %s/metrics", api.url, api.url)

    def summary(stale: Mapping[str, float]) -> str:
        return status_line(app.engine.statuses(), app.storage.state, stale)

    ping_s = watchdog_interval_s(os.environ, os.getpid())
    watchdog = Watchdog(
        notifier,
        app.heartbeats,
        summary,
        ping_s / 2 if ping_s is not None else None,
        config.service.loop_timeout_seconds,
    )
    if notifier.enabled:
        notifier.notify("READY=1", f"MAINPID={os.getpid()}", f"STATUS={summary({})}")
        logger.info(
            "systemd notified: ready%s",
            f"; watchdog pinged every {ping_s / 2:g} s while every loop turns" if ping_s else "",
        )
    watchdog.start()
    signum = wait_for_signal()
    logger.info("signal %d: stopping, finalising open segments", signum)
    notifier.notify("STOPPING=1", "STATUS=stopping: finalising open segments")
    watchdog.stop()
    api.stop()
    app.stop()
    notifier.close()
    return EXIT_OK
