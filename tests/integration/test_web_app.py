"""The web app in a real browser (Debian's chromium, headless, driven by Playwright): live
video in every tile, badges and recording controls that follow the engine, and login. Live
video also in Firefox and WebKit (the ``other`` engines)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from nvr_gstreamer.api.server import ApiServer
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import wait_until, web_test_config
from nvr_gstreamer.testing.firefox import Firefox
from nvr_gstreamer.testing.webkit import WebKit

pytestmark = pytest.mark.integration

TOKEN = "web-t0ken-that-must-not-show"


@dataclass
class Site:
    app: NvrApp
    url: str
    sim: SimulatorProcess


def _site(tmp_path: Path, sim: SimulatorProcess, **api: object) -> Iterator[Site]:
    app = NvrApp(
        web_test_config({n: sim.url(n) for n in sim.camera_names}, tmp_path / "rec", **api)
    )
    server = ApiServer(app)
    app.start()
    server.start()
    try:
        yield Site(app, server.url, sim)
    finally:
        server.stop()
        app.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(cameras=4, fps=15, gop_seconds=1.0, size=(640, 360)) as s:
        yield s


@pytest.fixture
def site(sim: SimulatorProcess, tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path, sim)


TILES = """() => [...document.querySelectorAll('.tile')].map(t => ({
  id: t.dataset.camera, hidden: t.hidden,
  badge: t.querySelector('.badge').textContent,
  button: t.querySelector('.rec').textContent,
  dot: !t.querySelector('.dot').hidden,
  time: t.querySelector('video').currentTime,
  width: t.querySelector('video').videoWidth,
}))"""


def _tiles(page: Any) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in page.evaluate(TILES)}


def _wait(page: Any, predicate: Any, timeout_s: float, what: str) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        tiles = _tiles(page)
        if predicate(tiles):
            return tiles
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}: {tiles}")
        page.wait_for_timeout(100)


def _live_viewers(site: Site) -> dict[tuple[str, str], int]:
    """``nvr_web_live_viewers`` from /metrics: (camera, via) → viewers, zeros left out."""
    found = {}
    for line in httpx.get(site.url + "/metrics").text.splitlines():
        if line.startswith("nvr_web_live_viewers{"):
            labels, value = line[len("nvr_web_live_viewers{") :].split("} ")
            pairs = dict(part.split("=") for part in labels.split(","))
            if float(value):
                found[(pairs["camera"].strip('"'), pairs["via"].strip('"'))] = int(float(value))
    return found


def test_where_a_socket_cannot_be_handed_over_python_passes_the_video_on(
    site: Site, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS or another server: the sink writes into a socket pair and the web server relays its
    messages; the page cannot tell."""
    monkeypatch.setattr("nvr_gstreamer.api.web.handed_socket", lambda _ws, _silent_s: None)
    page = browser.new_page()
    page.goto(site.url + "/")
    tiles = _wait(
        page, lambda ts: len(ts) == 4 and all(t["time"] > 0 for t in ts.values()), 10, "video"
    )
    _wait(page, lambda ts: all(ts[c]["time"] > tiles[c]["time"] + 1 for c in ts), 10, "moving")
    assert _live_viewers(site) == {(cid, "pass_through"): 1 for cid in tiles}
    page.close()
    wait_until(lambda: _live_viewers(site) == {}, 5, "the viewers gone")


def test_every_tile_plays_live_video_and_badges_follow_the_camera(site: Site, browser: Any) -> None:
    page = browser.new_page()
    page.goto(site.url + "/")
    tiles = _wait(
        page,
        lambda ts: len(ts) == 4 and all(t["width"] == 640 and t["time"] > 0 for t in ts.values()),
        10,
        "video in every tile",
    )
    first = {cid: t["time"] for cid, t in tiles.items()}
    page.wait_for_timeout(1500)
    later = _tiles(page)
    for cid in first:  # moving, not a still
        assert later[cid]["time"] > first[cid] + 1.0, (cid, first[cid], later[cid]["time"])
        assert later[cid]["badge"] == "streaming" and later[cid]["dot"]
    # Each tile's video is written to its socket by the camera's live sink, not by Python.
    assert _live_viewers(site) == {(cid, "socket"): 1 for cid in first}
    hidden = browser.new_page()  # a tab that closes: its viewers are let go
    hidden.goto(site.url + "/")
    wait_until(lambda: sum(_live_viewers(site).values()) == 8, 10, "a second page's viewers")
    hidden.close()
    wait_until(lambda: sum(_live_viewers(site).values()) == 4, 10, "the closed page's gone")
    # A camera goes away: the page says so (pushed, not polled), and shows its return.
    site.sim.stop("cam2")
    try:
        _wait(page, lambda ts: ts["cam2"]["badge"].startswith("reconnecting"), 5, "reconnecting")
        assert _tiles(page)["cam1"]["badge"] == "streaming"
    finally:
        site.sim.resume("cam2")
    _wait(page, lambda ts: ts["cam2"]["badge"] == "streaming", 15, "streaming again")
    t = _tiles(page)["cam2"]["time"]
    _wait(page, lambda ts: ts["cam2"]["time"] > t + 1.0, 10, "video again in cam2")
    # Watching never held a camera up (the web branches sleep on every tee while not watched).
    assert [site.app.engine.status(c).stalls for c in ("cam1", "cam3", "cam4")] == [0, 0, 0]
    page.close()


