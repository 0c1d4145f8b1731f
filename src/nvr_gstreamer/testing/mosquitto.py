"""A throwaway Mosquitto broker for tests, and an MQTT observer client to read what it carries.

::

    with MosquittoBroker() as broker:                     # 127.0.0.1, a free port, anonymous
        broker.kill()                                     # SIGKILL: every connection drops
        broker.restart()                                  # same port again

    MosquittoBroker(users={"nvr": "secret"})              # password file, no anonymous clients

    with MqttObserver(broker.port, "nvr/#") as observer:
        msg = observer.wait_for("nvr/available", b"online", timeout_s=5)

The broker is Debian's ``mosquitto`` run as a child process with its own configuration in a
temporary folder (the system service the package installs is not used), persistence off: a
restarted broker has forgotten every retained message, as a crashed one without a persistence
file would. The child gets ``PR_SET_PDEATHSIG=SIGKILL`` and dies with the test process; it is
also closed at interpreter exit. Readiness is read from its log ("... running"), not polled.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

_PR_SET_PDEATHSIG = 1
_TAIL_LINES = 200
_READY_MARK = " running"  # "1700000000: mosquitto version 2.0.11 running"
_LIVE: set[MosquittoBroker] = set()

_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


class MosquittoError(RuntimeError):
    """Mosquitto is missing, did not start, or died."""


def find_mosquitto() -> str | None:
    """The broker's executable (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class MosquittoBroker:
    """A Mosquitto child process listening on ``host:port`` (``port`` 0: a free one, kept
    across :meth:`restart`). ``users`` (name -> password) turns anonymous access off."""

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ready_timeout_s: float = 10.0,
        executable: str | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self._users = dict(users or {})
        self._ready_timeout_s = ready_timeout_s
        self._executable = executable or find_mosquitto()
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[str] | None = None
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._reader: threading.Thread | None = None

    @property
    def port(self) -> int:
        if not self._port:
            raise MosquittoError("broker not started")
        return self._port

    def start(self) -> MosquittoBroker:
        if self._executable is None:
            raise MosquittoError("mosquitto not found (Debian: apt-get install mosquitto)")
        if self._process is not None and self._process.poll() is None:
            return self
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="nvr-mosquitto-")
        if not self._port:
            self._port = _free_port(self.host)
        conf = self._write_config(Path(self._dir.name))
        self._process = subprocess.Popen(
            [self._executable, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_die_with_parent,
        )
        _LIVE.add(self)
        ready = threading.Event()
        assert self._process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self._process.stdout, ready), name="mosquitto-log", daemon=True
        )
        self._reader.start()
        if not ready.wait(self._ready_timeout_s) or self._process.poll() is not None:
            self.close()
            raise MosquittoError(
                f"mosquitto not ready on {self.host}:{self._port} within "
                f"{self._ready_timeout_s:g} s:\n{self.output()}"
            )
        return self

    def _write_config(self, folder: Path) -> Path:
        lines = [
            f"listener {self._port} {self.host}",
            # As root, mosquitto would switch to the 'mosquitto' user, who cannot read this folder.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "persistence false",
            "log_dest stderr",  # unbuffered: the ready line arrives at once
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if self._users:
            passwords = folder / "passwords"
            passwords.write_text("")
            for name, password in self._users.items():
                subprocess.run(
                    [_mosquitto_passwd(), "-b", str(passwords), name, password],
                    check=True,
                    capture_output=True,
                )
            passwords.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        conf = folder / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def _read(self, stream: IO[str], ready: threading.Event) -> None:
        for line in stream:
            text = line.rstrip("\n")
            self._tail.append(text)
            if _READY_MARK in text:
                ready.set()
        ready.set()  # it exited: start() sees poll() is not None

    def kill(self) -> None:
        """SIGKILL the broker and reap it: every client's connection drops at once."""
        process = self._process
        if process is None or process.poll() is not None:
            raise MosquittoError("mosquitto is not running")
        process.kill()
        process.wait()
        if self._reader is not None:
            self._reader.join(5.0)

    def restart(self) -> MosquittoBroker:
        """Kill the broker if it runs, then start it again on the same port."""
        if self._process is not None and self._process.poll() is None:
            self.kill()
        return self.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and remove its folder. Idempotent."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout_s)
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        _LIVE.discard(self)

    def output(self) -> str:
        """The broker's last log lines."""
        return "\n".join(self._tail)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()


def _mosquitto_passwd() -> str:
    found = shutil.which("mosquitto_passwd") or shutil.which(
        "mosquitto_passwd", path="/usr/sbin:/usr/local/sbin"
    )
    if found is None:
        raise MosquittoError("mosquitto_passwd not found (Debian: apt-get install mosquitto)")
    return found


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class MqttObserver:
    """A second MQTT client that subscribes to ``topics`` and queues every message it gets.

    :meth:`wait_for` waits on that queue (never a sleep); messages it skips on the way stay
    readable in :attr:`seen`.
    """

    def __init__(
        self,
        port: int,
        *topics: str,
        host: str = "127.0.0.1",
        auth: tuple[str, str] | None = None,
        client_id: str = "",
        timeout_s: float = 5.0,
    ) -> None:
        self.seen: list[Received] = []
        self._messages: queue.Queue[Received] = queue.Queue()
        self._subscribed = threading.Event()
        self._topics = topics
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if auth is not None:
            self._client.username_pw_set(*auth)
        self._client.connect_callback()(self._on_connect_cb)
        self._client.subscribe_callback()(self._on_subscribe_cb)
        self._client.message_callback()(self._on_message_cb)
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout_s):
            self.close()
            raise MosquittoError(f"observer not subscribed to {topics} within {timeout_s:g} s")

    def _on_connect_cb(self, client: paho.Client, *_args: Any) -> None:
        if self._topics:
            client.subscribe([(t, 1) for t in self._topics])
        else:
            self._subscribed.set()

    def _on_subscribe_cb(self, *_args: Any) -> None:
        self._subscribed.set()

    def _on_message_cb(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        self._messages.put(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def wait_for(
        self, topic: str, payload: bytes | None = None, timeout_s: float = 5.0
    ) -> Received:
        """The next message on ``topic`` (with ``payload``, if given); MosquittoError after
        ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                msg = self._messages.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                raise MosquittoError(
                    f"no message on {topic} {payload!r} within {timeout_s:g} s; "
                    f"seen: {[(m.topic, m.payload[:60]) for m in self.seen]}"
                ) from None
            self.seen.append(msg)
            if msg.topic == topic and (payload is None or msg.payload == payload):
                return msg

    def wait_for_all(self, topics: Iterable[str], timeout_s: float = 5.0) -> dict[str, Received]:
        """The next message on each of ``topics``, in whatever order they come (a broker sends
        retained messages in its own order, not in the order they were published)."""
        wanted = set(topics)
        deadline = time.monotonic() + timeout_s
        first = len(self.seen)
        got: dict[str, Received] = {}
        while missing := wanted - got.keys():
            topic = min(missing)
            self.wait_for(topic, timeout_s=max(deadline - time.monotonic(), 0.0))
            for msg in self.seen[first:]:
                if msg.topic in wanted:
                    got.setdefault(msg.topic, msg)
        return got

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        """Publish and wait until the broker has it (QoS 1)."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=5.0)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MqttObserver:
        return self

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()


@atexit.register
def _close_leftovers() -> None:
    for broker in list(_LIVE):
        broker.close(timeout_s=2.0)
