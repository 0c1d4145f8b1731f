"""MotionWatch without GStreamer: frames handed in by a fake view, time from a fake clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from nvr_gstreamer.camera.media import FrameCallback, LiveFrame
from nvr_gstreamer.config import MotionConfig
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.core.logsetup import camera_logger
from nvr_gstreamer.engine.motion_watch import MotionWatch

W, H = 64, 48  # I420: a Y plane of W x H (rows a multiple of 4 already), then U and V


class _View:
    def __init__(self) -> None:
        self.callback: FrameCallback | None = None

    def add_viewer(self, callback: FrameCallback) -> int:
        self.callback = callback
        return 1

    def remove_viewer(self, _token: int) -> None:
        self.callback = None


def _frame(level: int) -> LiveFrame:
    """A picture of bars (so it has contrast) shifted by ``level`` grey levels."""
    row = bytes(min(255, max(0, 40 + 30 * (x // 8) + level)) for x in range(W))
    return LiveFrame("cam1", W, H, row * H + bytes([128]) * (W * H // 2), "I420")


def _watch(clock: FakeClock) -> tuple[MotionWatch, _View]:
    view = _View()
    log = camera_logger(logging.getLogger("test.motion"), "cam1")
    ids = iter(range(1, 100))
    watch = MotionWatch(
        MotionConfig(enabled=True),
        view,
        clock,
        lambda: next(ids),
        lambda _n: None,
        log,  # type: ignore[arg-type]
    )
    watch.start()
    return watch, view


def _show(view: _View, clock: FakeClock, level: int) -> None:
    assert view.callback is not None
    clock.advance(0.2)
    view.callback(_frame(level))


def test_a_picture_that_changes_as_a_whole_is_relearnt_and_said_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="test.motion")
    clock = FakeClock()
    watch, view = _watch(clock)
    _show(view, clock, 0)
    _show(view, clock, 0)
    assert watch.recalibrations == 0 and not caplog.records
    _show(view, clock, 120)  # the lights went on: most of the picture clips to white
    assert watch.recalibrations == 1 and not watch.active
    said: list[Any] = [r for r in caplog.records if "whole picture changed" in r.getMessage()]
    assert len(said) == 1 and getattr(said[0], "camera", None) == "cam1"
    _show(view, clock, 0)  # and off again, 0.2 s later: relearnt, not said again
    assert watch.recalibrations == 2
    assert len([r for r in caplog.records if "whole picture changed" in r.getMessage()]) == 1
    clock.advance(60)
    _show(view, clock, 120)  # a minute on: said again
    assert watch.recalibrations == 3
    assert len([r for r in caplog.records if "whole picture changed" in r.getMessage()]) == 2