def test_recording_buttons_follow_the_engine_when_changed_elsewhere(
    site: Site, browser: Any
) -> None:
    page = browser.new_page()
    page.goto(site.url + "/")
    _wait(page, lambda ts: len(ts) == 4 and ts["cam3"]["button"] == "Stop", 10, "recording")
    r = httpx.post(site.url + "/api/cameras/cam3/recording/stop", timeout=20)
    assert r.status_code == 200
    _wait(page, lambda ts: ts["cam3"]["button"] == "Record" and not ts["cam3"]["dot"], 2, "off")
    page.click('.tile[data-camera="cam3"] .rec')  # the page's own button, now
    _wait(page, lambda ts: ts["cam3"]["button"] == "Stop" and ts["cam3"]["dot"], 5, "on again")
    assert site.app.engine.status("cam3").recording
    page.close()


def test_with_a_token_the_page_needs_a_login_and_never_shows_the_token(
    sim: SimulatorProcess, tmp_path: Path, browser: Any
) -> None:
    for s in _site(tmp_path, sim, token=SecretStr(TOKEN)):
        assert httpx.get(s.url + "/api/cameras").status_code == 401
        assert httpx.post(s.url + "/api/login", json={"token": "wrong"},
                          headers={"origin": s.url}).status_code == 401  # fmt: skip
        context = browser.new_context()
        page = context.new_page()
        page.goto(s.url + "/")
        assert page.url.endswith("/login")
        page.fill("#token", "wrong")
        page.click("button[type=submit]")
        page.wait_for_selector("#error:has-text('wrong token')")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url(s.url + "/")
        _wait(
            page, lambda ts: len(ts) == 4 and all(t["time"] > 0 for t in ts.values()), 10, "video"
        )
        cookie = next(c for c in context.cookies() if c["name"] == "nvr_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert TOKEN not in page.content() and TOKEN not in page.url
        assert TOKEN not in cookie["value"]
        # A request carrying the session from another site is refused.
        forged = httpx.post(
            s.url + "/api/cameras/cam1/recording/stop",
            cookies={"nvr_session": cookie["value"]},
            headers={"origin": "http://evil.example"},
        )
        assert forged.status_code == 401 and s.app.engine.status("cam1").recording_wanted
        context.close()


def test_a_live_socket_for_an_unknown_camera_is_refused(site: Site, browser: Any) -> None:
    page = browser.new_page()
    page.goto(site.url + "/")
    code = page.evaluate(
        """() => new Promise(done => {
             const ws = new WebSocket(`ws://${location.host}/api/ws/live/nope`);
             ws.onclose = e => done(e.code);
           })"""
    )
    assert code == 4404
    page.close()


AGES = """async (ids) => {
  const { watchLatency } = await import('/static/frame_stamp.js');
  window.nvrAges = {};
  for (const id of ids) {
    const video = document.querySelector(`.tile[data-camera="${id}"] video`);
    window.nvrAges[id] = [];
    watchLatency(video, (age, stamp) => window.nvrAges[id].push([age, stamp]));
  }
}"""


def test_every_tile_shows_frames_a_fraction_of_a_second_old(site: Site, browser: Any) -> None:
    """Glass to glass: the simulator stamps each frame with the time it was made, the page reads
    the stamp from the frame it shows (requestVideoFrameCallback + canvas)."""
    page = browser.new_page()
    page.goto(site.url + "/")
    _wait(page, lambda ts: len(ts) == 4 and all(t["time"] > 0 for t in ts.values()), 10, "video")
    ids = sorted(_tiles(page))
    page.evaluate(AGES, ids)

    def live(seen: list[list[int]]) -> bool:
        # Live: a fraction of a second behind the camera (the benchmark measures it exactly),
        # never from the future (a misread stamp), and moving: every shown frame a new one.
        window = seen[-30:]
        ordered = sorted(age for age, _stamp in window)
        return (
            len(window) == 30
            and ordered[0] >= 0
            and ordered[15] < 1000
            and len({stamp for _age, stamp in window}) >= 25
        )

    # A loaded machine may hold a page back for a moment (CI once saw 1.4 s); the page's drift
    # control must bring every tile back to live within seconds, and keep it there.
    deadline = time.monotonic() + 20
    while True:
        ages: dict[str, list[list[int]]] = page.evaluate("() => window.nvrAges")
        if all(live(seen) for seen in ages.values()):
            break
        assert time.monotonic() < deadline, {k: sorted(a[-30:]) for k, a in ages.items()}
        page.wait_for_timeout(200)
    assert all(age >= 0 for seen in ages.values() for age, _stamp in seen)
    page.close()


# ---- the other engines: Firefox and WebKit ------------------------------------------------

OTHER_TILES = """return [...document.querySelectorAll('.tile')].map(t => ({
  id: t.dataset.camera, badge: t.querySelector('.badge').textContent,
  time: t.querySelector('video').currentTime, width: t.querySelector('video').videoWidth,
}));"""


def test_every_tile_plays_live_video_in_the_other_engines(
    site: Site, other: Firefox | WebKit
) -> None:
    other.goto(site.url + "/")

    def tiles() -> dict[str, dict[str, object]]:
        return {t["id"]: t for t in other.run(OTHER_TILES)}

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
