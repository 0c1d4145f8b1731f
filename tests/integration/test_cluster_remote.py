"""Cluster mode with the segments in object storage: two ``nvr run`` nodes, a real
PostgreSQL and a real S3 server (SeaweedFS). A node that hung (SIGSTOP) and came back uploads
nothing of what it wrote after its cameras moved (no object, no row of the stale epoch); a
node killed (SIGKILL) uploads what it had not uploaded yet when it restarts; any node serves
any segment from the bucket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import wait_until
from nvr_gstreamer.testing.postgres import PostgresServer
from nvr_gstreamer.testing.recorder import Recorder, free_port
from nvr_gstreamer.testing.s3 import S3Server

pytestmark = pytest.mark.integration

LEASE_S = 4.0


def _query(url: str, sql: str, *args: object) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as db:
        return list(db.execute(sql, args).fetchall())


def _objects(s3: S3Server) -> dict[str, int]:
    client: Any = s3.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


@pytest.fixture
def servers() -> Iterator[tuple[str, S3Server]]:
    pg = PostgresServer()
    pg.start()
    s3 = S3Server()
    s3.start()
    try:
        yield pg.fresh_url(), s3
    finally:
        s3.close()
        pg.close()


def test_a_hung_node_uploads_nothing_stale_and_a_killed_one_uploads_its_tail_on_restart(
    servers: tuple[str, S3Server], tmp_path: Path
) -> None:
    url, s3 = servers
    with SimulatorProcess(cameras=4, gop_seconds=0.5, fps=10) as sim:
        cams = "".join(f"  - id: {n}\n    url: {sim.url(n)}\n" for n in sim.camera_names)
        nodes: dict[str, Recorder] = {}
        for node in ("n1", "n2"):
            port = free_port()
            cfg = tmp_path / f"{node}.yaml"
            cfg.write_text(
                f"storage: {{path: {tmp_path / node}, segment_seconds: 2,"
                f" remote: {s3.config_yaml()}}}\n"
                f"catalog: {{url: '{url}'}}\n"
                f"cluster: {{node_id: {node}, capacity: 4, lease_seconds: {LEASE_S}}}\n"
                f"reconnect: {{initial_delay_seconds: 0.5, max_delay_seconds: 1}}\n"
                f"api: {{port: {port}}}\ncameras:\n{cams}"
            )
            nodes[node] = Recorder(cfg, port, tmp_path / f"{node}.log")
        for rec in nodes.values():
            rec.launch()
        try:
            for rec in nodes.values():
                rec.wait_up()

            def owners() -> dict[str, str]:
                return {
                    r["camera"]: r["owner"]
                    for r in _query(
                        url,
                        "SELECT camera, owner FROM camera_leases WHERE owner IS NOT NULL"
                        " AND expires_utc > EXTRACT(EPOCH FROM now())",
                    )
                }

            wait_until(lambda: len(owners()) == 4, 30, "every camera claimed")
            wait_until(
                lambda: len(_query(url, "SELECT id FROM segments WHERE object_key IS NOT NULL"))
                >= 8,
                30,
                "segments uploaded",
            )
            # n1 hangs; its cameras move to n2; it comes back.
            hung = nodes["n1"]
            moved = [c for c, o in owners().items() if o == "n1"]
            assert moved
            epochs = {
                r["camera"]: r["epoch"]
                for r in _query(url, "SELECT camera, epoch FROM camera_leases WHERE owner='n1'")
            }
            hung.sigstop()
            try:
                wait_until(lambda: all(owners().get(c) == "n2" for c in moved), 30, "cameras moved")
                taken = time.time()
            finally:
                hung.sigcont()
            wait_until(lambda: not hung.health()["cluster"]["cameras"], 20, "n1 stopped them")
            wait_until(lambda: hung.health()["remote"]["waiting_segments"] == 0, 30, "n1's uploads")
            # Nothing of n1's stale epochs after the take-over: no row, and no object.
            stale = _query(
                url,
                "SELECT path, object_key FROM segments WHERE node='n1' AND start_utc > %s",
                taken,
            )
            assert stale == []
            # Every object of those epochs is one a row points at (recorded before the
            # take-over); nothing n1 wrote afterwards reached the bucket.
            stale_prefixes = tuple(f"e{e}/n1/{c}/" for c, e in epochs.items())
            pointed = {
                r["object_key"]
                for r in _query(url, "SELECT object_key FROM segments WHERE node='n1'")
            }
            orphans = [k for k in _objects(s3) if k.startswith(stale_prefixes)]
            assert set(orphans) <= pointed, set(orphans) - pointed
            # Any node serves any segment from the bucket: n1 serves one of n2's.
            row = _query(
                url,
                "SELECT id, size_bytes FROM segments WHERE node='n2' AND object_key IS NOT NULL"
                " ORDER BY id LIMIT 1",
            )[0]
            got = hung.http.get(f"/api/recordings/{row['id']}/file")
            assert got.status_code == 200 and len(got.content) == row["size_bytes"]

            # n2 (now holding every camera) is killed: what it had not uploaded waits on its
            # disk; restarted, it uploads it (its cameras are n1's by then).
            killer = nodes["n2"]
            killer.kill()
            wait_until(lambda: set(owners().values()) == {"n1"}, 30, "cameras back on n1")
            waiting = [
                r["path"]
                for r in _query(
                    url,
                    "SELECT path FROM segments WHERE node='n2' AND object_key IS NULL"
                    " AND status <> 'recording'",
                )
            ]
            killer.start()
            wait_until(lambda: killer.health()["remote"]["waiting_segments"] == 0, 30, "n2's tail")
            done = {
                r["path"]: r["object_key"]
                for r in _query(url, "SELECT path, object_key FROM segments WHERE node='n2'")
            }
            assert all(done[p] is not None for p in waiting), waiting
            keys = _objects(s3)
            assert all(done[p] in keys for p in waiting)
        finally:
            for rec in nodes.values():
                if rec.proc is not None and rec.proc.poll() is None:
                    rec.sigcont()
                rec.stop()
