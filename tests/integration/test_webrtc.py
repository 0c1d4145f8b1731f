"""The single-camera view over WebRTC, in a real browser, with its fallback to MSE.

libnice gathers no loopback candidates, so the browser runs in a network namespace joined to
this one by a veth pair: the NVR (in this process, on 10.213.N.1) and Debian's chromium
(Playwright's driver talks to it over pipes, which cross namespaces; it reaches the NVR at
10.213.N.1) then have a real network path. A firewall in the namespace makes the "cannot
connect" case; an H.265 camera makes the "unsupported" one.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from nvr_gstreamer.api.server import ApiServer
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.simulator.model import Codec
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import wait_until, web_test_config

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "webrtc-test-t0ken"
SILENT_S = 2.0  # api.live_viewer_timeout_seconds


@dataclass(frozen=True)
class Net:
    namespace: str
    host_ip: str  # this side of the veth pair (the NVR)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    pid = os.getpid()
    ns, outside, inside = f"nvrwrtc-{pid}", f"vwa{pid}", f"vwb{pid}"
    subnet = f"10.213.{pid % 250 + 1}"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", ns)
        _ip("addr", "add", f"{subnet}.1/24", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "addr", "add", f"{subnet}.2/24", "dev", inside)
        _ip("-n", ns, "link", "set", inside, "up")
        _ip("-n", ns, "route", "add", "default", "via", f"{subnet}.1")
        yield Net(ns, f"{subnet}.1")
    finally:
        subprocess.run(["ip", "link", "del", outside], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@pytest.fixture
def media_blocked(net: Net, site: Site) -> Iterator[None]:
    """Only the page's HTTP and WebSockets reach the browser: no UDP and no other TCP (ICE
    may use either), so ICE cannot connect."""
    port = site.url.rsplit(":", 1)[1]
    rules = (
        "table inet nvrwrtc {\n chain input {\n  type filter hook input priority 0;\n"
        f'  iifname "lo" accept\n  tcp sport {port} accept\n  meta l4proto {{ tcp, udp }} drop\n'
        " }\n}\n"
    )
    inside = ["ip", "netns", "exec", net.namespace]
    subprocess.run([*inside, "nft", "-f", "-"], input=rules, check=True, text=True)
    try:
        yield
    finally:
        subprocess.run([*inside, "nft", "delete", "table", "inet", "nvrwrtc"], check=False)


@pytest.fixture(scope="module")
def browser(net: Net, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    wrapper = tmp_path_factory.mktemp("chromium") / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {net.namespace} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(wrapper),
            headless=True,
            args=[
                "--no-sandbox",
                "--autoplay-policy=no-user-gesture-required",
                "--disable-features=WebRtcHideLocalIpsWithMdns",  # host candidates, not .local
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(
        cameras=2, fps=15, gop_seconds=0.5, size=(640, 360), camera_codecs={"cam2": Codec.H265}
    ) as s:
        yield s


@dataclass
class Site:
    app: NvrApp
    url: str


@pytest.fixture
def site(sim: SimulatorProcess, net: Net, tmp_path: Path) -> Iterator[Site]:
    urls = {n: sim.url(n) for n in sim.camera_names}
    config = web_test_config(
        urls,
        tmp_path / "rec",
        host=net.host_ip,
        token=SecretStr(TOKEN),
        live_viewer_timeout_seconds=SILENT_S,
    )
    app = NvrApp(config)
    server = ApiServer(app)
    app.start()
    server.start()
    try:
        yield Site(app, server.url)
    finally:
        server.stop()
        app.stop()


def _page(browser: Any, site: Site) -> Any:
    """A logged-in page of the live grid (a context of its own)."""
    page = browser.new_context().new_page()
    page.goto(site.url + "/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(site.url + "/")
    return page


TILE = """(id) => {
  const t = document.querySelector(`.tile[data-camera="${id}"]`);
  if (t === null) return null;
  const v = t.querySelector('video');
  return {transport: t.dataset.transport || null, rtc: v.srcObject !== null,
          frames: v.getVideoPlaybackQuality().totalVideoFrames, time: v.currentTime,
          width: v.videoWidth, message: t.querySelector('.message').hidden ? null
            : t.querySelector('.message').textContent};
}"""

# A small grey picture of what the tile's video shows now (to see it change).
PIXELS = """(id) => {
  const v = document.querySelector(`.tile[data-camera="${id}"] video`);
  const c = document.createElement('canvas'); c.width = 64; c.height = 36;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 36);
  return Array.from(g.getImageData(0, 0, 64, 36).data.filter((_, i) => i % 4 === 0));
}"""


# Glass-to-glass ages (ms) of the frames shown for 2 s, from the simulator's frame stamps.
LATENCY = """async (id) => {
  const v = document.querySelector(`.tile[data-camera="${id}"] video`);
  let m;
  try { m = await import('/static/frame_stamp.js'); } catch { return []; }
  const ages = [];
  const stop = m.watchLatency(v, age => ages.push(age));
  await new Promise(r => setTimeout(r, 2000));
  stop();
  return ages;
}"""


def _wait(
    page: Any, cam: str, predicate: Callable[[Any], bool], timeout_s: float, what: str
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        tile = page.evaluate(TILE, cam)
        if tile is not None and predicate(tile):
            return tile
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}: {tile}")
        page.wait_for_timeout(50)


def _open_single_view(page: Any, cam: str) -> float:
    """The grid plays the camera over MSE; a double click opens its single view. Returns when."""
    _wait(page, cam, lambda t: t["transport"] == "mse" and t["time"] > 0, 10, "MSE in the grid")
    page.dblclick(f'.tile[data-camera="{cam}"]')
    return time.monotonic()


def _plays_webrtc(page: Any, cam: str) -> float:
    """Waits for WebRTC frames in the single view; returns when the first one showed."""
    tile = _wait(page, cam, lambda t: t["transport"] == "webrtc" and t["rtc"] and t["frames"] > 0,
                 10, "a WebRTC frame")  # fmt: skip
    first = time.monotonic()
    before = page.evaluate(PIXELS, cam)
    _wait(page, cam, lambda t: t["frames"] >= tile["frames"] + 10, 5, "more WebRTC frames")
    after = page.evaluate(PIXELS, cam)
    changed = sum(abs(a - b) > 16 for a, b in zip(before, after, strict=True))
    assert changed > 20, f"the picture did not change ({changed} pixels)"
    assert page.evaluate(TILE, cam)["transport"] == "webrtc"  # and it stayed so
    return first


def test_the_single_view_plays_over_webrtc(site: Site, browser: Any) -> None:
    page = _page(browser, site)
    clicked = _open_single_view(page, "cam1")
    first = _plays_webrtc(page, "cam1")
    print(f"WebRTC: first frame {1000 * (first - clicked):.0f} ms after the double click")
    ages = sorted(page.evaluate(LATENCY, "cam1"))
    assert len(ages) >= 10, ages  # the simulator stamps every frame (nvrclockstamp)
    p50, p90 = ages[len(ages) // 2], ages[int(len(ages) * 0.9)]
    print(f"WebRTC glass-to-glass: p50 {p50:.0f} ms, p90 {p90:.0f} ms ({len(ages)} frames)")
    # Live frames, never from the future; how fast is bench_web.py's to say (p90 101 ms there).
    assert ages[0] >= 0 and p50 < 1000, ages
    assert site.app.engine.webrtc_branches("cam1") == 1
    # Back to the grid: MSE again, and the branch goes.
    page.dblclick('.tile[data-camera="cam1"]')
    _wait(page, "cam1", lambda t: t["transport"] == "mse" and not t["rtc"], 5, "MSE again")
    wait_until(lambda: site.app.engine.webrtc_branches("cam1") == 0, 5, "the branch to go")
    page.context.close()


@pytest.mark.usefixtures("media_blocked")
def test_without_a_network_path_the_single_view_falls_back_to_mse(site: Site, browser: Any) -> None:
    page = _page(browser, site)
    clicked = _open_single_view(page, "cam1")
    _wait(page, "cam1", lambda t: t["transport"] == "mse", 6, "the fallback to MSE")
    fell_back = time.monotonic() - clicked
    tile = _wait(page, "cam1", lambda t: t["time"] > 0 and not t["rtc"], 5, "MSE video")
    _wait(page, "cam1", lambda t: t["time"] > tile["time"] + 0.5, 5, "moving MSE video")
    print(f"fell back to MSE {1000 * fell_back:.0f} ms after the double click")
    wait_until(lambda: site.app.engine.webrtc_branches("cam1") == 0, 5, "the branch to go")
    page.context.close()


def test_an_h265_camera_is_unsupported_and_uses_mse(site: Site, browser: Any) -> None:
    page = _page(browser, site)
    wait_until(lambda: site.app.engine.status("cam2").codec == "h265", 10, "cam2 streaming")
    first = page.evaluate(
        """() => new Promise(done => {
             const ws = new WebSocket(`ws://${location.host}/api/ws/webrtc/cam2`);
             ws.onmessage = e => done(JSON.parse(e.data));
             ws.onclose = e => done({closed: e.code});
           })"""
    )
    assert first["type"] == "unsupported", first
    page.dblclick('.tile[data-camera="cam2"]')
    clicked = time.monotonic()
    _wait(page, "cam2", lambda t: t["transport"] == "mse", 2, "MSE")
    assert time.monotonic() - clicked < 2.5  # told at once, not after the first-frame timeout
    # This chromium plays no H.265 at all: the tile says so (a real browser may play it).
    _wait(page, "cam2", lambda t: t["message"] is not None or t["time"] > 0, 5, "MSE")
    assert site.app.engine.webrtc_branches("cam2") == 0
    page.context.close()


def test_the_signalling_socket_refuses_bad_messages_and_unknown_cameras(
    site: Site, browser: Any
) -> None:
    page = _page(browser, site)
    closes = page.evaluate(
        """async () => {
             const close = (path, text) => new Promise(done => {
               const ws = new WebSocket(`ws://${location.host}${path}`);
               ws.onopen = () => { if (text !== null) ws.send(text); };
               ws.onclose = e => done([e.code, e.reason]);
             });
             return [await close('/api/ws/webrtc/nope', null),
                     await close('/api/ws/webrtc/cam1', 'not json'),
                     await close('/api/ws/webrtc/cam1', '{"type": "hello"}')];
           }"""
    )
    assert closes[0][0] == 4404
    assert closes[1] == [4400, "bad message: not JSON"]
    assert closes[2] == [4400, "bad message: unknown message type 'hello'"]
    wait_until(lambda: site.app.engine.webrtc_branches("cam1") == 0, 5, "no branch left")
    page.context.close()


def test_closing_the_page_detaches_the_branch_and_recording_goes_on(
    site: Site, browser: Any, nvr_log: io.StringIO
) -> None:
    engine = site.app.engine
    page = _page(browser, site)
    _open_single_view(page, "cam1")
    _plays_webrtc(page, "cam1")
    assert engine.webrtc_branches("cam1") == 1
    page.context.close()
    wait_until(lambda: engine.webrtc_branches("cam1") == 0, 5, "the branch to go")
    wait_until(lambda: "[cam1] WebRTC branch detached (viewer left)" in nvr_log.getvalue(),
                5, "the log line")  # fmt: skip
    # Recording went on throughout, and goes on: frames come, the next segment opens.
    status = engine.status("cam1")
    assert status.recording and status.state.value == "streaming" and not status.errors
    segment, frames = status.current_segment, status.frames
    ok, later = engine.wait_status(
        "cam1", lambda s: s.current_segment != segment and s.frames > frames + 15, 6
    )
    assert ok, later
    assert later.recording and not later.errors


def _mse_viewers(site: Site) -> int:
    """Live viewers whose socket the camera's sink writes to, from /metrics."""
    metrics = httpx.get(site.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    metrics.raise_for_status()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.text.splitlines()
        if line.startswith("nvr_web_live_viewers{") and 'via="socket"' in line
    )


