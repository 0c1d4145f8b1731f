"""The web app in the other engines: Firefox (Debian's firefox-esr, headless, over
Marionette) and WebKit (Debian's WebKitGTK MiniBrowser over WebDriver, on Xvfb): live video in
every tile through Media Source Extensions, and the recordings page showing the frame of the
instant asked for, read from the simulator's stamp in the pixels — as in Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.firefox import Firefox
from nvr_gstreamer.testing.webkit import WebKit
from tests.integration.test_web_app import Site, _site
from tests.integration.test_web_recordings import (
    FRAME_S,
    PLAY_AND_READ,
    Recorded,
    _lag_s,
    recorded,
)

pytestmark = pytest.mark.integration

__all__ = ["recorded"]  # the fixture, shared with the Chromium tests of the recordings page

TILES = """return [...document.querySelectorAll('.tile')].map(t => ({
  id: t.dataset.camera, badge: t.querySelector('.badge').textContent,
  time: t.querySelector('video').currentTime, width: t.querySelector('video').videoWidth,
}));"""


Browser = Firefox | WebKit


@pytest.fixture(scope="module", params=["firefox", "webkit"])
def other(request: pytest.FixtureRequest) -> Iterator[Browser]:
    browser: Browser = Firefox() if request.param == "firefox" else WebKit()
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(cameras=4, fps=15, gop_seconds=1.0, size=(640, 360)) as s:
        yield s


@pytest.fixture
def site(sim: SimulatorProcess, tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path, sim)


def test_every_tile_plays_live_video(site: Site, other: Browser) -> None:
    other.goto(site.url + "/")

    def tiles() -> dict[str, dict[str, object]]:
        return {t["id"]: t for t in other.run(TILES)}

    deadline = time.monotonic() + 15
    while not (
        len(t := tiles()) == 4 and all(x["width"] == 640 and x["time"] > 0 for x in t.values())
    ):
        assert time.monotonic() < deadline, f"video in every tile: {t}"
        time.sleep(0.1)
    first = {cid: float(x["time"]) for cid, x in t.items()}  # type: ignore[arg-type]
    # Moving, not a still: each tile plays on (a second of video, given three on a machine that
    # also runs the simulator, the recorder and a software-rendered browser).
    deadline = time.monotonic() + 3.0
    while True:
        later = tiles()
        if all(float(later[c]["time"]) > t0 + 1.0 for c, t0 in first.items()):  # type: ignore[arg-type]
            break
        assert time.monotonic() < deadline, (first, later)
        time.sleep(0.1)
    assert all(x["badge"] == "streaming" for x in later.values()), later


def test_a_seek_shows_the_frame_of_that_instant(recorded: Recorded, other: Browser) -> None:
    other.goto(f"{recorded.url}/recordings")
    other.wait("return document.querySelectorAll('.row .footage').length >= 2", 15, "the timeline")
    lags = []
    for at in (recorded.cam1_start + 1.23, recorded.cam1_start + 4.71):
        got = other.run_async(PLAY_AND_READ, ["cam1", at, at + 0.3, 1])
        assert "error" not in got, got
        first_shown, first_stamp = got["frames"][0]
        assert at - FRAME_S - 0.002 <= first_shown <= at + 0.002, (at, got["frames"][:3])
        assert len(got["frames"]) >= 3  # and it plays on from there
        lags.append(_lag_s(first_shown, first_stamp))
    assert abs(lags[0] - lags[1]) <= FRAME_S / 2, lags
    assert 0 <= lags[0] < 0.5, lags
