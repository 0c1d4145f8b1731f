"""Export jobs over HTTP against the simulator and real recordings: the MP4 starts at the
requested instant (the simulator's frame stamps say which frame is shown first, in ffmpeg and
in Chromium), lasts the range, carries every frame; progress arrives on the events socket;
downloads answer range requests; the SHA-256 matches; bad input and missing access are refused
with clear answers; a restart lists finished exports again."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from websockets.sync.client import connect

from nvr_gstreamer.api.server import ApiServer
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.config import NvrConfig
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.storage.catalog import SegmentRow, SegmentStatus
from nvr_gstreamer.testing.engine import wait_until, web_test_config
from nvr_gstreamer.testing.frame_stamp import band_row, read_stamp

pytestmark = pytest.mark.integration

FPS = 15
SIZE = (320, 180)  # the stamp needs 2 px per cell: 68 px at least
TOKEN = "export-t0ken"


@dataclass
class Site:
    app: NvrApp
    server: ApiServer
    http: httpx.Client
    root: Path

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(cameras=2, fps=FPS, gop_seconds=1.0, size=SIZE) as s:
        yield s


def _config(sim: SimulatorProcess, root: Path, **api: object) -> NvrConfig:
    config = web_test_config({n: sim.url(n) for n in sim.camera_names}, root, **api)
    exports = config.exports.model_copy(update={"max_minutes": 10})
    return config.model_copy(update={"exports": exports})


def _site(config: NvrConfig, headers: dict[str, str] | None = None) -> Iterator[Site]:
    app = NvrApp(config)
    server = ApiServer(app)
    app.start()
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers=headers or {}) as http:
            yield Site(app, server, http, config.storage.path)
    finally:
        server.stop()
        app.stop()


@pytest.fixture(scope="module")
def site(sim: SimulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One recorder for the tests that need no fresh one (each removes its exports)."""
    yield from _site(_config(sim, tmp_path_factory.mktemp("site") / "rec"))


def _closed(app: NvrApp, camera: str) -> list[SegmentRow]:
    rows = app.storage.catalog.segments(camera)
    return [r for r in rows if r.status is SegmentStatus.CLOSED]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _range_across_a_boundary(app: NvrApp, camera: str = "cam1") -> tuple[float, float]:
    """From mid-GOP in one closed segment to inside the next (segments of at most 2 s, cut at
    key frames, a GOP 1 s: 1 or 2 s long)."""
    wait_until(lambda: len(_closed(app, camera)) >= 2, 30, f"two closed segments of {camera}")
    a, b = _closed(app, camera)[:2]
    assert b.start_utc - (a.start_utc + (a.duration_s or 0)) < 0.5  # back to back
    return a.start_utc + 0.77, b.start_utc + 0.6 * (b.duration_s or 0)


def _done(site: Site, job_id: str, timeout_s: float = 30) -> dict[str, Any]:
    job: dict[str, Any] = {}

    def finished() -> bool:
        nonlocal job
        job = site.http.get(f"/api/exports/{job_id}").json()
        return job["state"] in ("done", "failed", "cancelled")

    wait_until(finished, timeout_s, f"export {job_id} to finish")
    return job


def ffprobe(path: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout))


def first_stamp(path: Path, *, edit_list: bool = True) -> int | None:
    """The simulator's stamp on the first frame ffmpeg shows (with ``edit_list=False``: the
    first frame in the file, the key frame)."""
    ignore = [] if edit_list else ["-ignore_editlist", "1"]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", *ignore, "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    width, height = SIZE
    y = band_row(height)
    return read_stamp(raw[y * width : (y + 1) * width], width)


