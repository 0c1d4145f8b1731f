"""``nvr run`` as a process for integration tests and benchmarks: restartable, killable,
stoppable with SIGSTOP, with its HTTP API at hand."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from nvr_gstreamer.testing.engine import wait_until

__all__ = ["Recorder", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder:
    """`nvr run` as a process, restartable, with its API."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)

    def start(self) -> float:
        self.launch()
        return self.wait_up()

    def launch(self) -> None:
        """Start the process, not waiting for it (several nodes start together)."""
        if self.http.is_closed:  # stopped before: a new client for the new process
            self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=20)
        nvr = Path(sys.executable).parent / "nvr"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([nvr, "run", "-c", self.config], stdout=out, stderr=out)

    def wait_up(self) -> float:
        wait_until(self._healthy, 30, "the recorder's API")
        return time.time()  # up: its run began (just) before

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        try:
            return bool(self.http.get("/api/health").status_code == 200)
        except httpx.TransportError:
            return False

    def kill(self) -> float:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        return time.time()

    def sigstop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def sigcont(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def health(self) -> dict[str, Any]:
        return dict(self.http.get("/api/health").json())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        self.http.close()

    def camera(self, cid: str) -> dict[str, Any]:
        return dict(self.http.get(f"/api/cameras/{cid}").json())

    def closed_after(self, cid: str, t: float) -> bool:
        rows = self.http.get("/api/recordings", params={"camera": cid}).json()
        return any(
            r["status"] == "closed" and datetime.fromisoformat(r["start"]).timestamp() > t
            for r in rows
        )
