"""The service watchdog: systemd is pinged only while every loop of the program turns.

Every loop beats a :class:`~nvr_gstreamer.core.heartbeat.Heartbeats` as it turns (the
GStreamer loop, each camera's supervisor tick, the storage worker, the API server). Every
``ping_interval_s`` (half systemd's ``WatchdogSec``) this thread sends ``WATCHDOG=1`` — but only
when no loop is older than ``loop_timeout_s``. A wedged loop stops the pings; systemd then
kills and restarts the service, and start-up recovery repairs the open segments as after
``kill -9``. ``STATUS=`` carries a one-line summary, sent when it changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from nvr_gstreamer.camera.status import CameraStatus
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.core.heartbeat import Heartbeats
from nvr_gstreamer.core.sdnotify import SdNotifier
from nvr_gstreamer.storage.volume import VolumeCheck

logger = logging.getLogger(__name__)

# Without a systemd watchdog, the status line is still kept current this often.
STATUS_INTERVAL_S = 5.0


def status_line(
    statuses: Mapping[str, CameraStatus], storage: VolumeCheck, stale: Mapping[str, float]
) -> str:
    """'12/12 cameras streaming, 11 recording, storage ok, 41 % free' (and any stopped loop)."""
    enabled = [s for s in statuses.values() if s.state is not CameraState.DISABLED]
    streaming = sum(1 for s in enabled if s.state is CameraState.STREAMING)
    recording = sum(1 for s in enabled if s.recording)
    text = f"{streaming}/{len(enabled)} cameras streaming, {recording} recording, "
    text += f"storage {storage.state.value}"
    usage = storage.usage
    if usage is not None and usage.total_bytes > 0:
        text += f", {100 * usage.free_bytes / usage.total_bytes:.0f} % free"
    for loop, age in stale.items():
        text += f"; loop {loop} stuck for {age:.0f} s"
    return text


class Watchdog:
    def __init__(
        self,
        notifier: SdNotifier,
        heartbeats: Heartbeats,
        summary: Callable[[Mapping[str, float]], str],
        ping_interval_s: float | None,
        loop_timeout_s: float,
    ) -> None:
        """``summary(stale_loops)`` gives the status line; ``ping_interval_s`` None: systemd
        set no watchdog (the status is kept current all the same)."""
        self._notifier = notifier
        self._heartbeats = heartbeats
        self._summary = summary
        self._ping_s = ping_interval_s
        self._timeout_s = loop_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_status = ""
        self._reported: frozenset[str] = frozenset()

    def start(self) -> None:
        if not self._notifier.enabled:
            return  # nobody listens: nothing to do
        self._thread = threading.Thread(target=self._run, name="nvr-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def tick(self) -> list[str]:
        """One look: what it sends now (also what the tests call)."""
        ages = self._heartbeats.ages()
        stale = {loop: age for loop, age in ages.items() if age >= self._timeout_s}
        if frozenset(stale) != self._reported:
            for loop in sorted(set(stale) - self._reported):
                logger.error(
                    "loop %s has not turned for %.0f s: the service is stuck%s",
                    loop,
                    stale[loop],
                    "; systemd's watchdog is no longer pinged" if self._ping_s else "",
                )
            for loop in sorted(self._reported - set(stale)):
                logger.warning("loop %s turns again", loop)
            self._reported = frozenset(stale)
        fields = []
        if self._ping_s is not None and not stale:
            fields.append("WATCHDOG=1")
        line = self._summary(stale)
        if line != self._last_status:
            self._last_status = line
            fields.append(f"STATUS={line}")
        if fields:
            self._notifier.notify(*fields)
        return fields

    def _run(self) -> None:
        interval = self._ping_s if self._ping_s is not None else STATUS_INTERVAL_S
        while True:
            try:
                self.tick()
            except Exception:
                logger.exception("watchdog tick failed")
            if self._stop.wait(interval):
                return
