"""The reachability probe against tiny local servers: what counts as "the camera is back"."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from nvr_gstreamer.camera.probe import probe_camera, probe_rtsp
from nvr_gstreamer.camera.supervisor import Reach


@contextmanager
def server(reply: bytes | None) -> Iterator[tuple[int, list[bytes]]]:
    """Accepts one connection; answers ``reply`` (or nothing, like a hung camera)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    seen: list[bytes] = []
    done = threading.Event()

    def run() -> None:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            seen.append(conn.recv(1024))
            if reply is not None:
                conn.sendall(reply)
            done.wait(2)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    try:
        yield sock.getsockname()[1], seen
    finally:
        done.set()
        sock.close()
        th.join(2)


def test_answering_camera_is_reachable_and_never_sees_the_password() -> None:
    with server(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n") as (port, seen):
        assert probe_rtsp(f"rtsp://admin:s3cret@127.0.0.1:{port}/cam1", 1.0)
    assert seen[0].startswith(f"DESCRIBE rtsp://127.0.0.1:{port}/cam1 RTSP/1.0".encode())
    assert b"s3cret" not in seen[0]


def test_unauthorized_answer_counts_as_reachable() -> None:
    with server(b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\r\n") as (port, _):
        assert probe_rtsp(f"rtsp://127.0.0.1:{port}/cam1", 1.0)


def test_service_unavailable_is_not_reachable() -> None:
    with server(b"RTSP/1.0 503 Service Unavailable\r\nCSeq: 1\r\n\r\n") as (port, _):
        assert not probe_rtsp(f"rtsp://127.0.0.1:{port}/cam1", 1.0)


def test_silent_camera_is_not_reachable() -> None:
    with server(None) as (port, _):
        assert not probe_rtsp(f"rtsp://127.0.0.1:{port}/cam1", 0.3)


def test_refused_connection_is_not_reachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not probe_rtsp(f"rtsp://127.0.0.1:{port}/cam1", 0.5)


def test_not_rtsp_is_not_reachable() -> None:
    with server(b"HTTP/1.1 200 OK\r\n\r\n") as (port, _):
        assert not probe_rtsp(f"rtsp://127.0.0.1:{port}/cam1", 1.0)


def test_reach_tells_closed_from_open_from_answering() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert probe_camera(f"rtsp://127.0.0.1:{closed}/cam1", 0.5) is Reach.CLOSED
    assert probe_camera(f"rtsp://127.0.0.1:{closed}/cam1", 0.5, connect_only=True) is Reach.CLOSED
    with server(b"RTSP/1.0 503 Service Unavailable\r\nCSeq: 1\r\n\r\n") as (port, _):
        assert probe_camera(f"rtsp://127.0.0.1:{port}/cam1", 1.0) is Reach.OPEN
    with server(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n") as (port, _):
        assert probe_camera(f"rtsp://127.0.0.1:{port}/cam1", 1.0) is Reach.ANSWERS


def test_connect_only_sends_nothing() -> None:
    with server(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n") as (port, seen):
        assert probe_camera(f"rtsp://127.0.0.1:{port}/cam1", 1.0, connect_only=True) is Reach.OPEN
    assert seen in ([], [b""])
