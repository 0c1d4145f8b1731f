"""The cluster's protocol against a real PostgreSQL, with nodes in this process (no media):
rounds are run by hand, the node's own clock is a fake one, the leases run on the database's
clock (so a lease is the shortest allowed, 2 s)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nvr_gstreamer.cluster.node import Claim, ClusterNode, NodeSettings
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.storage.catalog import Catalog
from tests.conftest import CatalogUrls

pytestmark = pytest.mark.integration

LEASE_S = 2.0
CAMERAS = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("a4", "A"), ("b1", "B"), ("any", None)]


class Node:
    def __init__(self, url: str, node_id: str, capacity: int, site: str | None) -> None:
        self.clock = FakeClock()
        self.claims: list[Claim] = []
        self.lost: list[str] = []
        self.node = ClusterNode(
            url,
            NodeSettings(node_id, capacity, site, LEASE_S, None),
            CAMERAS,
            self.clock,
            self.claims.append,
            self.lost.append,
        )
        self.node.register()
        self.clock.advance(LEASE_S)  # past the wait for the others to register

    def held(self) -> set[str]:
        return set(self.node.held())


@pytest.fixture
def url(tmp_path: Path, catalog_urls: CatalogUrls) -> str:
    u = catalog_urls.new("postgresql")
    assert u is not None
    Catalog(tmp_path, u).close()  # the schema
    time.sleep(max(0.0, LEASE_S + 0.1 - _uptime(u)))  # claims wait for the server's first lease
    return u


def _uptime(url: str) -> float:
    import psycopg

    with psycopg.connect(url) as db:
        row = db.execute("SELECT EXTRACT(EPOCH FROM now() - pg_postmaster_start_time())")
        return float(row.fetchone()[0])  # type: ignore[index]


def test_sites_capacity_and_fair_shares_decide_who_records_what(url: str) -> None:
    n1, n2, n3 = Node(url, "n1", 2, "A"), Node(url, "n2", 5, "A"), Node(url, "n3", 5, "B")
    for _ in range(3):
        for n in (n1, n2, n3):
            n.node.tick()
    held = {n.node.settings.node_id: n.held() for n in (n1, n2, n3)}
    everything = [c for cams in held.values() for c in cams]
    assert sorted(everything) == sorted(c for c, _ in CAMERAS)  # all, each once
    assert len(held["n1"]) <= 2
    assert {"a1", "a2", "a3", "a4"} <= held["n1"] | held["n2"]  # site A's on site A's nodes
    assert "b1" in held["n3"]
    assert all(c.lost_node is None for n in (n1, n2, n3) for c in n.claims)  # first claims


def test_a_lost_node_s_cameras_are_taken_over_and_a_released_one_s_handed_over(
    url: str,
) -> None:
    n1, n2 = Node(url, "n1", 10, None), Node(url, "n2", 10, None)
    n1.node.tick()
    n2.node.tick()
    taken = n1.held()
    assert taken and n2.held() and not taken & n2.held()
    last_renewal = time.time()
    n1.node.tick()  # its last renewal; then it is lost (no more rounds)
    time.sleep(LEASE_S + 0.3)
    n2.node.tick()
    over = [c for c in n2.claims if c.camera in taken]
    assert {c.camera for c in over} == taken
    for c in over:
        assert c.lost_node == "n1" and c.lost_since_utc is not None
        assert abs(c.lost_since_utc - last_renewal) < 1.0  # the failover gap begins there
    # n1 comes back (it only hung): its round finds those cameras gone, and says so.
    n1.node.tick()
    assert set(n1.lost) == taken and not n1.held()
    # n2 hands everything over on purpose: n1 claims it at once, with no failover.
    n2.node.release()
    n1.claims.clear()
    n1.node.tick()
    assert n1.held() == {c for c, _ in CAMERAS}
    assert all(c.lost_node is None for c in n1.claims)


def test_a_node_whose_round_hangs_stops_its_cameras_before_the_lease_runs_out(
    url: str, catalog_urls: CatalogUrls
) -> None:
    """The database goes silent mid-round (SIGSTOP: no error, no answer): the node's
    watchdog stops every camera once the lease could be claimed elsewhere, margin included,
    while the round still hangs."""
    import psutil

    n = Node(url, "n1", 10, None)
    n.node.start()  # registers again: the wait before claiming starts over
    n.clock.advance(LEASE_S)
    server = catalog_urls.server
    assert server is not None
    postmaster = psutil.Process(server.pid())
    stopped: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 10
        while not n.held() and time.monotonic() < deadline:
            time.sleep(0.05)
        held = n.held()
        assert held
        stopped = [postmaster, *postmaster.children(recursive=True)]
        for p in stopped:
            p.suspend()
        # The next round hangs; the node's clock reaches the lease less its margin.
        time.sleep(4 * n.node.settings.tick_s)
        n.clock.advance(LEASE_S)
        deadline = time.monotonic() + 5
        while set(n.lost) != held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(n.lost) == held and not n.held()
    finally:
        for p in stopped:
            p.resume()
        n.node.stop()
