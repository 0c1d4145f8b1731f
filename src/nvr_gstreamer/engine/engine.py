"""The camera engine: every camera's runtime on one GStreamer loop thread.

Thread-safe facade for the service and the desktop app: start/stop cameras from any thread,
read immutable :class:`CameraStatus` snapshots from any thread, subscribe to state changes
(listeners run on the loop thread and must hand work to their own thread themselves).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

from nvr_gstreamer.camera.backoff import Backoff
from nvr_gstreamer.camera.media import FrameCallback, Media
from nvr_gstreamer.camera.probe import probe_camera
from nvr_gstreamer.camera.status import CameraStatus, EngineEvent
from nvr_gstreamer.camera.supervisor import Reach, SupervisorSettings
from nvr_gstreamer.camera.webrtc import SendSignal
from nvr_gstreamer.config import NvrConfig, ReconnectConfig
from nvr_gstreamer.core.clock import Clock, SystemClock
from nvr_gstreamer.core.heartbeat import Heartbeats
from nvr_gstreamer.engine.gst_media import GstMedia
from nvr_gstreamer.engine.runtime import CameraRuntime, RuntimeSettings
from nvr_gstreamer.engine.webrtc_view import WebRtcSession
from nvr_gstreamer.gst.loop import GstLoop, Timer
from nvr_gstreamer.storage.service import StorageService
from nvr_gstreamer.storage.volume import VolumeCheck

logger = logging.getLogger(__name__)

Listener = Callable[[EngineEvent], None]
MediaFactory = Callable[[GstLoop, Executor], Media]


class ThreadProber:
    """Runs reachability probes on a small pool, never on the loop thread."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nvr-probe")

    def submit(
        self, url: str, timeout_s: float, connect_only: bool, done: Callable[[Reach], None]
    ) -> None:
        def run() -> None:
            done(probe_camera(url, timeout_s, connect_only))

        self._pool.submit(run)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def runtime_settings(reconnect: ReconnectConfig) -> RuntimeSettings:
    backoff = Backoff(
        initial_s=reconnect.initial_delay_seconds,
        cap_s=reconnect.max_delay_seconds,
        max_retries=reconnect.max_retries,
    )
    stall_s = reconnect.stall_timeout_seconds
    return RuntimeSettings(
        supervisor=SupervisorSettings(
            backoff=backoff,
            probe_interval_s=reconnect.probe_interval_seconds,
            probe_slow_interval_s=reconnect.probe_slow_interval_seconds,
            probe_slow_after_s=reconnect.probe_slow_after_seconds,
            connect_timeout_s=max(10.0, 2 * stall_s),
        ),
        stall_timeout_s=stall_s,
        probe_timeout_s=min(2.0, max(0.5, reconnect.probe_interval_seconds)),
    )


