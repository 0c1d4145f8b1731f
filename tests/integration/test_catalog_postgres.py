"""``nvr run`` with its catalog on a real PostgreSQL server (started by the test): segments are
catalogued there, none in the storage root; with the server stopped, every camera goes on
recording, /api/health says the catalog is unreachable and the API answers 503 instead of
500; once it is back, every segment closed meanwhile is catalogued, in order, and the
timeline over the outage is footage without a gap."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.storage.catalog import CATALOG_NAME, Catalog
from nvr_gstreamer.testing.engine import wait_until
from nvr_gstreamer.testing.postgres import PostgresServer
from nvr_gstreamer.testing.recorder import Recorder, free_port

pytestmark = pytest.mark.integration

OUTAGE_S = 6.0  # the database is down for three segments' time


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    pg = PostgresServer()  # its own: this test stops and starts it
    pg.start()
    yield pg
    pg.close()


def _frames(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return int(out.stdout.strip())


def _files(root: Path, camera: str) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / camera).rglob("*.mkv")}


def test_segments_are_catalogued_in_postgresql_and_an_outage_of_it_loses_none(
    server: PostgresServer, tmp_path: Path
) -> None:
    url = server.fresh_url()
    root = tmp_path / "rec"
    with SimulatorProcess(cameras=2, gop_seconds=0.5) as sim:
        cfg = tmp_path / "nvr.yaml"
        port = free_port()
        cams = "".join(f"  - id: {n}\n    url: {sim.url(n)}\n" for n in sim.camera_names)
        cfg.write_text(
            f"storage: {{path: {root}, segment_seconds: 2}}\n"
            f"catalog: {{url: '{url}'}}\n"
            f"api: {{port: {port}}}\n"
            f"cameras:\n{cams}"
        )
        rec = Recorder(cfg, port, tmp_path / "nvr.log")
        rec.start()
        try:
            closed = lambda cam: [  # noqa: E731
                r for r in rec.http.get("/api/recordings", params={"camera": cam}).json()
                if r["status"] == "closed"
            ]  # fmt: skip
            for cam in sim.camera_names:
                wait_until(lambda cam=cam: len(closed(cam)) >= 2, 30, f"{cam}'s segments")
            assert rec.health()["catalog"] == {
                "backend": "postgresql", "state": "ok", "reason": None, "pending_writes": 0,
            }  # fmt: skip
            assert not (root / CATALOG_NAME).exists()
            # The rows are PostgreSQL's, and they describe the files.
            with psycopg.connect(url) as db:
                rows = db.execute(
                    "SELECT path, frames FROM segments WHERE status='closed' ORDER BY id"
                ).fetchall()
            path, frames = rows[0]
            assert frames == _frames(root / path) > 0

            # The database goes away while both cameras record.
            down = time.time()
            server.stop()
            wait_until(
                lambda: rec.health()["catalog"]["state"] == "unreachable", 15, "the outage seen"
            )
            health = rec.health()
            assert health["status"] == "degraded"
            assert health["catalog"]["pending_writes"] >= 1
            res = rec.http.get("/api/recordings")
            assert res.status_code == 503
            assert "catalog is unavailable" in res.json()["detail"]
            before = {cam: _files(root, cam) for cam in sim.camera_names}
            for cam in sim.camera_names:  # recording goes on: new files on the disk
                wait_until(
                    lambda cam=cam: len(_files(root, cam) - before[cam]) >= 2, 20, f"{cam} files"
                )
            assert all(rec.camera(cam)["recording"] for cam in sim.camera_names)
            remaining = OUTAGE_S - (time.time() - down)
            if remaining > 0:
                time.sleep(remaining)  # the outage's length is the fault itself

            server.start()
            wait_until(
                lambda: rec.health()["catalog"] == {
                    "backend": "postgresql", "state": "ok", "reason": None, "pending_writes": 0,
                },
                20,
                "the catalog caught up",
            )  # fmt: skip
        finally:
            rec.stop()
        last = time.time()

    catalog = Catalog(root, url)
    try:
        for cam in ("cam1", "cam2"):
            rows = catalog.segments(cam)
            # Every file on the disk is catalogued, once, and every row has its file.
            assert {r.path for r in rows} == _files(root, cam)
            assert all(r.status.value == "closed" for r in rows)
            starts = [r.start_utc for r in rows]
            assert starts == sorted(starts)
            # Over the outage (recording began more than two segments before it) the timeline
            # is footage only: the database was down, not the recording.
            tl = catalog.timeline(cam, down - 1, down + OUTAGE_S + 1, now_utc=last)
            assert tl.gaps == ()
    finally:
        catalog.close()


def test_the_first_call_after_the_server_restarted_reconnects_by_itself(
    server: PostgresServer, tmp_path: Path
) -> None:
    catalog = Catalog(tmp_path, server.fresh_url())
    try:
        catalog.add_segment("cam1", "cam1/d/a.mkv", 1_790_000_000.0)
        server.stop()
        server.start()
        # The kept connection is dead; nothing had been asked of it yet: no error, no 503.
        assert [r.path for r in catalog.segments("cam1")] == ["cam1/d/a.mkv"]
    finally:
        catalog.close()
