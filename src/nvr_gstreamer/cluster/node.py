"""A recorder node of a cluster: nodes share one PostgreSQL catalog, and each camera is
recorded by the one node that holds its lease.

The protocol, every ``tick`` (an eighth of the lease) on a thread of its own, with a
connection of its own (never behind the catalog's writes):

* **heartbeat**: the node's row in ``nodes`` says it is alive (the database's clock);
* **renew**: ``UPDATE camera_leases SET expires_utc = now + lease WHERE owner = me``, for the
  cameras this process holds, checking their epochs. A camera no longer ours (another node
  claimed it while this one hung) is stopped at once;
* **claim**: free cameras, and cameras whose lease ran out, up to a fair share
  (:func:`.plan.claim_quota`), in one statement that locks the rows it takes and skips rows
  other nodes are taking (``FOR UPDATE SKIP LOCKED``) and bumps each camera's epoch. Never in
  the first lease period after the database (re)started: owners renew first.

Fencing: every catalog write for a camera carries the epoch its node claimed it under and is
checked against the camera's lease in the same transaction
(:class:`~nvr_gstreamer.storage.catalog.Writer`); a node that hung and came back can neither
add nor close rows of a camera that moved. A node that cannot reach the database stops its
cameras before their leases could run out (:class:`.plan.LeaseWatch`).

A camera taken over from a node that was lost (not released) gets a ``failover`` gap from
that node's last renewal; the lost node's open rows end there (its restart repairs them with
what the files really hold).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nvr_gstreamer.cluster.plan import DbTrouble, LeaseWatch, claim_quota, classify_trouble
from nvr_gstreamer.core.clock import Clock
from nvr_gstreamer.core.heartbeat import Heartbeats
from nvr_gstreamer.core.redact import redact
from nvr_gstreamer.storage.database import DB_ERRORS, Connector, Db

__all__ = ["Claim", "ClusterNode", "NodeSettings"]

logger = logging.getLogger(__name__)

_NOW = "EXTRACT(EPOCH FROM now())"


@dataclass(frozen=True, slots=True)
class NodeSettings:
    node_id: str
    capacity: int
    site: str | None
    lease_s: float
    api_url: str | None

    @property
    def tick_s(self) -> float:
        return self.lease_s / 8


@dataclass(frozen=True, slots=True)
class Claim:
    camera: str
    epoch: int
    lost_node: str | None  # the node it was taken from, when that node was lost
    lost_since_utc: float | None  # that node's last renewal (the database's clock)


class ClusterNode:
    def __init__(
        self,
        url: str,
        settings: NodeSettings,
        cameras: Sequence[tuple[str, str | None]],
        clock: Clock,
        on_claimed: Callable[[Claim], None],
        on_lost: Callable[[str], None],
        heartbeats: Heartbeats | None = None,
    ) -> None:
        """``cameras``: (id, site) of every camera in the config (all nodes share it);
        ``on_claimed`` / ``on_lost`` start and stop a camera here (called on this node's
        thread)."""
        self.settings = settings
        self._db = Connector(None, url)
        self._cameras = list(cameras)
        self._clock = clock
        self._on_claimed = on_claimed
        self._on_lost = on_lost
        self._heartbeats = heartbeats
        self._held: dict[str, int] = {}  # camera -> epoch, as claimed by this process
        self._owners: dict[str, str] = {}  # camera -> the node whose lease holds, last round
        self._api_urls: dict[str, str] = {}  # node -> its API's address, last round
        self._lock = threading.Lock()
        self._watch = LeaseWatch(settings.lease_s, margin_s=2 * settings.tick_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_mono = 0.0
        self._round_started: float | None = None  # monotonic, while a round runs
        self._trouble: str | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Register (synchronously: a database that cannot be reached fails the start) and
        begin the protocol on a thread."""
        self.register()
        self._thread = threading.Thread(target=self._run, name="nvr-cluster", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the protocol; the caller stops the cameras, then :meth:`release`s them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._heartbeats is not None:
            self._heartbeats.forget("cluster")

    def release(self) -> None:
        """Hand every camera over (their files are final): other nodes claim them at once,
        with no failover gap. Best effort: if the database is away they are lost instead."""
        with self._lock:
            held = dict(self._held)
            self._held.clear()
        try:
            with self._db.transaction() as db:
                for camera, epoch in held.items():
                    db.execute(
                        f"UPDATE camera_leases SET owner=NULL, released=TRUE, expires_utc={_NOW}"
                        " WHERE camera=? AND owner=? AND epoch=?",
                        (camera, self.settings.node_id, epoch),
                    )
                db.execute(
                    "UPDATE nodes SET draining=TRUE WHERE node_id=?", (self.settings.node_id,)
                )
            logger.info("cluster: released %d cameras", len(held))
        except DB_ERRORS as exc:
            logger.warning("cluster: cameras not released (%s); they move when leases end", exc)
        finally:
            self._db.reset()

    def register(self) -> None:
        """The node's row and the cameras' lease rows; rounds (:meth:`tick`) may follow."""
        with self._db.transaction() as db:
            self._register(db)
        self._started_mono = self._clock.monotonic()

    # ---- what others ask ------------------------------------------------------------------

    def recorded_elsewhere(self, camera: str) -> str | None:
        """The other node that records ``camera`` (as of the last round), else None."""
        owner = self._owners.get(camera)
        return owner if owner != self.settings.node_id else None

    def api_url_of(self, node: str) -> str | None:
        """Where another node's API answers (as it registered it)."""
        return self._api_urls.get(node)

    def held(self) -> dict[str, int]:
        with self._lock:
            return dict(self._held)

    @property
    def trouble(self) -> str | None:
        """Why the last round failed (None: the database answered)."""
        return self._trouble

    # ---- the protocol ---------------------------------------------------------------------

    def _run(self) -> None:
        watchdog = threading.Thread(target=self._watch_rounds, name="nvr-cluster-watch")
        watchdog.daemon = True
        watchdog.start()
        while not self._stop.wait(self.settings.tick_s):
            if self._heartbeats is not None:
                self._heartbeats.beat("cluster")
            try:
                self.tick()
            except Exception:
                logger.exception("cluster round failed")

    def _watch_rounds(self) -> None:
        """A round that hangs (a database that went silent mid-query: no error comes for
        minutes) must not keep this node recording past its leases: counted as cut off."""
        while not self._stop.wait(self.settings.tick_s / 2):
            if self._round_started is not None:
                self._fence_if_due(DbTrouble.UNREACHABLE, "a round got no answer")

    def _fence_if_due(self, trouble: DbTrouble, why: str) -> None:
        now = self._clock.monotonic()
        if not self._watch.must_stop(now, trouble) or not self.held():
            return
        logger.warning(
            "cluster: leases not renewed for %.1f s (%s): stopping every camera before "
            "another node may claim it",
            now - (self._watch.renewed_at or now),
            why,
        )
        with self._lock:
            gone = list(self._held)
            self._held.clear()
        for camera in gone:
            self._on_lost(camera)

    def tick(self) -> None:
        started = self._clock.monotonic()
        self._round_started = started
        try:
            lost, claims = self._round(started)
        except DB_ERRORS as exc:
            message = redact(str(exc))
            trouble = classify_trouble(message)
            if message != self._trouble:
                logger.warning("cluster: database %s: %s", trouble.value, message)
            self._trouble = message
            self._fence_if_due(trouble, "the database does not answer")
            return
        finally:
            self._round_started = None
        if self._trouble is not None:
            logger.info("cluster: database reachable again")
        self._trouble = None
        self._watch.renewed(started)
        for camera in lost:
            logger.warning("cluster: %s is no longer this node's: stopped", camera)
            self._on_lost(camera)
        for claim in claims:
            how = f"taken over from lost node {claim.lost_node}" if claim.lost_node else "claimed"
            logger.info("cluster: %s %s (epoch %d)", claim.camera, how, claim.epoch)
            self._on_claimed(claim)

    def _round(self, started: float) -> tuple[list[str], list[Claim]]:
        s = self.settings
        with self._lock:
            held = dict(self._held)
        with self._db.transaction() as db:
            self._heartbeat(db)
            # Still ours if nobody claimed it, even if it ran out meanwhile (the database was
            # down): a claim changes the owner and the epoch.
            renewed = {
                r["camera"]: int(r["epoch"])
                for r in db.execute(
                    f"UPDATE camera_leases SET expires_utc={_NOW} + ? WHERE owner=?"
                    " AND camera = ANY(?) RETURNING camera, epoch",
                    (s.lease_s, s.node_id, list(held)),
                )
            }
            self._owners = {
                r["camera"]: r["owner"]
                for r in db.execute(
                    f"SELECT camera, owner FROM camera_leases WHERE expires_utc > {_NOW}"
                    " AND owner IS NOT NULL"
                )
            }
            self._api_urls = {
                r["node_id"]: r["api_url"]
                for r in db.execute("SELECT node_id, api_url FROM nodes WHERE api_url IS NOT NULL")
            }
        lost = [c for c, epoch in held.items() if renewed.get(c) != epoch]
        with self._lock:
            for camera in lost:
                self._held.pop(camera, None)
        # Claims wait half a lease after this process began, so that nodes started together
        # all count each other before sharing the cameras out.
        if started - self._started_mono < s.lease_s / 2 or self._stop.is_set():
            return lost, []
        claims = self._claim(len(held) - len(lost))
        with self._lock:
            for c in claims:
                self._held[c.camera] = c.epoch
        return lost, claims

    def _in_reach(self) -> tuple[str, list[object]]:
        if self.settings.site is None:
            return "TRUE", []
        return "(site IS NULL OR site=?)", [self.settings.site]

    def _claim(self, owned: int) -> list[Claim]:
        s = self.settings
        reach, reach_args = self._in_reach()
        with self._db.transaction() as db:
            row = db.one(f"SELECT COUNT(*) AS n FROM camera_leases WHERE {reach}", reach_args)
            cameras = int(row["n"]) if row else 0
            site_sql = "site IS NULL" if s.site is None else "site=?"
            site_args: list[object] = [] if s.site is None else [s.site]
            row = db.one(
                f"SELECT COUNT(*) AS n FROM nodes WHERE heartbeat_utc > {_NOW} - ?"
                f" AND NOT draining AND ({site_sql} OR node_id=?)",
                [s.lease_s, *site_args, s.node_id],
            )
            live = int(row["n"]) if row else 1
            quota = claim_quota(owned, s.capacity, cameras, live)
            if quota <= 0:
                return []
            rows = db.execute(
                "UPDATE camera_leases c SET owner=?, epoch=c.epoch + 1,"
                f" expires_utc={_NOW} + ?, released=FALSE"
                " FROM (SELECT camera, owner AS old_owner, expires_utc AS old_expires,"
                " released AS old_released FROM camera_leases"
                f" WHERE (owner IS NULL OR expires_utc < {_NOW}) AND {reach}"
                f" AND {_NOW} - EXTRACT(EPOCH FROM pg_postmaster_start_time()) > ?"
                " ORDER BY camera LIMIT ? FOR UPDATE SKIP LOCKED) o"
                " WHERE c.camera = o.camera"
                " RETURNING c.camera, c.epoch, o.old_owner, o.old_expires, o.old_released",
                [s.node_id, s.lease_s, *reach_args, s.lease_s, quota],
            ).fetchall()
        claims = []
        for r in rows:
            lost = r["old_owner"] is not None and not r["old_released"]
            claims.append(
                Claim(
                    r["camera"],
                    int(r["epoch"]),
                    r["old_owner"] if lost else None,
                    float(r["old_expires"]) - s.lease_s if lost else None,
                )
            )
        return claims

    def _heartbeat(self, db: Db) -> None:
        db.execute(
            f"UPDATE nodes SET heartbeat_utc={_NOW}, draining=FALSE WHERE node_id=?",
            (self.settings.node_id,),
        )

    def _register(self, db: Db) -> None:
        s = self.settings
        db.execute(
            "INSERT INTO nodes (node_id, site, capacity, api_url, started_utc, heartbeat_utc)"
            f" VALUES (?, ?, ?, ?, {_NOW}, {_NOW}) ON CONFLICT (node_id) DO UPDATE SET"
            " site=excluded.site, capacity=excluded.capacity, api_url=excluded.api_url,"
            " started_utc=excluded.started_utc, heartbeat_utc=excluded.heartbeat_utc,"
            " draining=FALSE",
            (s.node_id, s.site, s.capacity, s.api_url),
        )
        db.executemany(
            "INSERT INTO camera_leases (camera, site) VALUES (?, ?)"
            " ON CONFLICT (camera) DO UPDATE SET site=excluded.site",
            self._cameras,
        )
        # Leases this node held before it restarted are not this process's: they end now, so
        # that whoever claims them (this node too) starts a new epoch, with a failover gap.
        db.execute(f"UPDATE camera_leases SET expires_utc={_NOW} - 1 WHERE owner=?", (s.node_id,))
