"""``nvr run`` as systemd runs it: the notify protocol heard on a real unix datagram socket,
the watchdog withheld while a loop is wedged (through the test-only hook), and the unit that
``nvr service`` writes, checked by ``systemd-analyze verify``."""

from __future__ import annotations

import grp
import itertools
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import wait_until

pytestmark = pytest.mark.integration

NVR = Path(sys.executable).parent / "nvr"
PING_S = 0.5  # WATCHDOG_USEC = 1 s: systemd wants a ping every half of it
LOOP_TIMEOUT_S = 3.0


@dataclass
class Listener:
    """systemd's side of the notify protocol: a datagram socket, every message timestamped."""

    path: Path
    sock: socket.socket
    messages: list[tuple[float, dict[str, str]]] = field(default_factory=list)

    def run(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def times(self, key: str) -> list[float]:
        return [t for t, m in list(self.messages) if key in m]

    def values(self, key: str) -> list[str]:
        return [m[key] for _t, m in list(self.messages) if key in m]


@pytest.fixture
def listener() -> Iterator[Listener]:
    folder = Path(tempfile.mkdtemp(prefix="nvr-notify-", dir="/tmp"))  # a short socket path
    path = folder / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    lis = Listener(path, sock)
    threading.Thread(target=lis.run, daemon=True).start()
    yield lis
    sock.close()
    path.unlink(missing_ok=True)
    folder.rmdir()


@dataclass
class Service:
    proc: subprocess.Popen[str]
    url: str
    log: list[str]


@pytest.fixture
def service(listener: Listener, tmp_path: Path) -> Iterator[Service]:
    with SimulatorProcess(cameras=2, gop_seconds=1.0) as sim:
        config = tmp_path / "nvr.yaml"
        cams = "".join(f"  - id: {n}\n    url: {sim.url(n)}\n" for n in sim.camera_names)
        config.write_text(
            f"storage:\n  path: {tmp_path / 'rec'}\n  segment_seconds: 2\n"
            f"api:\n  port: 0\nservice:\n  loop_timeout_seconds: {LOOP_TIMEOUT_S}\n"
            f"cameras:\n{cams}"
        )
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(listener.path),
            "WATCHDOG_USEC": str(int(2 * PING_S * 1_000_000)),
            "NVR_TEST_HOOKS": "1",
        }
        proc = subprocess.Popen(
            [str(NVR), "run", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        log: list[str] = []
        threading.Thread(target=lambda: log.extend(proc.stderr or []), daemon=True).start()
        try:
            wait_until(lambda: any("API at http" in line for line in log), 30, "the API")
            url = re.search(r"API at (http://\S+)/api/cameras", "".join(log))
            assert url is not None
            yield Service(proc, url.group(1), log)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


def _health(s: Service) -> dict[str, object]:
    data: dict[str, object] = httpx.get(f"{s.url}/api/health", timeout=5).json()
    return data


def test_ready_status_watchdog_and_stopping_reach_systemd(
    service: Service, listener: Listener
) -> None:
    wait_until(lambda: listener.values("READY"), 30, "READY=1")
    assert listener.values("READY") == ["1"]
    assert listener.values("MAINPID") == [str(service.proc.pid)]
    wait_until(
        lambda: any(v.startswith("2/2 cameras streaming, 2 recording, storage ok") for v in
                    listener.values("STATUS")),
        20,
        "a status with both cameras streaming",
    )  # fmt: skip
    ready_at = listener.times("READY")[0]
    wait_until(lambda: len(listener.times("WATCHDOG")) >= 6, 10, "watchdog pings")
    pings = [t for t in listener.times("WATCHDOG") if t > ready_at]
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    print(f"watchdog pings every {sum(gaps) / len(gaps):.2f} s (wanted {PING_S} s)")
    assert max(gaps) < 2 * PING_S
    health = _health(service)
    assert health["status"] == "ok" and health["stuck_loops"] == []
    assert set(health["loops"]) == {"api", "gst-loop", "storage", "camera:cam1", "camera:cam2"}  # type: ignore[arg-type]
    metrics = httpx.get(f"{service.url}/metrics", timeout=5).text
    assert re.search(r'^nvr_loop_heartbeat_age_seconds\{loop="storage"\} [0-9.]+$', metrics, re.M)
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(30) == 0
    assert listener.values("STOPPING") == ["1"]
    stopping_at = listener.times("STOPPING")[0]
    assert not [t for t in listener.times("WATCHDOG") if t > stopping_at + 0.1]


@pytest.mark.parametrize(("loop", "stuck"), [
    ("storage", {"storage"}),
    ("gst-loop", {"gst-loop", "camera:cam1", "camera:cam2"}),
    ("api", None),  # the API cannot answer while wedged: the pings say it all
])  # fmt: skip
def test_a_wedged_loop_stops_the_watchdog_while_the_others_turn(
    service: Service, listener: Listener, loop: str, stuck: set[str] | None
) -> None:
    wait_until(lambda: len(listener.times("WATCHDOG")) >= 3, 30, "watchdog pings")
    wedge_s = LOOP_TIMEOUT_S + 6.0
    r = httpx.post(f"{service.url}/api/debug/wedge/{loop}", params={"seconds": wedge_s})
    assert r.status_code == 200, r.text
    wedged_at = time.monotonic()
    if stuck is None:
        stuck_at = wedged_at + 0.2 + LOOP_TIMEOUT_S  # it blocks the server 0.2 s after answering
    else:
        # (A wedge of a worker waits for the work queued before it.)
        stuck_at = wait_until(lambda: _health(service)["status"] == "degraded", wedge_s, "stuck")
        stuck_at += wedged_at
        health = _health(service)
        assert set(health["stuck_loops"]) == stuck  # type: ignore[arg-type]
        loops: dict[str, float] = health["loops"]  # type: ignore[assignment]
        fresh = {name for name, age in loops.items() if age < 2.0}
        assert fresh == set(loops) - stuck  # the other loops keep turning
    # Pings stop at the watchdog's next tick after the loop is older than the timeout.
    silent_from = stuck_at + PING_S + 0.3
    wait_until(lambda: time.monotonic() > wedged_at + wedge_s - 1.0, wedge_s, "the wedge")
    silent_to = wedged_at + wedge_s - 1.0
    late = [t - stuck_at for t in listener.times("WATCHDOG") if silent_from < t < silent_to]
    assert late == [], f"pinged {late} s after the loop was stuck"
    last = max(t for t in listener.times("WATCHDOG") if t < silent_from) - wedged_at
    print(f"{loop} wedged: last watchdog ping {last:.2f} s later (timeout {LOOP_TIMEOUT_S} s)")
    assert any(f"loop {loop} has not turned" in line for line in service.log)
    assert any("stuck for" in v for v in listener.values("STATUS"))
    # The wedge ends: the loop turns, the pings come back, the service is healthy again.
    n = len(listener.times("WATCHDOG"))
    wait_until(lambda: len(listener.times("WATCHDOG")) > n, 5, "pings again")
    wait_until(lambda: _health(service)["status"] == "ok", 10, "healthy again")
    assert service.proc.poll() is None


def test_the_unit_is_printed_without_root_and_passes_systemd_analyze(tmp_path: Path) -> None:
    public = Path(tempfile.mkdtemp(prefix="nvr-unit-", dir="/tmp"))  # readable by nobody too
    public.chmod(0o755)
    config = public / "nvr.yaml"
    config.write_text(f"storage:\n  path: {tmp_path / 'rec'}\ncameras:\n"
                      "  - id: cam1\n    url: rtsp://192.0.2.10/stream1\n")  # fmt: skip
    units = tmp_path / "units"
    printed = subprocess.run(
        [str(NVR), "service", "install", "-c", str(config), "--print", "--unit-dir", str(units)],
        capture_output=True,
        text=True,
        timeout=60,
        # As an unprivileged user would run it: --print needs no root.
        preexec_fn=(lambda: os.setuid(65534)) if os.geteuid() == 0 else None,
    )
    assert printed.returncode == 0, printed.stderr
    assert not units.exists()  # --print does nothing else
    unit = tmp_path / "nvr.service"
    unit.write_text(printed.stdout)
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(verify.stdout + verify.stderr)
    config.unlink()
    public.rmdir()
    assert verify.returncode == 0
    assert verify.stdout + verify.stderr == ""  # it only warns about bad lines


def test_a_bad_config_is_refused_with_check_configs_message(tmp_path: Path) -> None:
    config = tmp_path / "nvr.yaml"
    config.write_text("cameras:\n  - id: cam1\n    url: http://nope\n")
    done = subprocess.run(
        [str(NVR), "service", "install", "-c", str(config), "--print"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert f"{config}: cameras[0].url:" in done.stderr and "rtsp://" in done.stderr


def test_install_creates_the_user_hands_over_storage_and_uninstall_removes_the_unit(
    tmp_path: Path,
) -> None:
    assert os.geteuid() == 0, "CI runs as root; installing a service needs it"
    user = f"nvrt{uuid.uuid4().hex[:8]}"
    storage = tmp_path / "rec"
    (storage / "cam1").mkdir(parents=True)
    (storage / "cam1" / "old.mkv").write_bytes(b"x")
    config = tmp_path / "nvr.yaml"
    config.write_text(f"storage:\n  path: {storage}\ncameras:\n"
                      "  - id: cam1\n    url: rtsp://admin:pw@192.0.2.10/s1\n")  # fmt: skip
    units = tmp_path / "units"
    try:
        done = subprocess.run(
            [str(NVR), "service", "install", "-c", str(config), "--user", user,
             "--unit-dir", str(units), "--no-start"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        unit = units / "nvr.service"
        assert f"User={user}" in unit.read_text().splitlines()
        uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(user).gr_gid
        assert pwd.getpwnam(user).pw_shell == "/usr/sbin/nologin"
        for path in (storage, storage / "cam1", storage / "cam1" / "old.mkv"):
            assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid), path
        st = config.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, gid, 0o640)  # it has a password
        done = subprocess.run(
            [str(NVR), "service", "uninstall", "--unit-dir", str(units), "--no-start"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert not unit.exists() and "the user and the recordings are kept" in done.stdout
        assert (storage / "cam1" / "old.mkv").exists()
    finally:
        subprocess.run(["userdel", user], capture_output=True, timeout=30)