def test_a_viewer_whose_network_goes_silent_is_dropped(site: Site, browser: Any, net: Net) -> None:
    """A laptop closed or out of Wi-Fi says nothing: no FIN, no RST. Its sockets are dropped
    after api.live_viewer_timeout_seconds, not TCP's quarter of an hour, and the cameras stop
    sending to it; a viewer that keeps listening is never dropped."""
    page = _page(browser, site)
    _wait(page, "cam1", lambda t: t["transport"] == "mse" and t["time"] > 0, 10, "MSE in the grid")
    watching = _mse_viewers(site)
    assert watching >= 1
    page.wait_for_timeout(2 * SILENT_S * 1000)  # longer than the timeout: still there
    assert _mse_viewers(site) == watching
    # Every packet into and out of the browser's namespace is dropped from now on.
    silence = (
        "table inet nvrsilent {\n"
        " chain input { type filter hook input priority 0; policy drop; }\n"
        " chain output { type filter hook output priority 0; policy drop; }\n"
        "}\n"
    )
    inside = ["ip", "netns", "exec", net.namespace]
    subprocess.run([*inside, "nft", "-f", "-"], input=silence, check=True, text=True)
    try:
        cut = time.monotonic()
        wait_until(lambda: _mse_viewers(site) == 0, SILENT_S + 10, "the silent viewer dropped")
        took = time.monotonic() - cut
        print(f"a silent viewer was dropped {took:.1f} s after its network went quiet")
        assert took >= SILENT_S * 0.5  # by the timeout, not by something else
        assert site.app.engine.status("cam1").recording
    finally:
        subprocess.run([*inside, "nft", "delete", "table", "inet", "nvrsilent"], check=False)
        page.context.close()
