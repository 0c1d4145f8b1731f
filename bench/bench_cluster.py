"""Cluster mode, measured: the catalog's queries on PostgreSQL against SQLite, how long a lost
node's cameras go unrecorded, and what outages of the database and of the bucket cost.

1. Catalog queries (the default). --cameras cameras (1,000) x one local day (yesterday) of 60 s
   segments, ~1,440 a camera less the outages' minutes (3 a camera a day, 1-20 min, with their
   reason), written by `fill_catalog` into an SQLite catalog (WAL, synchronous=FULL) and, the
   same rows, into a throwaway PostgreSQL server that fsyncs (`PostgresServer(durable=True)`,
   its default settings otherwise; then `VACUUM ANALYZE`, as autovacuum would soon do). Timed
   from this process through `Catalog` (one kept-open connection each), the backends taking
   turns, --repeats times, a different camera each time:
   (a) `Catalog.timeline` of one camera for the day;
   (b) `Catalog.segments` of one camera over the week that ends with the day;
   (c) `Catalog.footage_timelines` of 16 cameras for the day, in one read (what the API
       does), and (c1) `Catalog.footage_timeline` of each, one after another (as before).
   Median and p90 of each, and PostgreSQL / SQLite of both. Checked once: both backends give
   the same answers (a mismatch is a PROBLEM, exit status 1).

2. Failover (--failover). Three `nvr run` nodes (capacity 12, lease_seconds 8, the default;
   segment_seconds 2; the default reconnect delays) share one durable PostgreSQL catalog and
   one simulator of 3 x --cameras-per-node cameras (8: 24 cameras; 320x180, 10 fps, a key
   frame a second). Each of --trials trials: once every camera has an owner that has closed a
   file of it under its current lease, SIGKILL the node with the most cameras; for each of its
   cameras, the seconds from the kill to the first frame (`start_utc`) of the camera's first
   file on another node; then restart the killed node (it rejoins with no camera: it gets some
   only when another node is lost). Per trial the worst camera, and over every camera of every
   trial p50/p90/p99/max. Target: p99 <= 15 s. Checked at the end, all nodes stopped: no two
   nodes' files of one camera overlap in time (from the first settled state on). A camera not
   moved within 60 s, or an overlap, is a PROBLEM.

3. Outages (--outages). The same three nodes, with the segments in object storage (a real
   S3 server, SeaweedFS): PostgreSQL stopped for --pg-outage s (30), then the bucket for
   --s3-outage s (60). Shown: how many catalog writes waited and how soon they caught up; that
   no camera moved or was re-claimed (owner and epoch unchanged); how far the spool grew and
   how soon it drained; that every segment since is an object of its size (those still waiting
   when the nodes stop go at their next start) and that the timeline over each outage has no
   gap. Anything else is a PROBLEM.

    .venv/bin/python bench/bench_cluster.py [--cameras 1000] [--repeats 30]
    .venv/bin/python bench/bench_cluster.py --failover [--trials 10] [--cameras-per-node 8]
    .venv/bin/python bench/bench_cluster.py --outages [--pg-outage 30] [--s3-outage 60]
    .venv/bin/python bench/bench_cluster.py --all     # all three
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _common import median, temp_dir, verdict
from psycopg.rows import dict_row

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.storage.catalog import CATALOG_NAME, Catalog
from nvr_gstreamer.storage.timeline import day_bounds
from nvr_gstreamer.testing.catalog_fill import fill_catalog
from nvr_gstreamer.testing.engine import wait_until
from nvr_gstreamer.testing.postgres import PostgresServer
from nvr_gstreamer.testing.recorder import Recorder, free_port
from nvr_gstreamer.testing.s3 import S3Server

FAILOVER_TARGET_S = 15.0  # p99 of the seconds a lost node's camera goes unrecorded
MOVE_TIMEOUT_S = 60.0  # a camera not recorded elsewhere by then is a PROBLEM
NODES = ("n1", "n2", "n3")
CAPACITY = 12
LEASE_S = 8.0
SEGMENT_S = 2
MANY = 16  # cameras of query (c)


def p(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of the values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


# ---- 1. catalog queries ------------------------------------------------------------------


@dataclass
class Query:
    label: str
    run: Callable[[Catalog, int], Any]  # (catalog, repetition) -> answer
    wall_ms: dict[str, list[float]] = field(default_factory=lambda: {"sqlite": [], "pg": []})


def answer_key(answer: Any) -> Any:
    """What must be equal on both backends (not the row ids)."""
    if isinstance(answer, list):
        if answer and hasattr(answer[0], "segment_count"):  # footage timelines
            return [(t.camera, t.segment_count, t.footage, t.gaps) for t in answer]
        return [(s.camera, s.path, s.start_utc, s.end_utc, s.status) for s in answer]
    return (  # a timeline
        [(s.path, s.start_utc, s.end_utc) for s in answer.segments],
        answer.footage,
        answer.gaps,
    )


def queries(args: argparse.Namespace) -> int:
    cameras = [f"cam{i:04d}" for i in range(1, args.cameras + 1)]
    day = date.today() - timedelta(days=1)
    start, end = day_bounds(day)
    week_start = end - 7 * 86_400
    now = time.time()
    many = [cameras[i * len(cameras) // MANY] for i in range(min(MANY, len(cameras)))]

    def camera(rep: int) -> str:
        return cameras[(rep * 7919 + 13) % len(cameras)]

    qs = [
        Query("(a) timeline, 1 camera x 1 day",
              lambda c, rep: c.timeline(camera(rep), start, end, now)),
        Query("(b) segments, 1 camera x 1 week",
              lambda c, rep: c.segments(camera(rep), week_start, end)),
        Query(f"(c) footage, {len(many)} cameras x 1 day, one read",
              lambda c, rep: c.footage_timelines(many, start, end, now)),
        Query("(c1) the same, one camera at a time",
              lambda c, rep: [c.footage_timeline(cam, start, end, now) for cam in many]),
    ]  # fmt: skip
    pg = PostgresServer(durable=True)
    with temp_dir("cluster") as folder:
        try:
            pg.start()
            url = pg.fresh_url()
            root = folder / "rec"
            print(f"catalog: {len(cameras)} cameras x {day.isoformat()} (60 s segments)")
            t0 = time.perf_counter()
            rows = fill_catalog(root, cameras, start, end, still_recording=False)
            sqlite_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            fill_catalog(root, cameras, start, end, still_recording=False, url=url)
            pg_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                size = conn.execute("SELECT pg_total_relation_size('segments')").fetchone()
            vacuum_s = time.perf_counter() - t0
            sqlite_mb = (root / CATALOG_NAME).stat().st_size / 1e6
            pg_mb = (size[0] if size else 0) / 1e6
            print(f"fill: {rows:,} segment rows; SQLite {sqlite_s:.1f} s ({sqlite_mb:.0f} MB),"
                  f" PostgreSQL {pg_s:.1f} s + VACUUM ANALYZE {vacuum_s:.1f} s"
                  f" ({pg_mb:.0f} MB, segments and its indexes)")  # fmt: skip
            return measure(qs, Catalog(root), Catalog(root, url), args.repeats)
        finally:
            pg.close()


def measure(qs: list[Query], sqlite: Catalog, pg: Catalog, repeats: int) -> int:
    load_before = load()
    problems = []
    try:
        for q in qs:  # warm-up, and the check that both backends say the same
            if answer_key(q.run(sqlite, 0)) != answer_key(q.run(pg, 0)):
                problems.append(q.label)
        for rep in range(repeats):
            order = [("sqlite", sqlite), ("pg", pg)]
            if rep % 2:
                order.reverse()  # neither backend always second, after the other warmed up
            for q in qs:
                for name, catalog in order:
                    t0 = time.perf_counter()
                    q.run(catalog, rep)
                    q.wall_ms[name].append((time.perf_counter() - t0) * 1000)
    finally:
        sqlite.close()
        pg.close()
    print(f"load average: {load_before} before, {load()} after, {os.cpu_count()} CPUs")
    print()
    head = f"{'':<40}{'SQLite ms':>20}{'PostgreSQL ms':>20}{'PG / SQLite':>14}"
    print(head)
    print(f"{'':<40}{'p50':>10}{'p90':>10}{'p50':>10}{'p90':>10}{'p50':>7}{'p90':>7}")
    for q in qs:
        s, g = q.wall_ms["sqlite"], q.wall_ms["pg"]
        s50, s90, g50, g90 = statistics.median(s), p(s, 0.9), statistics.median(g), p(g, 0.9)
        print(f"{q.label:<40}{s50:>10.2f}{s90:>10.2f}{g50:>10.2f}{g90:>10.2f}"
              f"{g50 / s50:>7.2f}{g90 / s90:>7.2f}")  # fmt: skip
    print(f"  ({repeats} runs each, the backends taking turns; a different camera each run)")
    if problems:
        print("PROBLEM: the backends answer differently: " + "; ".join(problems))
        return 1
    print("check: both backends give the same timelines, segments and footage timelines")
    return 0


# ---- 2. failover ---------------------------------------------------------------------------


@dataclass
class Trial:
    victim: str
    took_s: dict[str, float]  # camera -> kill to the first frame of its file on another node
    claimed_s: dict[str, float]  # camera -> kill to its new owner seen (polled)
    missing: list[str]  # not recorded elsewhere within MOVE_TIMEOUT_S


class Cluster:
    def __init__(self, url: str, cameras: Sequence[str], nodes: dict[str, Recorder]) -> None:
        self.cameras = list(cameras)
        self.nodes = nodes
        self._url = url
        self._db = psycopg.connect(url, autocommit=True, row_factory=dict_row)

    def close(self) -> None:
        self._db.close()

    def reopen(self) -> None:
        self._db = psycopg.connect(self._url, autocommit=True, row_factory=dict_row)

    def query(self, sql: str, *args: object) -> list[dict[str, Any]]:
        return list(self._db.execute(sql, args).fetchall())

    def owners(self) -> dict[str, str]:
        rows = self.query(
            "SELECT camera, owner FROM camera_leases WHERE owner IS NOT NULL"
            " AND expires_utc > EXTRACT(EPOCH FROM now())"
        )
        return {r["camera"]: r["owner"] for r in rows}

    def settled(self) -> bool:
        """Every camera owned, and its owner has closed a file of it under its lease."""
        rows = self.query(
            "SELECT COUNT(*) AS n FROM camera_leases l WHERE l.owner IS NOT NULL"
            " AND l.expires_utc > EXTRACT(EPOCH FROM now()) AND EXISTS (SELECT 1 FROM"
            " segments s WHERE s.camera = l.camera AND s.node = l.owner AND s.epoch = l.epoch"
            " AND s.status = 'closed')"
        )
        return int(rows[0]["n"]) == len(self.cameras)

    def first_files(self, cameras: list[str], not_node: str, after: float) -> dict[str, float]:
        """When the first file of each camera on a node other than ``not_node`` begun after
        ``after`` starts (cameras with none yet left out)."""
        rows = self.query(
            "SELECT camera, MIN(start_utc) AS t FROM segments WHERE camera = ANY(%s)"
            " AND node <> %s AND start_utc > %s GROUP BY camera",
            cameras, not_node, after,
        )  # fmt: skip
        return {r["camera"]: float(r["t"]) for r in rows}

    def files(self, since: float) -> list[dict[str, Any]]:
        """Every node's files that end after ``since`` (an open one reaches now), by camera
        and start."""
        return self.query(
            "SELECT camera, node, start_utc, COALESCE(end_utc, EXTRACT(EPOCH FROM now())) AS e"
            " FROM segments WHERE end_utc IS NULL OR end_utc > %s ORDER BY camera, start_utc",
            since,
        )


def overlaps(files: list[dict[str, Any]]) -> list[str]:
    """Files of one camera on two nodes overlapping in time (``files`` by camera and start)."""
    found = []
    camera = None
    reach: dict[str, float] = {}  # node -> the latest end of its files of ``camera`` so far
    for f in files:
        if f["camera"] != camera:
            camera, reach = f["camera"], {}
        for node, e in reach.items():
            if node != f["node"] and e > f["start_utc"]:
                found.append(f"{camera}: {node} until {e:.2f}, {f['node']} from"
                             f" {f['start_utc']:.2f} ({e - f['start_utc']:.2f} s)")  # fmt: skip
        reach[f["node"]] = max(reach.get(f["node"], 0.0), float(f["e"]))
    return found


def node_config(
    folder: Path, node: str, url: str, port: int, cams: dict[str, str], remote: str = ""
) -> Path:
    cfg = folder / f"{node}.yaml"
    cameras = "".join(f"  - id: {cid}\n    url: {u}\n" for cid, u in cams.items())
    remote = f", remote: {remote}" if remote else ""
    cfg.write_text(
        f"storage: {{path: {folder / node}, segment_seconds: {SEGMENT_S}{remote}}}\n"
        f"catalog: {{url: '{url}'}}\n"
        f"cluster: {{node_id: {node}, capacity: {CAPACITY}, lease_seconds: {LEASE_S}}}\n"
        f"api: {{host: 127.0.0.1, port: {port}}}\n"
        f"cameras:\n{cameras}"
    )
    return cfg


def failover(args: argparse.Namespace) -> int:
    pg = PostgresServer(durable=True)
    with temp_dir("cluster") as folder:
        try:
            pg.start()
            url = pg.fresh_url()
            with SimulatorProcess(
                cameras=len(NODES) * args.cameras_per_node, size=(320, 180), fps=10,
                gop_seconds=1.0,
            ) as sim:  # fmt: skip
                urls = {name: sim.url(name) for name in sim.camera_names}
                nodes = {}
                for node in NODES:
                    port = free_port()
                    cfg = node_config(folder, node, url, port, urls)
                    nodes[node] = Recorder(cfg, port, folder / f"{node}.log")
                print(
                    f"cluster: {len(NODES)} nodes (capacity {CAPACITY}, lease {LEASE_S:g} s,"
                    f" {SEGMENT_S} s files), {len(urls)} cameras (320x180, 10 fps, GOP 1 s)"
                )
                c = Cluster(url, list(urls), nodes)
                try:
                    return run_trials(c, args.trials)
                finally:
                    c.close()
                    for rec in nodes.values():
                        rec.stop()
        finally:
            pg.close()


def run_trials(c: Cluster, trials: int) -> int:
    for rec in c.nodes.values():
        rec.launch()  # together: they share the cameras out when all are counted
    for rec in c.nodes.values():
        rec.wait_up()
    settle_s = wait_until(c.settled, 60, "every camera owned and recording")
    since = time.time()
    print(f"settled {settle_s:.1f} s after the nodes were up; load average {load()}")
    results: list[Trial] = []
    for _ in range(trials):
        held: dict[str, list[str]] = {n: [] for n in NODES}
        for cam, owner in c.owners().items():
            held[owner].append(cam)
        victim = max(sorted(held), key=lambda n: len(held[n]))
        moved = sorted(held[victim])
        killed = time.time()
        c.nodes[victim].kill()
        trial = Trial(victim, {}, {}, [])
        results.append(trial)
        deadline = time.monotonic() + MOVE_TIMEOUT_S
        while len(trial.took_s) < len(moved) and time.monotonic() < deadline:
            seen = time.time() - killed
            for cam, owner in c.owners().items():
                if cam in moved and owner != victim and cam not in trial.claimed_s:
                    trial.claimed_s[cam] = seen
            for cam, t in c.first_files(moved, victim, killed).items():
                trial.took_s[cam] = t - killed
            time.sleep(0.1)
        trial.missing = [cam for cam in moved if cam not in trial.took_s]
        took = list(trial.took_s.values())
        print(f"trial {len(results)}: killed {victim} ({len(moved)} cameras), worst"
              f" {max(took, default=float('nan')):.1f} s, load average {load()}")  # fmt: skip
        if trial.missing:
            print(f"PROBLEM: not recorded elsewhere within {MOVE_TIMEOUT_S:.0f} s: "
                  + ", ".join(trial.missing))  # fmt: skip
            break
        c.nodes[victim].start()  # it rejoins, with no camera
        wait_until(c.settled, 60, "every camera owned and recording again")
    for rec in c.nodes.values():
        rec.stop()  # every file closed before the check
    return report(results, c.files(since))


def report(results: list[Trial], files: list[dict[str, Any]]) -> int:
    print()
    print(f"{'trial':<7}{'killed':<8}{'cameras':>8}{'claimed p50 s':>15}{'max s':>8}"
          f"{'recorded p50 s':>16}{'max s':>8}")  # fmt: skip
    for i, t in enumerate(results, 1):
        claimed, took = list(t.claimed_s.values()), list(t.took_s.values())
        if not took:
            print(f"{i:<7}{t.victim:<8}{len(t.missing):>8}  (none recorded elsewhere)")
            continue
        print(f"{i:<7}{t.victim:<8}{len(took) + len(t.missing):>8}"
              f"{median(claimed):>15.1f}{max(claimed, default=float('nan')):>8.1f}"
              f"{statistics.median(took):>16.1f}{max(took):>8.1f}")  # fmt: skip
    print(
        "  (claimed: the new owner seen in camera_leases, polled every 0.1 s; recorded: the"
        " first frame of the camera's first file on another node; both from the kill)"
    )
    took = [s for t in results for s in t.took_s.values()]
    missing = sum(len(t.missing) for t in results)
    print()
    status = 0
    if took:
        print(
            f"over {len(took)} cameras of {len(results)} trials: p50 {median(took):.1f} s,"
            f" p90 {p(took, 0.9):.1f} s, p99 {p(took, 0.99):.1f} s, max {max(took):.1f} s"
        )
        met = p(took, 0.99) <= FAILOVER_TARGET_S and not missing
        print(f"target: p99 <= {FAILOVER_TARGET_S:.0f} s: {verdict(met)}")
        status = 0 if met else 1
    if missing or not took:
        print(f"PROBLEM: {missing} cameras not recorded elsewhere within {MOVE_TIMEOUT_S:.0f} s")
        status = 1
    found = overlaps(files)
    nodes = len({(f["camera"], f["node"]) for f in files})
    if found:
        print(f"PROBLEM: {len(found)} overlaps of two nodes' files of one camera:")
        for line in found[:20]:
            print("  " + line)
        status = 1
    else:
        print(
            f"check: no two nodes' files of one camera overlap in time ({len(files):,} files"
            f" since the cluster first settled, {nodes} camera-node pairs)"
        )
    return status


def outages(args: argparse.Namespace) -> int:
    """The catalog's database stopped for --pg-outage s, then the bucket for --s3-outage s,
    under a running cluster with segments in object storage: nothing may move or be lost."""
    pg = PostgresServer(durable=True)
    s3 = S3Server()
    with temp_dir("cluster-outages") as folder:
        try:
            pg.start()
            s3.start()
            url = pg.fresh_url()
            with SimulatorProcess(
                cameras=len(NODES) * args.cameras_per_node, size=(320, 180), fps=10,
                gop_seconds=1.0,
            ) as sim:  # fmt: skip
                urls = {name: sim.url(name) for name in sim.camera_names}
                nodes = {}
                for node in NODES:
                    port = free_port()
                    cfg = node_config(folder, node, url, port, urls, s3.config_yaml())
                    nodes[node] = Recorder(cfg, port, folder / f"{node}.log")
                print(
                    f"cluster with object storage: {len(NODES)} nodes, {len(urls)} cameras;"
                    f" PostgreSQL down {args.pg_outage:g} s, then S3 down {args.s3_outage:g} s"
                )
                c = Cluster(url, list(urls), nodes)
                reader = Catalog(folder / "reader", url)
                try:
                    return run_outages(c, pg, s3, reader, args)
                finally:
                    reader.close()
                    c.close()
                    for rec in nodes.values():
                        rec.stop()
        finally:
            s3.close()
            pg.close()


def run_outages(
    c: Cluster, pg: PostgresServer, s3: S3Server, reader: Catalog, args: argparse.Namespace
) -> int:
    for rec in c.nodes.values():
        rec.launch()
    for rec in c.nodes.values():
        rec.wait_up()
    wait_until(c.settled, 60, "every camera owned and recording")
    status = 0

    def health(key: str) -> list[dict[str, Any]]:
        return [rec.health()[key] for rec in c.nodes.values()]

    # The database.
    before = {r["camera"]: (r["owner"], r["epoch"]) for r in c.query(
        "SELECT camera, owner, epoch FROM camera_leases")}  # fmt: skip
    c.close()
    down = time.time()
    pg.stop()
    most_pending = 0
    while time.time() - down < args.pg_outage:
        most_pending = max(most_pending, sum(h["pending_writes"] for h in health("catalog")))
        time.sleep(1.0)
    pg.start()
    back = time.time()
    c.reopen()
    caught = wait_until(
        lambda: all(h["pending_writes"] == 0 and h["state"] == "ok" for h in health("catalog")),
        120,
        "every node's catalog writes caught up",
    )
    after = {r["camera"]: (r["owner"], r["epoch"]) for r in c.query(
        "SELECT camera, owner, epoch FROM camera_leases")}  # fmt: skip
    moved = [cam for cam in before if after.get(cam) != before[cam]]
    gaps = _gaps(reader, c.cameras, down, back)
    print(f"PostgreSQL down {back - down:.1f} s: up to {most_pending} catalog writes waited;"
          f" caught up {caught:.1f} s after it was back")  # fmt: skip
    print(f"  cameras moved or re-claimed: {len(moved)} of {len(before)};"
          f" gaps in the timeline over the outage: {len(gaps)}")  # fmt: skip
    if moved or gaps:
        print("PROBLEM: " + "; ".join([*(f"{m} moved" for m in moved), *gaps][:10]))
        status = 1

    # The bucket.
    down = time.time()
    s3.stop()
    most_waiting = most_bytes = 0
    while time.time() - down < args.s3_outage:
        remote = health("remote")
        most_waiting = max(most_waiting, sum(h["waiting_segments"] for h in remote))
        most_bytes = max(most_bytes, sum(h["waiting_bytes"] for h in remote))
        time.sleep(1.0)
    s3.start()
    back = time.time()
    drained = wait_until(
        lambda: all(h["waiting_segments"] == 0 and h["state"] == "ok" for h in health("remote")),
        180,
        "every node's spool drained",
    )
    for rec in c.nodes.values():
        rec.stop()  # every file closed and catalogued before the check
    objects = _object_sizes(s3)
    rows = c.query(
        "SELECT path, object_key, size_bytes FROM segments WHERE status <> 'recording'"
        " AND end_utc > %s", down - 5,
    )  # fmt: skip
    not_up = [r["path"] for r in rows if r["object_key"] is None]
    wrong = [r["path"] for r in rows if r["object_key"] and objects.get(r["object_key"]) !=
             r["size_bytes"]]  # fmt: skip
    gaps = _gaps(reader, c.cameras, down, back)
    print(
        f"S3 down {back - down:.1f} s: the spool grew to {most_waiting} segments"
        f" ({most_bytes / 1e6:.1f} MB) and drained {drained:.1f} s after it was back"
    )
    print(f"  segments since: {len(rows)}; not uploaded at the next stop: {len(not_up)} (they"
          f" wait for the next start); objects missing or of the wrong size: {len(wrong)};"
          f" gaps over the outage: {len(gaps)}")  # fmt: skip
    if wrong or gaps:
        print("PROBLEM: " + "; ".join([*wrong, *gaps][:10]))
        status = 1
    print(f"verdict: nothing moved, nothing lost: {verdict(status == 0)}")
    return status


def _gaps(reader: Catalog, cameras: Sequence[str], start: float, end: float) -> list[str]:
    now = time.time()
    found = []
    reader.reset()  # (its connection may be from before the database's outage)
    for cam in cameras:
        for g in reader.timeline(cam, start, end, now).gaps:
            found.append(f"{cam}: {g.reason.value} {g.end_utc - g.start_utc:.1f} s")
    return found


def _object_sizes(s3: S3Server) -> dict[str, int]:
    client: Any = s3.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", type=int, default=1000, help="catalog queries: cameras")
    parser.add_argument("--repeats", type=int, default=30, help="catalog queries: runs each")
    parser.add_argument("--failover", action="store_true", help="the failover part only")
    parser.add_argument("--all", action="store_true", help="both parts")
    parser.add_argument("--trials", type=int, default=10, help="failover: nodes killed")
    parser.add_argument("--cameras-per-node", type=int, default=8, help="failover: cameras / 3")
    parser.add_argument("--outages", action="store_true", help="the outages part only")
    parser.add_argument("--pg-outage", type=float, default=30.0, help="outages: seconds")
    parser.add_argument("--s3-outage", type=float, default=60.0, help="outages: seconds")
    parser.add_argument("--long", action="store_true", help="(bench/run_all) 30 trials")
    args = parser.parse_args()
    if args.long:
        args.trials = max(args.trials, 30)
    print("$ .venv/bin/python bench/bench_cluster.py " + " ".join(sys.argv[1:]))
    status = 0
    if args.all or not (args.failover or args.outages):
        status |= queries(args)
    if args.all or args.failover:
        if args.all:
            print()
        status |= failover(args)
    if args.all or args.outages:
        if args.all:
            print()
        status |= outages(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
