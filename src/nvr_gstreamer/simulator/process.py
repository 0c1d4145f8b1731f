"""Run the camera simulator as a child process (the demos, tests and benchmarks).

::

    with SimulatorProcess(cameras=4, auth=("admin", "secret")) as sim:
        url = sim.url("cam1")            # rtsp://admin:secret@127.0.0.1:PORT/cam1
        sim.freeze("cam2")
        sim.resume("cam2")
        sim.kill()
        sim.restart()                    # same ports again: "the camera came back"

    # cam2 also sends G.711 A-law audio, cam3 AAC; cam4 refuses RTP over TCP (461 on SETUP).
    SimulatorProcess(
        cameras=4,
        camera_audio={"cam2": AudioCodec.PCMA, "cam3": AudioCodec.AAC},
        camera_transports={"cam4": AllowedTransports.UDP},
    )

    # Motion detection: cam1 shows a still scene, cam2 the same with sensor noise.
    with SimulatorProcess(
        cameras=2, camera_pictures={"cam1": Picture.SCENE, "cam2": Picture.NOISY_SCENE}
    ) as sim:
        sim.object_start("cam1")          # a white square moves across, bouncing at the edges
        sim.object_stop("cam1")           # ... and stays where it is
        sim.brightness("cam2", -0.5)      # the whole picture darker at once

The simulator binds OS-picked free ports on the first start (``--port 0``) and reuses exactly those
ports on :meth:`SimulatorProcess.restart` (gst-rtsp-server binds with SO_REUSEADDR, as does the
control endpoint, so connections left in TIME_WAIT do not block the rebind).

No orphans: :meth:`SimulatorProcess.close` (also called by ``__exit__`` and at interpreter exit)
terminates and reaps the process, and the child gets ``PR_SET_PDEATHSIG=SIGKILL``, so it dies with
the test process even if that is SIGKILLed. (Linux delivers that signal when the *thread* that
spawned the child exits: create the simulator from a thread that outlives it, such as the main one.)

Longer than ~300 lines: the child process, its controls and the guarantee that it never outlives
its parent are one lifecycle.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote, urlencode

from nvr_gstreamer.simulator.model import (
    READY_PREFIX,
    AllowedTransports,
    AudioCodec,
    CameraAction,
    CameraSpec,
    CameraStatus,
    Codec,
    ReadyInfo,
)
from nvr_gstreamer.simulator.scene import Picture

_PR_SET_PDEATHSIG = 1
_TAIL_LINES = 200
_LIVE: set[SimulatorProcess] = set()  # started and not yet closed


class SimulatorProcessError(RuntimeError):
    """The simulator did not start, died, or its control endpoint failed."""


# Resolved here, not in the child: between fork and exec only already-loaded code may run safely
# in a process that has other threads (GStreamer's), and dlopen/dlsym take locks.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


class _OutputReader:
    """Drains one pipe of the child on a thread, keeping the last lines and forwarding new ones."""

    def __init__(self, stream: IO[str], name: str, lines: queue.Queue[str | None] | None) -> None:
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._lines = lines
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self._stream:
            text = line.rstrip("\n")
            self.tail.append(text)
            if self._lines is not None:
                self._lines.put(text)
        if self._lines is not None:
            self._lines.put(None)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


class SimulatorProcess:
    """The simulator in a subprocess, with its per-camera faults and whole-process faults.

    ``camera_codecs`` overrides the codec per camera (``{"cam3": Codec.H265}``), likewise
    ``camera_audio`` the audio (``audio`` for every camera; default none), ``camera_transports``
    the RTP transports a camera accepts (``transports`` for every camera; default any) and
    ``camera_pictures`` what a camera shows (``picture`` for every camera; default the moving
    pattern). ``auth`` is ``(user, password)``. Extra command-line options go in ``extra_args``.
    """

    def __init__(
        self,
        cameras: int = 4,
        *,
        codec: Codec = Codec.H264,
        camera_codecs: Mapping[str, Codec] | None = None,
        audio: AudioCodec = AudioCodec.NONE,
        camera_audio: Mapping[str, AudioCodec] | None = None,
        transports: AllowedTransports = AllowedTransports.ANY,
        camera_transports: Mapping[str, AllowedTransports] | None = None,
        picture: Picture = Picture.PATTERN,
        camera_pictures: Mapping[str, Picture] | None = None,
        auth: tuple[str, str] | None = None,
        fps: float = 15,
        size: tuple[int, int] = (640, 360),
        bitrate_kbps: int | None = None,
        gop_seconds: float | None = None,
        port: int = 0,
        control_port: int = 0,
        extra_args: Sequence[str] = (),
        ready_timeout_s: float = 20.0,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        command_prefix: Sequence[str] = (),
    ) -> None:
        """``command_prefix`` runs the simulator through another command, e.g.
        ``("ip", "netns", "exec", "ns1")`` to serve inside a network namespace (which execs, so
        the process and its signals stay the simulator's; the control endpoint is then only
        reachable from inside that namespace)."""
        self.cameras = cameras
        self.auth = auth
        self._port = port
        self._control_port = control_port
        self._ready_timeout_s = ready_timeout_s
        self._python = python
        self._prefix = list(command_prefix)
        self._env = dict(env) if env is not None else None
        args = [
            "--cameras",
            str(cameras),
            "--codec",
            codec.value,
            "--fps",
            f"{fps:g}",
            "--size",
            f"{size[0]}x{size[1]}",
        ]
        for name, camera_codec in (camera_codecs or {}).items():
            args += ["--camera-codec", f"{name}={camera_codec.value}"]
        # Only what differs from the defaults, so the usual command line stays as it was.
        if audio is not AudioCodec.NONE:
            args += ["--audio", audio.value]
        for name, camera_audio_codec in (camera_audio or {}).items():
            args += ["--audio", f"{name}={camera_audio_codec.value}"]
        if transports is not AllowedTransports.ANY:
            args += ["--transports", transports.value]
        for name, allowed in (camera_transports or {}).items():
            args += ["--transports", f"{name}={allowed.value}"]
        args += _picture_args(None, picture)
        for name, camera_picture in (camera_pictures or {}).items():
            if _PICTURE_RANK[camera_picture] < _PICTURE_RANK[picture]:
                # --scene and --noise only add a scene, or noise: there is no option to take it
                # back for one camera.
                raise ValueError(f"{name}: {camera_picture.value} when all are {picture.value}")
            args += _picture_args(name, camera_picture)
        if auth is not None:
            args += ["--auth", f"{auth[0]}:{auth[1]}"]
        if bitrate_kbps is not None:
            args += ["--bitrate", str(bitrate_kbps)]
        if gop_seconds is not None:
            args += ["--gop-seconds", f"{gop_seconds:g}"]
        self._args = [*args, *extra_args]
        self._process: subprocess.Popen[str] | None = None
        self._info: ReadyInfo | None = None
        self._stdout: _OutputReader | None = None
        self._stderr: _OutputReader | None = None
        self._history: list[str] = []  # output of earlier runs (before restart)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SimulatorProcess:
        """Spawn the simulator and wait for its READY line. Raise SimulatorProcessError."""
        if self._process is not None and self._process.poll() is None:
            raise SimulatorProcessError("simulator already running")
        self._collect_history()
        cmd = [
            *self._prefix,
            self._python,
            "-u",
            "-m",
            "nvr_gstreamer.simulator",
            "--port",
            str(self._port),
            "--control-port",
            str(self._control_port),
            *self._args,
        ]
        env = self._env if self._env is not None else dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        lines: queue.Queue[str | None] = queue.Queue()
        self._process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=_die_with_parent,
        )
        _LIVE.add(self)
        assert self._process.stdout is not None and self._process.stderr is not None
        self._stdout = _OutputReader(self._process.stdout, "simulator-stdout", lines)
        self._stderr = _OutputReader(self._process.stderr, "simulator-stderr", None)
        try:
            self._info = self._wait_ready(lines)
        except BaseException:
            self.close()
            raise
        # Later starts (restart) bind the very same ports.
        self._port, self._control_port = self._info.port, self._info.control_port
        return self

    def _wait_ready(self, lines: queue.Queue[str | None]) -> ReadyInfo:
        assert self._process is not None
        deadline = time.monotonic() + self._ready_timeout_s
        try:
            while True:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                if line is None:
                    self._process.wait(timeout=5)
                    raise SimulatorProcessError(
                        f"simulator exited with {self._process.returncode} before READY:\n"
                        + self._stderr_tail()
                    )
                if line.startswith(READY_PREFIX):
                    return ReadyInfo.from_line(line)
        except queue.Empty:
            raise SimulatorProcessError(
                f"simulator not ready within {self._ready_timeout_s:g} s:\n" + self._stderr_tail()
            ) from None

    def __enter__(self) -> SimulatorProcess:
        return self.start() if self._process is None else self

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self, timeout_s: float = 5.0) -> int | None:
        """Stop the simulator (SIGTERM, then SIGKILL) and reap it. Idempotent.

        Returns the exit code (None if it was never started).
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGCONT)  # a SIGSTOPped process cannot handle TERM
                process.terminate()
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            except ProcessLookupError:
                process.wait()
        for reader in (self._stdout, self._stderr):
            if reader is not None:
                reader.join(timeout_s)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        _LIVE.discard(self)
        return process.returncode

    # -- whole-process faults --------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the simulator and reap it: every connection closes at once."""
        process = self._running()
        process.kill()
        process.wait()

    def sigstop(self) -> None:
        """SIGSTOP: the process stays, its sockets stay open, nothing answers."""
        process = self._running()
        os.kill(process.pid, signal.SIGSTOP)
        os.waitpid(process.pid, os.WUNTRACED)  # returns once it is really stopped

    def sigcont(self) -> None:
        os.kill(self._running().pid, signal.SIGCONT)

    def restart(self) -> SimulatorProcess:
        """Kill the simulator if it still runs, then start it again on the same ports."""
        if self._process is not None and self._process.poll() is None:
            self.kill()
        if self._process is not None:
            self.close()
        return self.start()

    # -- per-camera faults -----------------------------------------------------------------------

    def stop(self, camera: str) -> CameraStatus:
        """Close the camera's connections; later requests get 503 Service Unavailable."""
        return self._act(camera, CameraAction.STOP)

    def freeze(self, camera: str) -> CameraStatus:
        """Hang the camera: connections stay open, no media, requests unanswered."""
        return self._act(camera, CameraAction.FREEZE)

    def resume(self, camera: str) -> CameraStatus:
        return self._act(camera, CameraAction.RESUME)

    def rtp_jump(self, camera: str) -> CameraStatus:
        """Its RTP timestamps jump (a new encoder base), the connection stays open."""
        return self._act(camera, CameraAction.RTP_JUMP)

    # -- scene cameras (Picture.SCENE / NOISY_SCENE) -------------------------------------------

    def object_start(self, camera: str) -> CameraStatus:
        """The object appears (or moves on from where it stopped) and moves across, bouncing."""
        return self._act(camera, CameraAction.OBJECT_START)

    def object_stop(self, camera: str) -> CameraStatus:
        """The object stops where it is and stays there."""
        return self._act(camera, CameraAction.OBJECT_STOP)

    def object_remove(self, camera: str) -> CameraStatus:
        """The object disappears."""
        return self._act(camera, CameraAction.OBJECT_REMOVE)

    def brightness(self, camera: str, level: float) -> CameraStatus:
        """The whole picture's brightness steps to ``level`` (-1 black .. 0 as drawn .. 1 white)
        from the next frame on."""
        query = urlencode({"level": repr(float(level))})
        path = f"/cameras/{camera}/{CameraAction.BRIGHTNESS.value}?{query}"
        return CameraStatus.from_json(self._request("POST", path))

    def status(self) -> dict[str, CameraStatus]:
        data = self._request("GET", "/cameras")
        return {c["name"]: CameraStatus.from_json(c) for c in data["cameras"]}

    def _act(self, camera: str, action: CameraAction) -> CameraStatus:
        return CameraStatus.from_json(self._request("POST", f"/cameras/{camera}/{action.value}"))

    def _request(self, method: str, path: str, timeout_s: float = 5.0) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.control_port}{path}"
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                result: dict[str, Any] = json.load(response)
                return result
        except urllib.error.HTTPError as exc:
            raise SimulatorProcessError(f"{method} {path}: {exc.code} {exc.read()!r}") from exc
        except OSError as exc:
            raise SimulatorProcessError(f"{method} {path}: {exc}") from exc

    # -- addresses and output --------------------------------------------------------------------

    @property
    def info(self) -> ReadyInfo:
        if self._info is None:
            raise SimulatorProcessError("simulator not started")
        return self._info

    @property
    def pid(self) -> int:
        return self._running_or_last().pid

    @property
    def port(self) -> int:
        return self.info.port

    @property
    def control_port(self) -> int:
        return self.info.control_port

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.info.cameras)

    def camera(self, name: str) -> CameraSpec:
        """What the running simulator serves as ``name`` (codec, audio, transports)."""
        for spec in self.info.cameras:
            if spec.name == name:
                return spec
        raise SimulatorProcessError(f"no camera {name!r}; cameras: {self.camera_names}")

    @property
    def args(self) -> tuple[str, ...]:
        """The simulator's command-line options (without ``--port``/``--control-port``)."""
        return tuple(self._args)

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def url(self, camera: str, with_auth: bool = True) -> str:
        """``rtsp://[user:pass@]127.0.0.1:PORT/camera``: credentials only if ``with_auth``."""
        credentials = ""
        if with_auth and self.auth is not None:
            credentials = f"{quote(self.auth[0], safe='')}:{quote(self.auth[1], safe='')}@"
        return f"rtsp://{credentials}{self.info.address}:{self.port}/{camera}"

    def output(self) -> str:
        """Everything the simulator printed so far (stdout and stderr; last lines of each run)."""
        current = [
            *(self._stdout.tail if self._stdout else ()),
            *(self._stderr.tail if self._stderr else ()),
        ]
        return "\n".join([*self._history, *current])

    def _stderr_tail(self) -> str:
        return "\n".join(self._stderr.tail) if self._stderr is not None else ""

    def _collect_history(self) -> None:
        for reader in (self._stdout, self._stderr):
            if reader is not None:
                self._history.extend(reader.tail)
        self._stdout = self._stderr = None

    def _running(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            raise SimulatorProcessError("simulator is not running")
        return self._process

    def _running_or_last(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise SimulatorProcessError("simulator not started")
        return self._process


_PICTURE_RANK = {Picture.PATTERN: 0, Picture.SCENE: 1, Picture.NOISY_SCENE: 2}
_PICTURE_OPTION = {Picture.PATTERN: "", Picture.SCENE: "--scene", Picture.NOISY_SCENE: "--noise"}


def _picture_args(name: str | None, picture: Picture) -> list[str]:
    """``--scene``/``--noise`` for every camera (``name`` None) or ``--scene=NAME``."""
    option = _PICTURE_OPTION[picture]
    if not option:
        return []
    return [option] if name is None else [f"{option}={name}"]


@atexit.register
def _close_leftovers() -> None:
    for simulator in list(_LIVE):
        simulator.close(timeout_s=2.0)
