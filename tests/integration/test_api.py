"""The HTTP API and metrics against the real service and the simulator."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from nvr_gstreamer.api.server import ApiError, ApiServer, Confirm
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.config import NvrConfig
from nvr_gstreamer.engine.gst_media import GstMedia
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.storage.volume import MARKER_NAME
from nvr_gstreamer.testing.engine import EngineWatch, engine_config, wait_until

pytestmark = pytest.mark.integration


@dataclass
class Service:
    app: NvrApp
    api: ApiServer
    http: httpx.Client
    sim: SimulatorProcess
    watch: EngineWatch
    root: Path


def _with_api(config: NvrConfig, **api: object) -> NvrConfig:
    return config.model_copy(update={"api": config.api.model_copy(update={"port": 0, **api})})


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with SimulatorProcess(cameras=2, gop_seconds=1.0) as sim:
        root = tmp_path / "rec"
        config = engine_config(
            {n: sim.url(n) for n in sim.camera_names},
            storage=root,
            storage_options={"segment_seconds": 2},
        )
        app = NvrApp(_with_api(config))
        api = ApiServer(app)
        watch = EngineWatch(app.engine)
        app.start()
        api.start()
        try:
            with httpx.Client(base_url=api.url, timeout=20) as http:
                yield Service(app, api, http, sim, watch, root)
        finally:
            api.stop()
            app.stop()


def _closed_segments(s: Service) -> list[dict[str, object]]:
    rows = s.http.get("/api/recordings", params={"camera": "cam1"}).json()
    return [r for r in rows if r["status"] == "closed"]


def test_every_endpoint_on_the_happy_path(service: Service) -> None:
    s = service
    wait_until(lambda: len(_closed_segments(s)) >= 2, 30, "two closed segments")
    health = s.http.get("/api/health").json()
    assert health["status"] == "ok" and health["storage"]["state"] == "ok"
    cams = s.http.get("/api/cameras").json()
    assert [c["id"] for c in cams] == ["cam1", "cam2"]
    cam1 = s.http.get("/api/cameras/cam1").json()
    assert cam1["state"] == "streaming" and cam1["recording"] is True and cam1["fps"] > 0

    r = s.http.post("/api/cameras/cam1/recording/stop")
    assert r.status_code == 200 and r.json()["recording"] is False
    r = s.http.post("/api/cameras/cam1/recording/start")
    assert r.status_code == 200 and r.json()["recording"] is True

    seg = _closed_segments(s)[0]
    start = datetime.fromisoformat(str(seg["start"]))
    ranged = s.http.get(
        "/api/recordings", params={"camera": "cam1", "start": seg["start"], "end": seg["end"]}
    ).json()
    assert seg["id"] in [r["id"] for r in ranged]

    path = s.root / str(seg["path"])
    whole = s.http.get(f"/api/recordings/{seg['id']}/file")
    assert whole.status_code == 200 and whole.content == path.read_bytes()
    part = s.http.get(f"/api/recordings/{seg['id']}/file", headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == path.read_bytes()[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{path.stat().st_size}"

    day = start.astimezone().date().isoformat()
    tl = s.http.get("/api/timeline", params={"camera": "cam1", "date": day}).json()
    assert seg["id"] in [x["id"] for x in tl["segments"]]
    assert all(g["reason"] for g in tl["gaps"])

    metrics = s.http.get("/metrics").text
    for name in (
        "nvr_camera_disconnects_total",
        "nvr_camera_reconnect_attempts_total",
        "nvr_camera_stalls_total",
        "nvr_camera_errors_total",
        "nvr_camera_recording",
        "nvr_camera_frames_total",
        "nvr_camera_bytes_total",
        "nvr_segments_written_total",
        "nvr_storage_free_bytes",
        "nvr_retention_deletions_total",
    ):
        assert re.search(rf"^{name}[{{ ]", metrics, re.M), name
    assert 'nvr_camera_state{camera="cam1",state="streaming"} 1.0' in metrics
    assert s.http.get("/openapi.json").json()["paths"]["/api/cameras"]


def test_error_paths_unknown_camera_bad_dates_and_traversal(service: Service) -> None:
    h = service.http
    assert h.get("/api/cameras/nope").status_code == 404
    assert h.post("/api/cameras/nope/recording/start").status_code == 404
    assert h.post("/api/cameras/nope/recording/stop").status_code == 404
    assert (
        h.get("/api/timeline", params={"camera": "cam1", "date": "2026-13-01"}).status_code == 422
    )
    assert h.get("/api/timeline", params={"camera": "cam1"}).status_code == 422
    assert h.get("/api/recordings", params={"start": "yesterday"}).status_code == 422
    for bad in ("../cam1", "cam1/../../etc", "..%2F..%2Fetc%2Fpasswd", "CAM1"):
        r = h.get("/api/timeline", params={"camera": bad, "date": "2026-01-01"})
        assert r.status_code == 422, bad
        assert h.get("/api/recordings", params={"camera": bad}).status_code == 422
    for bad in ("/api/cameras/..%2F..%2Fetc%2Fpasswd", "/api/cameras/../../etc/passwd"):
        assert h.get(bad).status_code == 404
    assert h.get("/api/recordings/..%2F..%2Fetc%2Fpasswd/file").status_code in (404, 422)
    assert h.get("/api/recordings/abc/file").status_code == 422
    assert h.get("/api/recordings/999999/file").status_code == 404


def test_start_while_storage_unavailable_is_409(service: Service) -> None:
    s = service
    s.http.post("/api/cameras/cam2/recording/stop")
    (s.root / MARKER_NAME).unlink()  # what a drive that is no longer mounted looks like
    wait_until(
        lambda: s.http.get("/api/cameras/cam2").json()["storage_state"] == "unavailable",
        10,
        "storage unavailable",
    )
    r = s.http.post("/api/cameras/cam2/recording/start")
    assert r.status_code == 409 and "unavailable" in r.json()["detail"]
    assert s.http.get("/api/health").json()["status"] == "degraded"


def _metric(text: str, name: str, camera: str) -> float:
    m = re.search(rf'^{name}{{camera="{camera}"}} (\S+)$', text, re.M)
    assert m, name
    return float(m.group(1))


def test_killed_camera_shows_reconnecting_counts_one_outage_and_comes_back(
    service: Service,
) -> None:
    s = service
    wait_until(
        lambda: (c := s.http.get("/api/cameras/cam1").json())["state"] == "streaming"
        and c["current_segment"] is not None,
        10,
        "streaming and writing a file",
    )
    before = _metric(s.http.get("/metrics").text, "nvr_camera_disconnects_total", "cam1")
    s.sim.kill()
    wait_until(
        lambda: s.http.get("/api/cameras/cam1").json()["state"] == "reconnecting", 5, "reconnecting"
    )
    cam = s.http.get("/api/cameras/cam1").json()
    assert cam["next_retry_in_s"] is not None and cam["next_retry_in_s"] > 0
    assert cam["last_error"]["kind"] == "network"
    s.sim.restart()
    wait_until(
        lambda: (c := s.http.get("/api/cameras/cam1").json())["state"] == "streaming"
        and c["recording"],
        10,
        "streaming and recording again",
    )
    after = _metric(s.http.get("/metrics").text, "nvr_camera_disconnects_total", "cam1")
    assert after - before == 1


def test_access_rules(tmp_path: Path) -> None:
    config = engine_config({"cam1": "rtsp://127.0.0.1:9/none"}, storage=tmp_path / "rec")
    with pytest.raises(ApiError, match="api.token"):
        ApiServer(NvrApp(_with_api(config, host="0.0.0.0")))
    app = NvrApp(_with_api(config, token=SecretStr("s3cret-token")))
    api = ApiServer(app)
    api.start()
    try:
        with httpx.Client(base_url=api.url, timeout=10) as h:
            assert h.get("/api/health").status_code == 200
            assert h.get("/api/cameras").status_code == 401
            assert h.get("/metrics").status_code == 401
            bad = {"Authorization": "Bearer nope"}
            assert h.get("/api/cameras", headers=bad).status_code == 401
            good = {"Authorization": "Bearer s3cret-token"}
            assert h.get("/api/cameras", headers=good).status_code == 200
            assert "s3cret-token" not in h.get("/api/cameras", headers=good).text
    finally:
        api.stop()
        app.storage.stop()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        cfg = tmp_path / "nvr.yaml"
        cfg.write_text(
            f"storage: {{path: {tmp_path / 'rec'}}}\napi: {{port: {port}}}\n"
            "cameras: [{id: cam1, url: 'rtsp://127.0.0.1:9/none'}]\n"
        )
        nvr = Path(sys.executable).parent / "nvr"
        res = subprocess.run([nvr, "run", "-c", cfg], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr


def test_readme_demo_prints_urls_that_answer(tmp_path: Path) -> None:
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    nvr = Path(sys.executable).parent / "nvr"
    proc = subprocess.Popen(
        [nvr, "demo", "--port", str(ports[0]), "--api-port", str(ports[1]),
         "--output", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        urls: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            urls += re.findall(r"(http://127\.0\.0\.1:\d+/\S+)", line)
            if "Ctrl-C" in line:
                break
        api_urls = [u for u in urls if f":{ports[1]}/" in u and "recording" not in u]
        assert any(u.endswith("/metrics") for u in api_urls), urls
        with httpx.Client(timeout=10) as h:
            for u in api_urls:
                assert h.get(u).status_code == 200, u
            wait_until(
                lambda: h.get(f"http://127.0.0.1:{ports[1]}/api/health").json()["status"] == "ok",
                15,
                "all demo cameras streaming",
            )
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    assert list((tmp_path / "demo").glob("*/*/*.mkv"))


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ("{path: PLAIN_FILE/rec}", "nvr run: cannot use storage folder"),
        ("{path: rec, segment_seconds: 1}", "storage.segment_seconds: expected a number from 2"),
    ],
)
def test_run_refuses_bad_config_and_unusable_storage(
    tmp_path: Path, storage: str, expected: str
) -> None:
    (tmp_path / "PLAIN_FILE").write_text("not a folder")
    cfg = tmp_path / "nvr.yaml"
    cfg.write_text(
        f"storage: {storage}\ncameras: [{{id: cam1, url: 'rtsp://u:Hidden99@127.0.0.1:9/x'}}]\n"
    )
    nvr = Path(sys.executable).parent / "nvr"
    res = subprocess.run(
        [nvr, "run", "-c", cfg], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert res.returncode == 1
    assert expected in res.stderr
    assert "Hidden99" not in res.stderr + res.stdout


def test_recording_files_are_served_for_every_camera_id_shape(tmp_path: Path) -> None:
    """Ids with "_" and "-" (and digits that look like a date) were answered 404 "has no
    file" because the day was read by splitting the file name on "_"."""
    ids = ["cam_s", "a-b", "x_20260101"]
    with SimulatorProcess(cameras=1, gop_seconds=1.0) as sim:
        config = engine_config(
            dict.fromkeys(ids, sim.url("cam1")),
            storage=tmp_path / "rec",
            storage_options={"segment_seconds": 2},
        )
        app = NvrApp(_with_api(config))
        api = ApiServer(app)
        app.start()
        api.start()
        try:
            with httpx.Client(base_url=api.url, timeout=20) as http:
                for cid in ids:

                    def closed(cid: str = cid) -> list[dict[str, object]]:
                        rows = http.get("/api/recordings", params={"camera": cid}).json()
                        return [r for r in rows if r["status"] == "closed"]

                    wait_until(lambda: bool(closed()), 30, f"a closed segment of {cid}")
                    seg = closed()[0]
                    r = http.get(f"/api/recordings/{seg['id']}/file")
                    assert r.status_code == 200, (cid, r.text)
                    assert r.content == (tmp_path / "rec" / str(seg["path"])).read_bytes()
        finally:
            api.stop()
            app.stop()


