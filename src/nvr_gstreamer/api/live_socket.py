"""A live viewer's socket, handed to the camera's live sink so that no Python runs per frame.

Once the browser's WebSocket is open, the sink (native/nvrlivesink.c) writes the server's
frames straight to the viewer's TCP socket; the web server only waits for the browser to close
it. That is safe only where nothing else writes to that socket meanwhile, so a socket is handed
over only by uvicorn's sans-I/O WebSocket protocol (the server is configured to use it), whose
only writes of its own are keep-alive pings (stopped here for this socket) and the closing
handshake, after the browser has closed its end; never through TLS (Python encrypts there), and
never with bytes of the handshake still unsent.

Elsewhere (:func:`pass_through`), the sink writes into one end of a socket pair, and the web
server reads the frames back and sends them as messages: the same stream, at Python's cost per
frame.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections import Counter
from typing import Any

from fastapi import WebSocket

from nvr_gstreamer.camera.ws_frames import TEXT, FrameReader


class LiveViewers:
    """How many browsers watch each camera live, and how: ``socket`` (the sink writes to the
    browser's socket) or ``pass_through`` (through Python). Any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def change(self, camera_id: str, via: str, by: int) -> None:
        with self._lock:
            self._counts[(camera_id, via)] += by

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)


def handed_socket(ws: WebSocket, silent_s: float) -> int | None:
    """A duplicate of the viewer's socket for the sink to write to, or None where that is not
    safe (then use :func:`pass_through`). A peer that goes silent for ``silent_s`` (nothing
    acknowledged while frames go out, or no answer to keep-alive probes while none do) is
    dropped by the kernel: the sink's next write fails and the server sees the socket close."""
    # The ASGI receive callable is a bound method of the connection's protocol object.
    protocol: Any = getattr(ws._receive, "__self__", None)
    stop_keepalive = getattr(protocol, "stop_keepalive", None)
    transport = getattr(protocol, "transport", None)
    if not callable(stop_keepalive) or not isinstance(transport, asyncio.Transport):
        return None
    if transport.get_extra_info("sslcontext") is not None or transport.get_write_buffer_size():
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM:
        return None
    stop_keepalive()  # the WebSocket pings; TCP's own keep-alive takes over
    watch_peer(sock, silent_s)
    return os.dup(sock.fileno())


def watch_peer(sock: socket.socket, silent_s: float) -> None:
    """TCP_USER_TIMEOUT and keep-alive probes on ``sock``, so a peer that vanished without a
    word (no FIN, no RST) is noticed after about ``silent_s``, not TCP's default 15 minutes."""
    probes = 3
    interval = max(1, int(silent_s / (probes + 1)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(silent_s * 1000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)


def socket_pair() -> tuple[socket.socket, int]:
    """(the web server's end, the descriptor for the sink)."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    return ours, theirs.detach()


async def pass_through(ws: WebSocket, ours: socket.socket) -> None:
    """Send what the sink writes into ``ours`` on as WebSocket messages, until it stops. A slow
    browser holds this up, the pair fills, and the sink lets the viewer skip ahead."""
    loop = asyncio.get_running_loop()
    reader = FrameReader()
    while data := await loop.sock_recv(ours, 1 << 16):
        for message in reader.feed(data):
            if message.opcode == TEXT:
                await ws.send_text(message.text)
            else:
                await ws.send_bytes(message.data)
