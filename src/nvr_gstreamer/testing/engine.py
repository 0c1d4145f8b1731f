"""Helpers for tests that run the real camera engine: configs for the simulator, and a
watcher that waits on state events (no sleep-and-hope)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from nvr_gstreamer.camera.status import (
    CameraStateChanged,
    EngineEvent,
    MotionEvent,
    RecordingChanged,
)
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.config import NvrConfig, parse_config
from nvr_gstreamer.engine.engine import CameraEngine


def web_test_config(sim_urls: dict[str, str], storage: Path, **api: object) -> NvrConfig:
    """The web app tests' config: every camera recorded in 2 s segments, quick reconnects,
    the API on a free port with ``api``'s keys (host, token)."""
    config = engine_config(
        sim_urls,
        storage=storage,
        storage_options={"segment_seconds": 2},
        initial_delay_seconds=1,
        max_delay_seconds=2,
    )
    return config.model_copy(update={"api": config.api.model_copy(update={"port": 0, **api})})


def engine_config(
    urls: dict[str, str],
    *,
    storage: Path | None = None,
    storage_options: dict[str, object] | None = None,
    credentials: dict[str, tuple[str, str]] | None = None,
    camera_options: dict[str, dict[str, object]] | None = None,
    **reconnect: float,
) -> NvrConfig:
    """A validated config for cameras at ``urls`` with reconnect settings for tests;
    ``camera_options`` adds keys per camera (``{"cam1": {"transport": "udp"}}``)."""
    import yaml

    creds = credentials or {}
    cams = []
    for cid, url in urls.items():
        cam: dict[str, object] = {"id": cid, "url": url}
        # The whole suite on the old receive path: NVR_TEST_RTP_JITTERBUFFER=always scripts/check
        forced = os.environ.get("NVR_TEST_RTP_JITTERBUFFER")
        if forced:
            cam["rtp_jitterbuffer"] = forced
        if cid in creds:
            cam["username"], cam["password"] = creds[cid]
        cam.update((camera_options or {}).get(cid, {}))
        cams.append(cam)
    doc: dict[str, object] = {"cameras": cams, "reconnect": dict(reconnect)}
    if storage is not None:
        doc["storage"] = {"path": str(storage), **(storage_options or {})}
    return parse_config(yaml.safe_dump(doc), "<test>", Path.cwd(), {})


@dataclass(frozen=True, slots=True)
class SeenEvent:
    at: float  # time.monotonic()
    event: CameraStateChanged


@dataclass(frozen=True, slots=True)
class SeenRecording:
    at: float
    event: RecordingChanged


class EngineWatch:
    """Records every state change of an engine and lets a test wait for one."""

    def __init__(self, engine: CameraEngine) -> None:
        self.engine = engine
        self.events: list[SeenEvent] = []
        self.recording_events: list[SeenRecording] = []
        self.motion_events: list[tuple[float, MotionEvent]] = []  # (monotonic, event)
        self._cond = threading.Condition()
        self._unsubscribe = engine.subscribe(self._on_event)

    def _on_event(self, event: EngineEvent) -> None:
        with self._cond:
            if isinstance(event, CameraStateChanged):
                self.events.append(SeenEvent(time.monotonic(), event))
            elif isinstance(event, MotionEvent):
                self.motion_events.append((time.monotonic(), event))
            else:
                self.recording_events.append(SeenRecording(time.monotonic(), event))
            self._cond.notify_all()

    def wait_motion(
        self, camera_id: str, started: bool, timeout_s: float, after: float = -1.0
    ) -> tuple[float, MotionEvent]:
        """Wait for a motion event of ``camera_id`` to begin (or end) after ``after``
        (monotonic); (when it was heard, the event)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for seen in self.motion_events:
                    at, ev = seen
                    if ev.camera_id == camera_id and ev.started == started and at > after:
                        return seen
                left = deadline - time.monotonic()
                if left <= 0:
                    what = "begin" if started else "end"
                    raise AssertionError(f"{camera_id}: no motion event {what} in {timeout_s} s")
                self._cond.wait(left)

    def wait_recording(
        self, camera_id: str, recording: bool, timeout_s: float, after: float = -1.0
    ) -> RecordingChanged:
        """Wait for a RecordingChanged of ``camera_id`` to ``recording`` after ``after``. For
        "off" it is also enough that recording is switched off and nothing is being written
        any more (a reconnect may have ended the session before the stop: no change then)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for seen in self.recording_events:
                    ev = seen.event
                    if seen.at >= after and ev.camera_id == camera_id and ev.recording == recording:
                        return ev
                status = self.engine.status(camera_id)
                if not recording and not status.recording and not status.recording_wanted:
                    return RecordingChanged(camera_id, False, "already off", status)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{camera_id} recording never became {recording} within {timeout_s} s; "
                        f"status: {self.engine.status(camera_id)}"
                    )
                self._cond.wait(remaining)

    def close(self) -> None:
        self._unsubscribe()

    def wait_for(
        self,
        camera_id: str,
        states: CameraState | Iterable[CameraState],
        timeout_s: float,
        after: float | None = None,
    ) -> float:
        """Wait until ``camera_id`` is in one of ``states``; return the monotonic time it got
        there (the event's time, or now if it already was). Raises AssertionError on timeout."""
        wanted = {states} if isinstance(states, CameraState) else set(states)
        since = after if after is not None else -1.0
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for seen in self.events:
                    if (
                        seen.at >= since
                        and seen.event.camera_id == camera_id
                        and seen.event.new in wanted
                    ):
                        return seen.at
                status = self.engine.status(camera_id)
                if after is None and status.state in wanted:
                    return time.monotonic()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{camera_id} not in {sorted(s.value for s in wanted)} after "
                        f"{timeout_s} s; status: {status}"
                    )
                self._cond.wait(remaining)

    def changes(self, camera_id: str) -> list[CameraStateChanged]:
        with self._cond:
            return [s.event for s in self.events if s.event.camera_id == camera_id]


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll a cheap predicate (for values that have no event, like frame counters)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start