class _SlowDisk:
    """A real recorder whose last file takes 2 s longer to become final (a slow disk)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def finish_blocking(self, timeout_s: float) -> bool:
        time.sleep(2.0)
        return bool(self._real.finish_blocking(timeout_s))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class SlowDiskMedia(GstMedia):
    def recorder(self, *args: Any, **kwargs: Any) -> Any:
        return _SlowDisk(super().recorder(*args, **kwargs))


def test_a_switch_the_engine_does_not_confirm_in_time_is_504_with_the_state(
    tmp_path: Path,
) -> None:
    with SimulatorProcess(cameras=1, gop_seconds=1.0) as sim:
        config = engine_config({"cam1": sim.url("cam1")}, storage=tmp_path / "rec")
        app = NvrApp(_with_api(config), media=SlowDiskMedia)
        api = ApiServer(app, Confirm(start_s=5.0, stop_s=0.5))
        app.start()
        api.start()
        try:
            with httpx.Client(base_url=api.url, timeout=20) as http:
                wait_until(
                    lambda: http.get("/api/cameras/cam1").json()["current_segment"] is not None,
                    15,
                    "recording",
                )
                r = http.post("/api/cameras/cam1/recording/stop")
                assert r.status_code == 504, r.text
                detail = r.json()["detail"]
                assert "did not confirm the final file within 0.5 s" in detail["message"]
                # The state as it is: switched off, the file still being finalised.
                assert detail["camera"]["recording_wanted"] is False
                assert detail["camera"]["recording"] is True
                wait_until(
                    lambda: http.get("/api/cameras/cam1").json()["recording"] is False,
                    10,
                    "the file final",
                )
                r = http.post("/api/cameras/cam1/recording/start")
                assert r.status_code == 200 and r.json()["recording"] is True
        finally:
            api.stop()
            app.stop()
