"""A cheap reachability check for a camera that is away: one RTSP DESCRIBE request.

A TCP connect alone is not enough: a hung camera's kernel still accepts connections (into the
listen backlog) while the camera answers nothing. OPTIONS is not enough either: an RTSP server
whose stream is unavailable still answers it. A camera counts as reachable when it answers
DESCRIBE for its stream with any status but a 5xx (401 means it is there and wants
credentials, which the pipeline has; the probe never sends them).

The one case where a connection alone is news: the port was closed at the previous probe. A
server that listens again is the camera's RTSP server back (restarted, network back), so the
supervisor then asks only for a connection (``connect_only``) and connects the pipeline at once.
"""

from __future__ import annotations

import logging
import socket
import ssl
from urllib.parse import urlsplit

from nvr_gstreamer.camera.supervisor import Reach
from nvr_gstreamer.core.redact import strip_credentials

logger = logging.getLogger(__name__)

DEFAULT_RTSP_PORT = 554
DEFAULT_RTSPS_PORT = 322


def probe_rtsp(url: str, timeout_s: float) -> bool:
    """True when the camera at ``url`` answers an RTSP DESCRIBE request in time."""
    return probe_camera(url, timeout_s) is Reach.ANSWERS


def probe_camera(url: str, timeout_s: float, connect_only: bool = False) -> Reach:
    """How far the camera at ``url`` gets: no connection, a connection, a DESCRIBE answer.

    ``connect_only`` stops after the TCP connection (and TLS for rtsps): a port that was closed
    and accepts again is news enough, and costs the camera no request.
    """
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "rtsps"
    port = parts.port or (DEFAULT_RTSPS_PORT if secure else DEFAULT_RTSP_PORT)
    host = parts.hostname
    if not host:
        return Reach.CLOSED
    request = (
        f"DESCRIBE {strip_credentials(url)} RTSP/1.0\r\nCSeq: 1\r\n"
        "Accept: application/sdp\r\nUser-Agent: nvr-probe\r\n\r\n"
    ).encode()
    try:
        raw = socket.create_connection((host, port), timeout=timeout_s)
    except OSError:
        return Reach.CLOSED
    try:
        with raw:
            if connect_only and not secure:
                return Reach.OPEN
            raw.settimeout(timeout_s)
            sock: socket.socket = raw
            if secure:
                tls = ssl.create_default_context()
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
                sock = tls.wrap_socket(raw, server_hostname=host)
                if connect_only:
                    return Reach.OPEN
            sock.sendall(request)
            reply = sock.recv(256)
    except (OSError, ssl.SSLError):
        return Reach.OPEN
    status_line = reply.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"RTSP/"):
        return Reach.OPEN
    try:
        status = int(status_line[1])
    except ValueError:
        return Reach.OPEN
    return Reach.ANSWERS if status < 500 else Reach.OPEN
