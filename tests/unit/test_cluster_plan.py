"""The pure decisions of a recorder node: its fair share of cameras, and when it must stop
recording because it can no longer renew its leases."""

from __future__ import annotations

import pytest

from nvr_gstreamer.cluster.plan import DbTrouble, LeaseWatch, claim_quota, classify_trouble


@pytest.mark.parametrize(
    ("owned", "capacity", "cameras", "live", "quota"),
    [
        (0, 12, 24, 3, 8),  # three nodes share 24 cameras: 8 each
        (8, 12, 24, 2, 4),  # one of them lost: the others take 4 more each
        (8, 12, 24, 3, 0),  # a fair share already
        (0, 5, 24, 3, 5),  # never beyond capacity
        (0, 12, 25, 3, 9),  # shares round up: no camera is left over
        (10, 12, 24, 3, 0),  # more than a share (taken over earlier): nothing more
        (0, 12, 0, 3, 0),  # no cameras
        (0, 12, 1, 3, 1),  # one camera: someone must take it
        (0, 12, 4, 0, 4),  # counted no live node (not even itself yet): as if alone
        (2, 12, 4, 1, 2),
    ],
)
def test_a_node_claims_its_fair_share_within_capacity(
    owned: int, capacity: int, cameras: int, live: int, quota: int
) -> None:
    assert claim_quota(owned, capacity, cameras, live) == quota


@pytest.mark.parametrize(
    ("message", "trouble"),
    [
        ('connection to server at "10.0.0.5", port 5432 failed: Connection refused', "down"),
        ("FATAL: the database system is shutting down", "down"),
        ("FATAL: the database system is starting up", "down"),
        ("terminating connection due to administrator command", "down"),
        ("server closed the connection unexpectedly", "down"),
        ('connection to server at "10.0.0.5", port 5432 failed: timeout expired', "unreachable"),
        ('could not translate host name "db" to address', "unreachable"),
        ("No route to host", "unreachable"),
    ],
)
def test_a_database_down_for_everyone_is_told_from_one_cut_off(message: str, trouble: str) -> None:
    assert classify_trouble(message) is DbTrouble(trouble)


def test_a_cut_off_node_stops_a_margin_before_its_leases_could_be_claimed() -> None:
    watch = LeaseWatch(lease_s=8.0, margin_s=2.0)
    assert not watch.must_stop(100.0, DbTrouble.UNREACHABLE)  # never renewed: holds nothing
    watch.renewed(100.0)
    assert not watch.must_stop(105.9, DbTrouble.UNREACHABLE)
    assert watch.must_stop(106.0, DbTrouble.UNREACHABLE)
    assert watch.must_stop(120.0, DbTrouble.UNREACHABLE)
    # A database that refuses everyone: nobody can claim, recording goes on.
    assert not watch.must_stop(120.0, DbTrouble.DOWN)
    watch.renewed(119.0)
    assert not watch.must_stop(120.0, DbTrouble.UNREACHABLE)
