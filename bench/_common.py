"""Shared helpers of the benchmarks: temp dirs, `nvr run` as a process, CPU sampling, reports."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import yaml

from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import wait_until

NVR = str(Path(sys.executable).with_name("nvr"))


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"nvr-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(
    folder: Path,
    urls: dict[str, str],
    *,
    api_port: int,
    storage: dict[str, object] | None = None,
    reconnect: dict[str, float] | None = None,
    camera_options: Mapping[str, object] | None = None,
) -> Path:
    """A YAML config for `nvr run`: every camera recorded into ``folder/rec``, each with the
    keys of ``camera_options`` (e.g. ``{"transport": "tcp"}``) besides its id and URL."""
    doc: dict[str, object] = {
        "storage": {"path": str(folder / "rec"), **(storage or {})},
        "api": {"host": "127.0.0.1", "port": api_port},
        "cameras": [{"id": cid, "url": url, **(camera_options or {})} for cid, url in urls.items()],
    }
    if reconnect:
        doc["reconnect"] = reconnect
    path = folder / "nvr.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class NvrService:
    """`nvr run -c CONFIG` as a child process; terminated (then killed) on close."""

    def __init__(self, config: Path, api_port: int, log: Path) -> None:
        self.api_port = api_port
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [NVR, "run", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def health(self) -> dict[str, object]:
        try:
            response = httpx.get(f"http://127.0.0.1:{self.api_port}/api/health", timeout=2.0)
            data: dict[str, object] = response.json()
            return data
        except (httpx.HTTPError, ValueError):
            return {}

    def cameras(self) -> list[dict[str, object]]:
        """``GET /api/cameras``: every camera's status (state, codec, audio_codec, ...)."""
        response = httpx.get(f"http://127.0.0.1:{self.api_port}/api/cameras", timeout=5.0)
        response.raise_for_status()
        data: list[dict[str, object]] = response.json()
        return data

    def all_streaming(self, cameras: int) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"nvr run exited with {self.process.returncode}")
        states = self.health().get("cameras") or {}
        assert isinstance(states, dict)
        return len(states) == cameras and all(s == "streaming" for s in states.values())

    def all_recording(self, cameras: int, transport: str | None = None) -> bool:
        """Every camera streams (over ``transport``, when given) into a file, storage ok."""
        if self.process.poll() is not None:
            raise RuntimeError(f"nvr run exited with {self.process.returncode}")
        try:
            cams = self.cameras()
        except (httpx.HTTPError, ValueError):  # the API is not up yet
            return False
        return len(cams) == cameras and all(
            c["state"] == "streaming"
            and c["recording"]
            and c["storage_state"] == "ok"
            and c["current_segment"]
            and (transport is None or c["transport"] == transport)
            for c in cams
        )

    def wait_streaming(self, cameras: int, timeout_s: float = 60.0) -> float:
        return wait_until(lambda: self.all_streaming(cameras), timeout_s, "all cameras streaming")

    def kill9(self) -> float:
        """SIGKILL; return the wall-clock time of the kill."""
        at = time.time()
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return at

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class FfmpegRecorders:
    """One `ffmpeg -c copy -f segment` process per camera URL (the baseline recorder)."""

    def __init__(self, urls: dict[str, str], folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []
        for cid, url in urls.items():
            cmd = [
                "ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
                "-i", url, "-c", "copy", "-f", "segment", "-segment_time", "60",
                "-reset_timestamps", "1", str(folder / f"{cid}_%03d.mkv"),
            ]  # fmt: skip
            self.processes.append(
                subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

    def all_writing(self) -> bool:
        if any(p.poll() is not None for p in self.processes):
            raise RuntimeError("an ffmpeg recorder exited")
        files = [f for f in self.folder.iterdir() if f.stat().st_size > 0]
        return len(files) >= len(self.processes)

    def bytes_written(self) -> int:
        return sum(f.stat().st_size for f in self.folder.iterdir())

    def close(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of the processes (not their children)."""
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def thread_cpu(pid: int) -> dict[tuple[str, int], float]:
    """CPU seconds per thread, keyed by (name, thread id)."""
    result: dict[tuple[str, int], float] = {}
    for thread in psutil.Process(pid).threads():
        try:
            name = Path(f"/proc/{pid}/task/{thread.id}/comm").read_text().strip()
        except OSError:
            continue
        result[(name, thread.id)] = thread.user_time + thread.system_time
    return result


def thread_ctx_switches(pid: int) -> dict[int, int]:
    """Context switches (voluntary + involuntary) per thread id.

    psutil's ``num_ctx_switches()`` reads ``/proc/PID/status``, which on Linux counts the main
    thread only; a GStreamer process switches on its streaming threads, so every
    ``/proc/PID/task/TID/status`` is read instead."""
    result: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        switches = 0
        for line in status.splitlines():
            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                switches += int(line.split(":", 1)[1])
        result[int(task.name)] = switches
    return result


@dataclass(frozen=True, slots=True)
class Stream:
    """One stream of a media file as ffprobe reads it."""

    kind: str  # codec_type: video, audio, ...
    codec: str  # codec_name: h264, aac, pcm_alaw, ...
    packets: int
    sample_rate: int | None  # audio only
    channels: int | None  # audio only


def ffprobe_streams(path: Path, timeout_s: float = 60.0) -> tuple[list[Stream], float | None]:
    """Every stream of the file with its packet count, and the container's duration (s)."""
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-count_packets", "-show_entries",
            "stream=codec_type,codec_name,nb_read_packets,sample_rate,channels:format=duration",
            "-of", "json", str(path),
        ],
        capture_output=True, text=True, timeout=timeout_s, check=True,
    )  # fmt: skip
    data = json.loads(out.stdout)
    streams = [
        Stream(
            kind=s.get("codec_type", "?"),
            codec=s.get("codec_name", "?"),
            packets=int(s.get("nb_read_packets") or 0),
            sample_rate=int(s["sample_rate"]) if s.get("sample_rate") else None,
            channels=s.get("channels"),
        )
        for s in data.get("streams", [])
    ]
    duration = data.get("format", {}).get("duration")
    return streams, float(duration) if duration not in (None, "N/A") else None


@dataclass(frozen=True, slots=True)
class Segment:
    camera: str
    path: Path
    start_utc: float
    end_utc: float | None
    frames: int | None
    status: str


def segments(root: Path) -> list[Segment]:
    """Rows of the catalog in ``root``, oldest first."""
    with contextlib.closing(sqlite3.connect(root / "catalog.sqlite3")) as db:
        rows = db.execute(
            "SELECT camera, path, start_utc, end_utc, frames, status FROM segments "
            "ORDER BY camera, start_utc"
        ).fetchall()
    return [Segment(r[0], root / r[1], r[2], r[3], r[4], r[5]) for r in rows]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def stream_simulator(cameras: int, bitrate_kbps: int, pattern: str) -> SimulatorProcess:
    """The benchmarks' cameras: 1280x720 at 25 fps, a keyframe a second, ``bitrate_kbps``."""
    return SimulatorProcess(
        cameras,
        size=(1280, 720),
        fps=25,
        bitrate_kbps=bitrate_kbps,
        gop_seconds=1.0,
        extra_args=["--pattern", pattern],
    )