def test_an_export_across_a_segment_boundary_starts_at_the_instant(site: Site) -> None:
    start, end = _range_across_a_boundary(site.app)
    with connect(site.url.replace("http", "ws") + "/api/ws/events") as ws:
        assert isinstance(json.loads(ws.recv(timeout=5)), list)  # the cameras, as before
        r = site.http.post(
            "/api/exports", json={"cameras": ["cam1"], "start": _iso(start), "end": _iso(end)}
        )
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/api/exports/{job['id']}"
        assert job["state"] in ("queued", "running") and job["cameras"] == ["cam1"]
        # Progress on the events socket, camera statuses in between (lists).
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not seen or seen[-1]["job"]["state"] not in ("done", "failed"):
            message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if isinstance(message, dict) and message["type"] == "export":
                assert message["job"]["id"] == job["id"] and message["removed"] is False
                seen.append(message)
    states = [m["job"]["state"] for m in seen]
    assert states[-1] == "done", seen[-1]
    assert "running" in states
    progress = [m["job"]["progress"] for m in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0

    job = site.http.get(f"/api/exports/{job['id']}").json()
    assert job == seen[-1]["job"]
    (entry,) = job["files"]
    assert re.fullmatch(r"cam1_\d{8}T\d{6}(\.\d{3})?Z_\d{8}T\d{6}(\.\d{3})?Z\.mp4", entry["name"])
    whole = site.http.get(entry["url"])
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert hashlib.sha256(whole.content).hexdigest() == entry["sha256"]
    assert len(whole.content) == entry["size_bytes"]
    on_disk = site.root / "exports" / job["id"] / entry["name"]
    sums = on_disk.with_name(entry["name"] + ".sha256").read_text()
    assert sums == f"{entry['sha256']}  {entry['name']}\n"
    check = ["sha256sum", "-c", "--quiet", on_disk.name + ".sha256"]
    assert subprocess.run(check, cwd=on_disk.parent, check=False).returncode == 0

    # The first frame shown is the one on screen at the requested start ...
    first = datetime.fromisoformat(entry["first_frame"]).timestamp()
    keyframe = datetime.fromisoformat(entry["keyframe"]).timestamp()
    interval = 1 / FPS
    assert -0.001 <= start - first < interval + 0.002, (start, first)  # 1 ms of rounding
    assert 0 < first - keyframe < 1.0  # decoded from the key frame before (GOP 1 s)
    # ... as the simulator's stamps in the pixels tell: shown first, and the key frame.
    shown, key = first_stamp(on_disk), first_stamp(on_disk, edit_list=False)
    assert shown is not None and key is not None
    print(f"first frame {start - first:.3f} s before the start; stamps {shown - key} ms apart, "
          f"catalog {(first - keyframe) * 1000:.0f} ms")  # fmt: skip
    assert abs((shown - key) - (first - keyframe) * 1000) <= 12  # the simulator's pacing
    # It lasts the range and carries every frame.
    facts = ffprobe(on_disk, "-select_streams", "v:0", "-count_frames",
                    "-show_entries", "stream=start_time,duration,nb_read_frames")["streams"][0]  # fmt: skip
    duration = float(facts["duration"])
    assert float(facts["start_time"]) == 0.0
    assert abs(duration - (end - first)) <= interval, (duration, end - first)
    assert abs(entry["duration_s"] - duration) <= 0.002
    assert abs(int(facts["nb_read_frames"]) - duration * FPS) <= 1.5

    # Range requests: 206 with exactly those bytes.
    part = site.http.get(entry["url"], headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == whole.content[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(whole.content)}"
    tail = site.http.get(entry["url"], headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == whole.content[-500:]
    assert site.http.get(entry["url"], headers={"Range": f"bytes={len(whole.content)}-"}
                         ).status_code == 416  # fmt: skip

    # Removing it removes the files; the listing no longer has it.
    assert site.http.delete(f"/api/exports/{job['id']}").status_code == 204
    assert site.http.get(f"/api/exports/{job['id']}").status_code == 404
    assert not on_disk.parent.exists()


def test_two_cameras_one_file_each_and_a_restart_lists_them_again(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    config = _config(sim, tmp_path / "rec")
    for site in _site(config):
        start, end = _range_across_a_boundary(site.app, "cam2")
        r = site.http.post("/api/exports",
                           json={"cameras": ["cam1", "cam2"], "start": _iso(start), "end": _iso(end)})  # fmt: skip
        assert r.status_code == 202, r.text
        job = _done(site, r.json()["id"])
        assert job["state"] == "done", job
        assert [f["camera"] for f in job["files"]] == ["cam1", "cam2"]
        assert all(f["name"].startswith(f["camera"] + "_") for f in job["files"])
        assert len({f["sha256"] for f in job["files"]}) == 2
        assert site.http.get("/api/exports").json() == [job]
    for site in _site(config):  # a restart on the same storage
        listed = site.http.get("/api/exports").json()
        assert [j["id"] for j in listed] == [job["id"]]
        assert listed[0]["files"] == job["files"] and listed[0]["state"] == "done"
        body = site.http.get(job["files"][1]["url"]).content
        assert hashlib.sha256(body).hexdigest() == job["files"][1]["sha256"]


def test_bad_requests_get_clear_answers(site: Site) -> None:
    before = site.http.get("/api/exports").json()
    now = time.time()
    post = lambda body: site.http.post("/api/exports", json=body)  # noqa: E731
    r = post({"cameras": ["cam1", "nope", "cam9"], "start": _iso(now - 60), "end": _iso(now)})
    assert r.status_code == 404
    assert r.json()["detail"] == {
        "message": "no camera 'nope', 'cam9'",
        "cameras": ["nope", "cam9"],
    }
    r = post({"cameras": ["cam1"], "start": _iso(now), "end": _iso(now - 60)})
    assert r.status_code == 422 and r.json()["detail"] == "start must be before end"
    r = post({"cameras": ["cam1"], "start": _iso(now - 3600), "end": _iso(now)})
    assert r.status_code == 422 and "at most 10 minutes" in r.json()["detail"]
    r = post({"cameras": ["cam1", "cam2"], "start": _iso(now - 86400), "end": _iso(now - 86000)})
    assert r.status_code == 422
    assert r.json()["detail"]["cameras"] == ["cam1", "cam2"]
    assert r.json()["detail"]["message"].startswith("nothing recorded between")
    naive = datetime.now().replace(microsecond=0)
    r = post({"cameras": ["cam1"], "start": naive.isoformat(),
              "end": (naive + timedelta(seconds=5)).isoformat()})  # fmt: skip
    assert r.status_code == 422 and "timezone" in r.text  # no guessing the zone
    r = post({"cameras": ["../etc"], "start": _iso(now - 60), "end": _iso(now)})
    assert r.status_code == 422
    assert post({"cameras": [], "start": _iso(now - 60), "end": _iso(now)}).status_code == 422
    assert site.http.get("/api/exports/0123456789ab").status_code == 404
    assert site.http.get("/api/exports/..%2F..%2Fcatalog").status_code in (404, 422)
    assert site.http.get("/api/exports/XYZ").status_code == 422
    assert site.http.delete("/api/exports/0123456789ab").status_code == 404
    assert site.http.get("/api/exports").json() == before  # nothing was queued


def test_cancelling_a_queued_export(site: Site) -> None:
    start, end = _range_across_a_boundary(site.app)
    # One job at a time: the last of ten waits behind 18 exports (each a pipeline of its own,
    # 15 ms at least) while its DELETE takes one request. (Queued here directly, by the
    # service the API uses: on loopback a request takes longer than a short export.)
    jobs = [site.app.exports.submit(["cam1", "cam2"], start, end) for _ in range(10)]
    last = jobs[-1].id
    r = site.http.delete(f"/api/exports/{last}")
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    for job in jobs[:-1]:
        assert _done(site, job.id)["state"] == "done"
    cancelled = site.http.get(f"/api/exports/{last}").json()
    assert cancelled["state"] == "cancelled" and cancelled["error"] == "cancelled"
    assert all(f["sha256"] is None for f in cancelled["files"])
    assert not (site.root / "exports" / last).exists()
    assert site.http.get(cancelled["files"][0]["url"]).status_code == 409
    for job in jobs:  # finished, each is removed
        assert site.http.delete(f"/api/exports/{job.id}").status_code == 204


def test_with_a_token_every_export_endpoint_needs_it(sim: SimulatorProcess, tmp_path: Path) -> None:
    config = _config(sim, tmp_path / "rec", token=SecretStr(TOKEN))
    for site in _site(config):
        start, end = _range_across_a_boundary(site.app)
        body = {"cameras": ["cam1"], "start": _iso(start), "end": _iso(end)}
        h = site.http
        assert h.post("/api/exports", json=body).status_code == 401
        assert h.get("/api/exports").status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        r = h.post("/api/exports", json=body, headers=bearer)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        for path in (f"/api/exports/{job_id}", f"/api/exports/{job_id}/files/cam1"):
            assert h.get(path).status_code == 401
        assert h.delete(f"/api/exports/{job_id}").status_code == 401
        job = _done_with(h, job_id, bearer)
        assert h.get(job["files"][0]["url"], headers=bearer).status_code == 200
        # A browser's session works from this site's pages, not from another site's.
        login = h.post("/api/login", json={"token": TOKEN}, headers={"origin": site.url})
        with httpx.Client(base_url=site.url, cookies=login.cookies, timeout=30) as browser:
            evil = {"origin": "http://evil.example"}
            assert browser.post("/api/exports", json=body, headers=evil).status_code == 401
            assert browser.delete(f"/api/exports/{job_id}", headers=evil).status_code == 401
            ours = browser.post("/api/exports", json=body, headers={"origin": site.url})
            assert ours.status_code == 202
            assert browser.get(f"/api/exports/{job_id}").status_code == 200
        assert TOKEN not in json.dumps(job)


def _done_with(h: httpx.Client, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    job: dict[str, Any] = {}

    def finished() -> bool:
        nonlocal job
        job = h.get(f"/api/exports/{job_id}", headers=headers).json()
        return job["state"] in ("done", "failed", "cancelled")

    wait_until(finished, 30, f"export {job_id}")
    return job


def test_the_openapi_document_describes_the_exports(site: Site) -> None:
    doc = site.http.get("/openapi.json").json()
    paths = doc["paths"]
    assert set(paths["/api/exports"]) == {"get", "post"}
    assert set(paths["/api/exports/{job_id}"]) == {"get", "delete"}
    assert "get" in paths["/api/exports/{job_id}/files/{camera_id}"]
    schemas = doc["components"]["schemas"]
    assert {"ExportIn", "ExportJobOut", "ExportFileOut"} <= set(schemas)
    assert "sha256" in schemas["ExportFileOut"]["properties"]


# ---- in Chromium ------------------------------------------------------------------------------


FIRST_FRAME = """async (url) => {
  const { readStamp, bandRow } = await import('/static/frame_stamp.js');
  const v = document.createElement('video');
  v.muted = true; v.preload = 'auto'; v.src = url;
  document.body.appendChild(v);
  await new Promise((ok, fail) => { v.onloadeddata = ok; v.onerror = () => fail(v.error); });
  v.currentTime = 0;
  await new Promise((ok) => { v.onseeked = ok; });
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d', { willReadFrequently: true });
  // 'seeked' may come before the frame can be drawn (a blank canvas on a busy machine): read
  // again until the stamp is there (a wrong frame still reads as a wrong stamp).
  let stamp = null;
  for (let i = 0; i < 40 && stamp === null; i++) {
    if (i) await new Promise((ok) => setTimeout(ok, 50));
    g.drawImage(v, 0, 0);
    stamp = readStamp(g.getImageData(0, bandRow(c.height), c.width, 1).data, c.width);
  }
  return { stamp, duration: v.duration };
}"""


def test_chromium_shows_the_frame_at_the_start_first(site: Site, browser: Any) -> None:
    start, end = _range_across_a_boundary(site.app)
    r = site.http.post(
        "/api/exports", json={"cameras": ["cam1"], "start": _iso(start), "end": _iso(end)}
    )
    job = _done(site, r.json()["id"])
    (entry,) = job["files"]
    on_disk = site.root / "exports" / job["id"] / entry["name"]
    page = browser.new_page()
    page.goto(site.url + "/login")  # any page of the site: the file is same-origin
    seen = page.evaluate(FIRST_FRAME, entry["url"])
    page.close()
    shown, key = first_stamp(on_disk), first_stamp(on_disk, edit_list=False)
    print(f"chromium: {seen}; ffmpeg: {shown}, the key frame: {key}")
    assert seen["stamp"] == shown != key
    assert abs(seen["duration"] - entry["duration_s"]) <= 1 / FPS
    assert site.http.delete(f"/api/exports/{job['id']}").status_code == 204


def test_the_live_page_ignores_export_messages(site: Site, browser: Any) -> None:
    """The grid's events socket now also carries export jobs: the page skips them and keeps
    following the cameras."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site.url + "/")
    page.wait_for_function("() => document.querySelectorAll('.tile .badge').length === 2")
    page.evaluate(
        """() => { window.seen = [];
             const ws = new WebSocket(`ws://${location.host}/api/ws/events`);
             ws.onmessage = (e) => window.seen.push(JSON.parse(e.data)); }"""
    )
    # Subscribed once the socket's first message (every camera's status) has come: an export
    # posted before that could finish unseen.
    page.wait_for_function("() => window.seen.length > 0")
    start, end = _range_across_a_boundary(site.app)
    r = site.http.post(
        "/api/exports", json={"cameras": ["cam1"], "start": _iso(start), "end": _iso(end)}
    )
    job = _done(site, r.json()["id"])
    page.wait_for_function(
        "(id) => window.seen.some(m => m.type === 'export' && m.job.id === id"
        " && m.job.state === 'done')",
        arg=job["id"],
    )
    # Still following the cameras: a recording switched off elsewhere shows in the tile.
    assert site.http.post("/api/cameras/cam2/recording/stop").status_code == 200
    page.wait_for_function(
        "() => document.querySelector('.tile[data-camera=\"cam2\"] .rec').textContent === 'Record'"
    )
    assert site.http.post("/api/cameras/cam2/recording/start").status_code == 200
    page.close()
    assert errors == []
    assert site.http.delete(f"/api/exports/{job['id']}").status_code == 204
