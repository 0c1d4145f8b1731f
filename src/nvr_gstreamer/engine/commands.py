"""Feeds a camera's supervisor and carries out its commands (loop thread)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.camera.status import CameraStateChanged
from nvr_gstreamer.camera.supervisor import (
    Command,
    Event,
    PipelineFailed,
    RunProbe,
    ScheduleWake,
    StartPipeline,
    StateChanged,
    StopPipeline,
    Woke,
)
from nvr_gstreamer.core.redact import redact

if TYPE_CHECKING:
    from nvr_gstreamer.engine.runtime import CameraRuntime

# After a bug in the supervisor, the camera is woken again this soon (never left without a
# wake-up, stuck in "reconnecting").
BUG_WAKE_S = 1.0


class SupervisorCommands:
    def __init__(self, runtime: CameraRuntime) -> None:
        self._rt = runtime

    def handle(self, event: Event) -> None:
        rt = self._rt
        try:
            commands = rt.supervisor.handle(event)
        except Exception:
            rt.log.exception("supervisor failed on %s; waking it in 1 s", type(event).__name__)
            if rt.timer is None:
                rt.timer = rt.scheduler.timeout(BUG_WAKE_S, self._wake)
            return
        self._apply(commands)

    def _apply(self, commands: list[Command]) -> None:
        rt = self._rt
        changes: list[StateChanged] = []
        for cmd in commands:
            try:
                self._apply_one(cmd, changes)
            except Exception as exc:
                # Every other command still runs (above all the next wake-up).
                rt.log.exception("%s failed", type(cmd).__name__)
                if isinstance(cmd, StartPipeline):
                    failed = PipelineFailed(
                        cmd.generation, ErrorKind.UNKNOWN, f"pipeline could not start: {exc}"
                    )
                    rt.scheduler.call(rt.handle, failed)
        for ch in changes:
            rt.log.info("%s -> %s: %s", ch.old.value, ch.new.value, redact(ch.reason))
        if changes:
            rt.refresh(publish=False)
        for ch in changes:
            event = CameraStateChanged(rt.camera.id, ch.old, ch.new, ch.reason, rt.status)
            rt.publish(rt.status, event)

    def _apply_one(self, cmd: Command, changes: list[StateChanged]) -> None:
        rt = self._rt
        match cmd:
            case StartPipeline(generation=gen):
                rt.start_pipeline(gen)
            case StopPipeline():
                rt.release_pipeline()
            case ScheduleWake(delay_s=delay):
                if rt.timer is not None:
                    rt.timer.cancel()
                rt.timer = None if delay is None else rt.scheduler.timeout(delay, self._wake)
            case RunProbe(probe_id=pid, connect_only=connect_only):
                rt.run_probe(pid, connect_only)
            case StateChanged():
                changes.append(cmd)

    def _wake(self) -> None:
        self._rt.timer = None
        self._rt.handle(Woke())
