"""What the cluster looks like, from the shared catalog: its nodes (alive or not, by the
database's clock) and which node records which camera. For ``/api/cluster`` and
``nvr cluster status``."""

from __future__ import annotations

from dataclasses import dataclass

from nvr_gstreamer.storage.database import Db

__all__ = ["ClusterStatus", "LeaseInfo", "NodeInfo", "cluster_status", "format_status"]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    site: str | None
    capacity: int
    api_url: str | None
    alive: bool
    heartbeat_age_s: float
    draining: bool
    cameras: int


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    camera: str
    site: str | None
    owner: str | None  # None: free (nobody records it)
    epoch: int
    expires_in_s: float | None  # negative: ran out (its node is lost or was)


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    nodes: tuple[NodeInfo, ...]
    leases: tuple[LeaseInfo, ...]


def cluster_status(db: Db, lease_s: float) -> ClusterStatus:
    """A node is alive when it beat within ``lease_s``."""
    now = db.one("SELECT EXTRACT(EPOCH FROM now()) AS t")
    t = float(now["t"]) if now else 0.0
    leases = tuple(
        LeaseInfo(
            r["camera"],
            r["site"],
            r["owner"],
            int(r["epoch"]),
            None if r["expires_utc"] is None else round(float(r["expires_utc"]) - t, 1),
        )
        for r in db.execute("SELECT * FROM camera_leases ORDER BY camera")
    )
    owned: dict[str, int] = {}
    for lease in leases:
        if lease.owner is not None and (lease.expires_in_s or 0) > 0:
            owned[lease.owner] = owned.get(lease.owner, 0) + 1
    nodes = tuple(
        NodeInfo(
            r["node_id"],
            r["site"],
            int(r["capacity"]),
            r["api_url"],
            t - float(r["heartbeat_utc"]) < lease_s and not r["draining"],
            round(t - float(r["heartbeat_utc"]), 1),
            bool(r["draining"]),
            owned.get(r["node_id"], 0),
        )
        for r in db.execute("SELECT * FROM nodes ORDER BY node_id")
    )
    return ClusterStatus(nodes, leases)


def format_status(status: ClusterStatus) -> str:
    lines = ["nodes:"]
    for n in status.nodes:
        state = "draining" if n.draining else "alive" if n.alive else "lost"
        lines.append(
            f"  {n.node_id:<16} {state:<8} {n.cameras:>3}/{n.capacity:<3} cameras"
            f"  site {n.site or '-':<10} last beat {n.heartbeat_age_s:.1f} s ago"
            f"  {n.api_url or ''}"
        )
    lines.append("cameras:")
    for c in status.leases:
        if c.owner is None:
            held = "free"
        elif c.expires_in_s is not None and c.expires_in_s < 0:
            held = f"{c.owner} (lease ran out {-c.expires_in_s:.1f} s ago)"
        else:
            held = f"{c.owner} (lease {c.expires_in_s:.1f} s)"
        lines.append(f"  {c.camera:<16} epoch {c.epoch:<5} {held}  site {c.site or '-'}")
    return "\n".join(lines)
