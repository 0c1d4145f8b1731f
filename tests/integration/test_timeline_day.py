"""One day with a frozen camera, a killed camera and a recorder crash, through `nvr run` and
the HTTP API: the day's timeline is a partition (footage and gaps, nothing else, no overlap)
and every gap names what really happened."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.storage.timeline import day_bounds
from nvr_gstreamer.testing.engine import wait_until
from nvr_gstreamer.testing.recorder import Recorder, free_port

pytestmark = pytest.mark.integration

STALL_S = 2.0
CRASH_OUTAGE_S = 4.0  # how long the recorder stays dead: the length of the fault itself


@pytest.fixture
def day(tmp_path: Path) -> Iterator[tuple[SimulatorProcess, Recorder]]:
    with SimulatorProcess(cameras=2, gop_seconds=0.5) as sim:
        port = free_port()
        cfg = tmp_path / "nvr.yaml"
        cfg.write_text(
            f"storage: {{path: {tmp_path / 'rec'}, segment_seconds: 2}}\n"
            f"reconnect: {{initial_delay_seconds: 0.5, max_delay_seconds: 1,"
            f" stall_timeout_seconds: {STALL_S}}}\n"
            f"api: {{port: {port}}}\n"
            f"cameras:\n"
            f"  - {{id: cam1, url: '{sim.url('cam1')}'}}\n"
            f"  - {{id: cam2, url: '{sim.url('cam2')}'}}\n"
        )
        rec = Recorder(cfg, port, tmp_path / "nvr.log")
        try:
            yield sim, rec
        finally:
            rec.stop()


def test_a_day_of_faults_is_a_partition_with_the_right_reasons(
    day: tuple[SimulatorProcess, Recorder],
) -> None:
    sim, rec = day
    spawned = time.time()
    started = rec.start()
    for cid in ("cam1", "cam2"):
        wait_until(lambda cid=cid: rec.closed_after(cid, started), 30, f"{cid} recording")

    # cam1 freezes: connection open, no data. Noticed after STALL_S, then it comes back.
    frozen = time.time()
    sim.freeze("cam1")
    wait_until(lambda: rec.camera("cam1")["state"] != "streaming", 30, "cam1 stall noticed")
    back = time.time()
    sim.resume("cam1")
    wait_until(lambda: rec.closed_after("cam1", back), 30, "cam1 recording again")

    # cam2 is killed; several reconnect attempts fail before it returns.
    killed = time.time()
    sim.stop("cam2")
    wait_until(lambda: rec.camera("cam2")["reconnect_attempt"] >= 2, 30, "cam2 retried twice")
    back = time.time()
    sim.resume("cam2")
    wait_until(lambda: rec.closed_after("cam2", back), 30, "cam2 recording again")

    # The recorder itself is killed, stays dead for a while, and is started again.
    crashed = rec.kill()
    time.sleep(CRASH_OUTAGE_S)  # the outage itself: there is no event to wait for
    respawned = time.time()
    restarted = rec.start()
    for cid in ("cam1", "cam2"):
        wait_until(lambda cid=cid: rec.closed_after(cid, restarted), 30, f"{cid} after restart")

    today = datetime.fromtimestamp(started).date()
    day_start, _day_end = day_bounds(today)
    asked = time.time()
    for cid in ("cam1", "cam2"):
        tl = rec.http.get("/api/timeline", params={"camera": cid, "date": today.isoformat()})
        assert tl.status_code == 200
        body = tl.json()
        footage = [
            (
                datetime.fromisoformat(f["start"]).timestamp(),
                datetime.fromisoformat(f["end"]).timestamp(),
                None,
            )
            for f in body["footage"]
        ]
        gaps = [
            (
                datetime.fromisoformat(g["start"]).timestamp(),
                datetime.fromisoformat(g["end"]).timestamp(),
                g["reason"],
            )
            for g in body["gaps"]
        ]
        pieces = sorted(footage + gaps)
        # A partition of the day up to now: from midnight, no hole, no overlap.
        assert pieces[0][0] == pytest.approx(day_start, abs=1e-3)
        for (_s1, e1, _r1), (s2, _e2, _r2) in pairwise(pieces):
            assert s2 == pytest.approx(e1, abs=1e-3), (cid, pieces)
        assert all(e > s for s, e, _r in pieces), pieces
        assert restarted <= pieces[-1][1] <= asked + 1
        # Every segment lies in footage.
        for seg in body["segments"]:
            s = datetime.fromisoformat(seg["start"]).timestamp()
            assert any(fs - 1e-3 <= s < fe for fs, fe, _r in footage), seg

        def reason_at(t: float, gaps: list[tuple[float, float, str]] = gaps) -> str | None:
            hits = [r for s, e, r in gaps if s <= t < e]
            assert len(hits) <= 1
            return hits[0] if hits else None

        # Before the recorder first ran: stopped. During the crash: stopped, for both.
        assert reason_at(day_start + 1) == "nvr_stopped" or spawned - day_start < 3
        assert reason_at((crashed + respawned) / 2) == "nvr_stopped"
        # The outage of this camera: one camera_down gap, from the last frame (not from
        # when it was noticed STALL_S later), however many reconnect attempts it took.
        fault_at = frozen if cid == "cam1" else killed
        down = [(s, e) for s, e, r in gaps if r == "camera_down" and s < fault_at + 1 < e]
        assert len(down) == 1, (cid, gaps)
        assert down[0][0] <= fault_at + 0.75, (cid, down[0][0] - fault_at)
        # Only two reasons occur: the camera (outages, connecting after a start) and the
        # recorder not running — and that only while it really was not running.
        assert {r for _s, _e, r in gaps} <= {"camera_down", "nvr_stopped"}, gaps
        for s, e, r in gaps:
            if r == "nvr_stopped":
                before_first = e <= started
                # From the last sign of life (a heartbeat every 10 s, or the last frame).
                in_crash = s >= crashed - 11 and e <= restarted
                assert before_first or in_crash, (cid, s - crashed, e - restarted)