class CameraEngine:
    def __init__(
        self,
        config: NvrConfig,
        clock: Clock | None = None,
        prober: ThreadProber | None = None,
        storage: StorageService | None = None,
        media: MediaFactory = GstMedia,
        heartbeats: Heartbeats | None = None,
    ) -> None:
        """``media`` makes each camera's pipelines and branches (GStreamer's by default)."""
        self._config = config
        # The poll beats "gst-loop" (the loop turns) and "camera:ID" (that camera's tick ran).
        self._heartbeats = heartbeats
        self._clock = clock or SystemClock()
        self.storage = storage
        self.loop = GstLoop()
        self._prober = prober or ThreadProber()
        self._teardown = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nvr-teardown")
        settings = runtime_settings(config.reconnect)
        self._poll_interval_s = min(0.5, settings.stall_timeout_s / 2)
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        self._viewer_tokens = 0
        self._statuses: dict[str, CameraStatus] = {}
        self._changed = threading.Condition()  # notified with every status published
        self._media = media(self.loop, self._teardown)
        self.runtimes: dict[str, CameraRuntime] = {
            cam.id: CameraRuntime(
                cam,
                self.loop,
                self._clock,
                settings,
                self._prober,
                self._media,
                self._publish,
                storage,
            )
            for cam in config.cameras
        }
        if storage is not None:
            storage.subscribe(self._storage_changed)
        self._statuses = {cid: rt.status for cid, rt in self.runtimes.items()}
        self._poll_timer: Timer | None = None
        self._running = False

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self, cameras: bool = True) -> None:
        """Start the loop and (unless ``cameras`` is false: a cluster node starts the cameras
        it claims, one by one) every camera."""
        self.loop.start()
        self.loop.call_sync(lambda: self._start_all(cameras))
        self._running = True

    def _start_all(self, cameras: bool) -> None:
        for rt in self.runtimes.values() if cameras else ():
            rt.start()
        self._poll_timer = self.loop.every(self._poll_interval_s, self._poll_all)
        self._poll_all()  # every loop is watched from the start, even if it never turns

    def stop(self) -> None:
        """Stop every camera and the loop. Idempotent."""
        if not self._running:
            return
        self._running = False
        self.loop.call_sync(self._stop_all)
        self._teardown.shutdown(wait=True)
        self._prober.shutdown()
        self.loop.stop()

    def _stop_all(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.cancel()
            self._poll_timer = None
        if self._heartbeats is not None:  # stopped on purpose: no longer watched
            for name in ("gst-loop", *(f"camera:{cid}" for cid in self.runtimes)):
                self._heartbeats.forget(name)
        for rt in self.runtimes.values():
            rt.stop()

    def _storage_changed(self, check: VolumeCheck) -> None:
        # On the storage worker: hand over to the loop.
        for rt in self.runtimes.values():
            self.loop.call(rt.on_storage_checked, check)

    def _poll_all(self) -> None:
        beats = self._heartbeats
        if beats is not None:
            beats.beat("gst-loop")
        for cid, rt in self.runtimes.items():
            try:
                rt.poll()
            except Exception:
                logger.exception("[%s] camera tick failed", cid)
                continue  # its heartbeat stops: the service says so
            if beats is not None:
                beats.beat(f"camera:{cid}")

    # ---- per camera, from any thread -------------------------------------------------------

    def start_camera(self, camera_id: str) -> None:
        self.loop.call(self.runtimes[camera_id].start)

    def stop_camera(self, camera_id: str) -> None:
        self.loop.call(self.runtimes[camera_id].stop)

    def add_viewer(self, camera_id: str, callback: FrameCallback) -> int:
        """Decode this camera's video for ``callback`` (called on a streaming thread).

        Returns at once (the GUI thread must never wait for the loop); the token is for
        :meth:`remove_viewer`."""
        runtime = self.runtimes[camera_id]
        with self._listeners_lock:
            self._viewer_tokens += 1
            token = self._viewer_tokens
        self.loop.call(runtime.add_viewer, callback, token)
        return token

    def remove_viewer(self, camera_id: str, token: int) -> None:
        self.loop.call(self.runtimes[camera_id].remove_viewer, token)

    def add_web_viewer(self, camera_id: str, fd: int) -> int:
        """Serve this camera's video to a viewer's socket ``fd`` as WebSocket messages of
        fragmented MP4 (native/nvrlivesink.c): the init segment and the current GOP at once,
        then every frame. The engine owns ``fd`` from now on. From any thread."""
        web = self.runtimes[camera_id].web
        return self.loop.call_sync(lambda: web.add_viewer(fd))

    def remove_web_viewer(self, camera_id: str, token: int) -> None:
        self.loop.call(self.runtimes[camera_id].web.remove_viewer, token)

    def add_webrtc_viewer(self, camera_id: str, send: SendSignal) -> WebRtcSession:
        """A WebRTC session for this camera; ``send`` (any thread, must not block) hears the
        offer, ICE candidates and the end (unsupported codec, camera restarted, failure).
        From any thread; returns at once."""
        view = self.runtimes[camera_id].webrtc
        with self._listeners_lock:
            self._viewer_tokens += 1
            token = self._viewer_tokens
        self.loop.call(view.add_viewer, token, send)
        return WebRtcSession(self.loop, view, token)

    def remove_webrtc_viewer(self, session: WebRtcSession) -> None:
        session.close()

    def webrtc_branches(self, camera_id: str) -> int:
        """WebRTC branches attached to this camera now (any thread but the loop's)."""
        view = self.runtimes[camera_id].webrtc
        return self.loop.call_sync(lambda: view.branches)

    def start_recording(self, camera_id: str, timeout_s: float = 5.0) -> bool:
        runtime = self.runtimes[camera_id]
        return self.loop.call_sync(runtime.start_recording, timeout_s)

    def stop_recording(self, camera_id: str) -> None:
        self.loop.call(self.runtimes[camera_id].stop_recording)

    def request_recording(self, camera_id: str, on: bool) -> None:
        """Switch recording on or off without waiting (any thread; unknown camera: ignored).
        What happened is told to the listeners (:class:`RecordingChanged`)."""
        runtime = self.runtimes.get(camera_id)
        if runtime is not None:
            self.loop.call(runtime.start_recording if on else runtime.stop_recording)

    # ---- status and events ----------------------------------------------------------------

    def status(self, camera_id: str) -> CameraStatus:
        return self._statuses[camera_id]

    def statuses(self) -> dict[str, CameraStatus]:
        return dict(self._statuses)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def wait_status(
        self, camera_id: str, predicate: Callable[[CameraStatus], bool], timeout_s: float
    ) -> tuple[bool, CameraStatus]:
        """Wait (never on the loop thread) until the camera's status satisfies ``predicate``,
        woken by each status the engine publishes; (False, the status then) after
        ``timeout_s``."""
        assert not self.loop.in_loop(), "the loop would wait for itself"
        with self._changed:
            ok = self._changed.wait_for(
                lambda: predicate(self._statuses[camera_id]), timeout=timeout_s
            )
            return ok, self._statuses[camera_id]

    def _publish(self, status: CameraStatus, event: EngineEvent | None) -> None:
        # A fresh dict each time: readers on other threads always see a whole snapshot.
        with self._changed:
            self._statuses = {**self._statuses, status.camera_id: status}
            self._changed.notify_all()
        if event is None:
            return
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("state listener %r failed", listener)
