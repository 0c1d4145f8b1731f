"""`GET /api/timeline/range` over HTTP against the real service: the same footage and gaps as
`GET /api/timeline` for the same days (real recordings from the simulator today, catalog rows
for the two days before), clear 4xx for bad requests, the token when one is set."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from nvr_gstreamer.api.server import ApiServer
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.config import NvrConfig
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.storage.timeline import day_bounds
from nvr_gstreamer.testing.catalog_fill import fill_catalog
from nvr_gstreamer.testing.engine import engine_config, wait_until

pytestmark = pytest.mark.integration

TOKEN = "range-token"


def _with_api(config: NvrConfig, **api: object) -> NvrConfig:
    return config.model_copy(update={"api": config.api.model_copy(update={"port": 0, **api})})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat()


def _day_range(first: date, days: int = 1) -> dict[str, str]:
    """``days`` local days from ``first``'s midnight, as query parameters."""
    last = first + timedelta(days=days - 1)
    return {"start": _iso(day_bounds(first)[0]), "end": _iso(day_bounds(last)[1])}


def _pieces(tl: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Footage and gaps in time order: (start, end, "footage" or the gap's reason)."""
    out = [(f["start"], f["end"], "footage") for f in tl["footage"]]
    out += [(g["start"], g["end"], g["reason"]) for g in tl["gaps"]]
    return sorted(out, key=lambda p: datetime.fromisoformat(p[0]))


def _joined(days: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Consecutive days' pieces, those cut at midnight put back together."""
    out: list[tuple[str, str, str]] = []
    for piece in (p for d in days for p in _pieces(d)):
        if out and out[-1][2] == piece[2] and out[-1][1] == piece[0]:
            out[-1] = (out[-1][0], piece[1], piece[2])
        else:
            out.append(piece)
    return out


def _assert_partition(answer: dict[str, Any]) -> None:
    """Every camera's pieces cover [start, horizon) without hole or overlap; the epoch
    seconds say what the ISO times say."""
    for cam in answer["cameras"]:
        pieces = [*cam["footage"], *cam["gaps"]]
        for p in pieces:
            assert abs(datetime.fromisoformat(p["start"]).timestamp() - p["start_utc"]) < 1e-5
            assert abs(datetime.fromisoformat(p["end"]).timestamp() - p["end_utc"]) < 1e-5
        spans = sorted((p["start_utc"], p["end_utc"]) for p in pieces)
        if answer["horizon_utc"] == answer["start_utc"]:
            assert spans == []
            continue
        assert spans[0][0] == answer["start_utc"] and spans[-1][1] == answer["horizon_utc"]
        assert all(e1 == s2 for (_s1, e1), (s2, _e2) in pairwise(spans))
        assert all(e > s for s, e in spans)


@dataclass
class Service:
    app: NvrApp
    http: httpx.Client
    today: date


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
        app.start()
        api.start()
        # The two days before today, as catalog rows (after start-up: recovery drops rows
        # whose files do not exist): outages of every reason, a stop of the recorder.
        today = date.today()
        first = day_bounds(today - timedelta(days=2))[0]
        stop = first + 30 * 3600
        fill_catalog(
            root, sim.camera_names, first, day_bounds(today)[0], segment_s=300,
            outages_per_day=12, stopped=[(stop, stop + 900)], still_recording=False,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=api.url, timeout=30) as http:
                yield Service(app, http, today)
        finally:
            api.stop()
            app.stop()


def _closed_today(s: Service, camera: str) -> int:
    since = _iso(day_bounds(s.today)[0])
    rows = s.http.get("/api/recordings", params={"camera": camera, "start": since}).json()
    return sum(1 for r in rows if r["status"] == "closed")


def test_the_range_says_what_the_day_timeline_says(service: Service) -> None:
    s = service
    cams = ["cam1", "cam2"]
    wait_until(lambda: all(_closed_today(s, c) >= 2 for c in cams), 30, "two files per camera")
    for cam in cams:  # today's answers stop changing but for their end (now)
        assert s.http.post(f"/api/cameras/{cam}/recording/stop").status_code == 200

    def switched_off(cam: str) -> bool:  # the gap's note reaches the catalog a moment later
        today = s.http.get("/api/timeline", params={"camera": cam, "date": s.today.isoformat()})
        return "recording_off" in {p[2] for p in _pieces(today.json())}

    wait_until(lambda: all(switched_off(c) for c in cams), 10, "recording_off in the catalog")
    days = [s.today - timedelta(days=i) for i in (2, 1, 0)]
    by_day = {
        cam: [
            s.http.get("/api/timeline", params={"camera": cam, "date": d.isoformat()}).json()
            for d in days
        ]
        for cam in cams
    }

    for i, d in enumerate(days):
        r = s.http.get("/api/timeline/range", params={"camera": cams, **_day_range(d)})
        assert r.status_code == 200, r.text
        answer = r.json()
        _assert_partition(answer)
        assert [c["camera"] for c in answer["cameras"]] == cams
        for cam in answer["cameras"]:
            day = by_day[cam["camera"]][i]
            got, want = _pieces(cam), _pieces(day)
            if d == s.today:  # asked a moment later: the last gap reaches a later now
                assert got[:-1] == want[:-1] and got[-1][::2] == want[-1][::2]
                assert {"footage", "recording_off"} <= {p[2] for p in got}
            else:
                assert got == want
            assert cam["segment_count"] == len(day["segments"])

    # Three days at once: the days joined (pieces cut at midnight put back together).
    r = s.http.get("/api/timeline/range", params={"camera": cams, **_day_range(days[0], 3)})
    answer = r.json()
    _assert_partition(answer)
    reasons = set()
    for cam in answer["cameras"]:
        got, want = _pieces(cam), _joined(by_day[cam["camera"]])
        assert got[:-1] == want[:-1] and got[-1][::2] == want[-1][::2]
        ids = {seg["id"] for day in by_day[cam["camera"]] for seg in day["segments"]}
        assert cam["segment_count"] == len(ids)
        reasons |= {g["reason"] for g in cam["gaps"]}
    assert "nvr_stopped" in reasons and len(reasons) >= 4


@pytest.fixture
def idle(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """The API with a token over a catalog of rows, the cameras never started."""
    root = tmp_path / "rec"
    now = time.time()
    fill_catalog(root, ["cam1", "cam2", "cam3"], now - 3 * 86_400, now)
    config = engine_config(
        {c: f"rtsp://127.0.0.1:9/{c}" for c in ("cam1", "cam2", "cam3")}, storage=root
    )
    app = NvrApp(_with_api(config, token=SecretStr(TOKEN)))
    api = ApiServer(app)
    api.start()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=api.url, timeout=30, headers=headers) as http:
            yield http, api.url
    finally:
        api.stop()
        app.storage.stop()


def test_bad_requests_get_clear_answers_and_the_token_is_required(
    idle: tuple[httpx.Client, str],
) -> None:
    http, url = idle
    now = time.time()
    week = {"start": _iso(now - 7 * 86_400), "end": _iso(now)}

    assert httpx.get(f"{url}/api/timeline/range", params=week).status_code == 401
    wrong = {"Authorization": "Bearer x"}
    assert httpx.get(f"{url}/api/timeline/range", params=week, headers=wrong).status_code == 401
    assert http.get("/api/timeline/range", params=week).status_code == 200

    def detail(params: dict[str, Any], status: int) -> str:
        r = http.get("/api/timeline/range", params=params)
        assert r.status_code == status, (params, r.text)
        return str(r.json()["detail"])

    assert "end must be after start" in detail({"start": week["end"], "end": week["start"]}, 422)
    assert "end must be after start" in detail({"start": week["end"], "end": week["end"]}, 422)
    month = {"start": _iso(now - 31 * 86_400 - 1), "end": _iso(now)}
    assert "at most 31 days" in detail(month, 422)
    assert detail({**week, "camera": ["cam1", "nope"]}, 404) == "no camera 'nope'"
    assert "camera" in detail({**week, "camera": "../cam1"}, 422)
    assert "start" in detail({"start": "yesterday", "end": week["end"]}, 422)
    assert "start" in detail({"end": week["end"]}, 422)
    # A "+01:00" left unencoded in a query string is a space: a clear 422, not a wrong time.
    r = http.get(f"/api/timeline/range?start=2026-01-01T00:00:00+01:00&end={week['end']}")
    assert r.status_code == 422

    # No camera: every camera, in the config's order; a camera asked twice comes once.
    assert [
        c["camera"] for c in http.get("/api/timeline/range", params=week).json()["cameras"]
    ] == [
        "cam1",
        "cam2",
        "cam3",
    ]
    twice = http.get("/api/timeline/range", params={**week, "camera": ["cam2", "cam2"]}).json()
    assert [c["camera"] for c in twice["cameras"]] == ["cam2"]

    # The future is neither footage nor gap.
    later = {"start": _iso(now + 3600), "end": _iso(now + 7200)}
    future = http.get("/api/timeline/range", params=later).json()
    assert future["horizon_utc"] == future["start_utc"]
    assert all(c["footage"] == [] and c["gaps"] == [] for c in future["cameras"])

    answer = http.get("/api/timeline/range", params=week).json()
    _assert_partition(answer)
    assert all(c["segment_count"] > 0 for c in answer["cameras"])
    spec = http.get("/openapi.json").json()
    assert "/api/timeline/range" in spec["paths"]
    assert "TimelineRangeOut" in spec["components"]["schemas"]


@pytest.fixture
def berlin() -> Iterator[None]:
    """The process's local zone is Europe/Berlin (UTC+1 in winter) for the test."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.usefixtures("berlin")
def test_a_time_without_an_offset_is_local_time(idle: tuple[httpx.Client, str]) -> None:
    http, _url = idle
    naive = {"start": "2026-01-10T00:00:00", "end": "2026-01-11T00:00:00"}
    aware = {"start": "2026-01-09T23:00:00Z", "end": "2026-01-10T23:00:00Z"}
    a, b = (http.get("/api/timeline/range", params=p).json() for p in (naive, aware))
    assert a["start_utc"] == b["start_utc"] == datetime.fromisoformat(aware["start"]).timestamp()
    assert a["start"] == "2026-01-10T00:00:00+01:00"  # echoed in local time, as /api/timeline
    assert a["cameras"] == b["cameras"]
