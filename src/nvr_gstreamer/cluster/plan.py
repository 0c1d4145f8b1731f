"""The decisions of a recorder node, without I/O: how many cameras to claim, and when to stop
recording because its leases can no longer be vouched for.

The database is the arbiter (its clock, its row locks); a node only decides what to ask of it
and what to do when it cannot ask. See :mod:`.node` for the protocol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

__all__ = ["DbTrouble", "LeaseWatch", "claim_quota", "classify_trouble"]


def claim_quota(owned: int, capacity: int, cameras: int, live_nodes: int) -> int:
    """How many more cameras to claim now: up to a fair share of the ``cameras`` this node
    may record among the ``live_nodes`` that may record them (itself included), never beyond
    its ``capacity``."""
    share = math.ceil(cameras / max(1, live_nodes))
    return max(0, min(capacity, share) - owned)


class DbTrouble(Enum):
    DOWN = "down"  # the database's host answers, its server does not: nobody can claim
    UNREACHABLE = "unreachable"  # no answer at all: this node may be the one cut off


def classify_trouble(message: str) -> DbTrouble:
    """A refused connection, or a server that says it is shutting down or starting, is a
    database that is down for every node alike; anything else may be this node's own
    network."""
    text = message.lower()
    down = (
        "connection refused",
        "the database system is shutting down",
        "the database system is starting up",
        "terminating connection due to administrator command",
        "server closed the connection unexpectedly",
    )
    return DbTrouble.DOWN if any(d in text for d in down) else DbTrouble.UNREACHABLE


@dataclass
class LeaseWatch:
    """When a node that cannot renew its leases must stop recording.

    Leases last ``lease_s`` from the start of the last renewal that succeeded (measured on the
    node's monotonic clock, which runs no faster than the database's in any way that matters
    here). A node cut off from the database stops its cameras one ``margin_s`` before they
    could be claimed by another node. A database that is down for everyone (refused
    connections) lets no other node claim either; after it comes back, no node claims for a
    lease period (see :mod:`.node`), so the owners keep recording through it."""

    lease_s: float
    margin_s: float
    renewed_at: float | None = None  # monotonic start of the last renewal that succeeded

    def renewed(self, started_at: float) -> None:
        self.renewed_at = started_at

    def must_stop(self, now: float, trouble: DbTrouble) -> bool:
        if self.renewed_at is None or trouble is DbTrouble.DOWN:
            return False
        return now - self.renewed_at >= self.lease_s - self.margin_s
