"""``nvr run`` with ``storage.remote`` against a real S3 server (SeaweedFS, started by the
test): every closed segment is uploaded, verified, catalogued and removed from the disk; the
API serves it from the bucket (ranges too) and an export reads it; with the S3 server down,
segments wait on the disk (the state says so) and are all uploaded once it is back."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.storage.catalog import Catalog
from nvr_gstreamer.testing.engine import wait_until
from nvr_gstreamer.testing.recorder import Recorder, free_port
from nvr_gstreamer.testing.s3 import S3Server

pytestmark = pytest.mark.integration

OUTAGE_S = 6.0


@pytest.fixture
def s3() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.close()


def _frames(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return int(out.stdout.strip())


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _objects(s3: S3Server) -> dict[str, int]:
    client: Any = s3.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def test_segments_go_to_the_bucket_are_read_from_it_and_wait_out_its_outage(
    s3: S3Server, tmp_path: Path
) -> None:
    root = tmp_path / "rec"
    with SimulatorProcess(cameras=2, gop_seconds=0.5) as sim:
        port = free_port()
        cfg = tmp_path / "nvr.yaml"
        cams = "".join(f"  - id: {n}\n    url: {sim.url(n)}\n" for n in sim.camera_names)
        cfg.write_text(
            f"storage: {{path: {root}, segment_seconds: 2, remote: {s3.config_yaml('site-a/')}}}\n"
            f"api: {{port: {port}}}\ncameras:\n{cams}"
        )
        rec = Recorder(cfg, port, tmp_path / "nvr.log")
        rec.start()
        try:
            catalog = Catalog(root)

            def uploaded() -> list[Any]:
                return [r for r in catalog.segments() if r.object_key is not None]

            wait_until(lambda: len(uploaded()) >= 4, 30, "four segments uploaded")
            rows = uploaded()
            objects = _objects(s3)
            for r in rows:
                assert r.object_key == f"site-a/{r.path}"
                assert objects[r.object_key] == r.size_bytes
                assert not (root / r.path).exists()  # removed once verified
            assert rec.health()["remote"]["state"] == "ok"

            # The API serves an uploaded segment from the bucket: whole, and by ranges.
            row = rows[0]
            whole = rec.http.get(f"/api/recordings/{row.id}/file")
            assert whole.status_code == 200 and len(whole.content) == row.size_bytes
            got = tmp_path / "got.mkv"
            got.write_bytes(whole.content)
            assert _frames(got) == row.frames > 0
            part = rec.http.get(f"/api/recordings/{row.id}/file", headers={"Range": "bytes=4-99"})
            assert part.status_code == 206
            assert part.headers["content-range"] == f"bytes 4-99/{row.size_bytes}"
            assert part.content == whole.content[4:100]
            bad = rec.http.get(
                f"/api/recordings/{row.id}/file", headers={"Range": f"bytes={10**9}-"}
            )
            assert bad.status_code == 416

            # An export of uploaded footage reads it from the bucket.
            a, b = _two(rows)
            job = rec.http.post(
                "/api/exports",
                json={"cameras": [a.camera], "start": _iso(a.start_utc + 0.5),
                      "end": _iso(b.start_utc + 1.0)},
            ).json()  # fmt: skip
            wait_until(
                lambda: rec.http.get(f"/api/exports/{job['id']}").json()["state"]
                in ("done", "failed"),
                30,
                "the export",
            )
            done = rec.http.get(f"/api/exports/{job['id']}").json()
            assert done["state"] == "done", done
            mp4 = tmp_path / "export.mp4"
            mp4.write_bytes(rec.http.get(done["files"][0]["url"]).content)
            assert _frames(mp4) > 15

            # The bucket goes away: recording goes on, segments wait on the disk.
            down = time.time()
            s3.stop()
            wait_until(
                lambda: rec.health()["remote"]["state"] == "unreachable", 20, "outage noticed"
            )
            wait_until(
                lambda: rec.health()["remote"]["waiting_segments"] >= 4, 20, "segments waiting"
            )
            health = rec.health()
            assert health["status"] == "degraded"
            assert health["remote"]["waiting_bytes"] > 0
            remaining = OUTAGE_S - (time.time() - down)
            if remaining > 0:
                time.sleep(remaining)  # the outage's length is the fault itself
            s3.start()
            wait_until(
                lambda: rec.health()["remote"]["waiting_segments"] == 0, 40, "the spool drained"
            )
            assert rec.health()["remote"]["state"] == "ok"
            rec.stop()
            # A restart keeps every uploaded row (their files are gone on purpose) and
            # uploads what the stop left waiting.
            uploaded_before = {r.path for r in uploaded()}
            rec.start()
            wait_until(
                lambda: rec.health()["remote"]["waiting_segments"] == 0
                and rec.health()["remote"]["state"] == "ok",
                30,
                "what waited uploaded after the restart",
            )
            assert uploaded_before <= {r.path for r in uploaded()}
        finally:
            rec.stop()

    # Nothing lost: every final segment is an object of its size, and no file is left
    # behind (a stop does not wait for uploads: what waits goes at the next start).
    rows = [r for r in catalog.segments() if r.status.value != "recording"]
    s3_objects = _objects(s3)
    local = {p.relative_to(root).as_posix() for p in root.glob("cam*/*/*.mkv")}
    for r in rows:
        if r.object_key is None:
            assert r.path in local  # waits for the next start
        else:
            assert s3_objects[r.object_key] == r.size_bytes
            assert r.path not in local
    catalog.close()


def _two(rows: list[Any]) -> tuple[Any, Any]:
    by_camera = [r for r in rows if r.camera == rows[0].camera]
    return by_camera[0], by_camera[1]
