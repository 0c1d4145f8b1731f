"""A cheap reachability check for a camera that is away: one RTSP DESCRIBE request.

A TCP connect alone is not enough: a hung camera's kernel still accepts connections (into the
listen backlog) while the camera answers nothing. OPTIONS is not enough either: an RTSP server
whose stream is unavailable still answers it. A camera counts as reachable when it answers
DESCRIBE for its stream with any status but a 5xx (401 means it is there and wants
credentials, which the pipeline has; the probe never sends them).
"""

from __future__ import annotations

import logging
import socket
import ssl
from urllib.parse import urlsplit

from nvr_gstreamer.core.redact import strip_credentials

logger = logging.getLogger(__name__)

DEFAULT_RTSP_PORT = 554
DEFAULT_RTSPS_PORT = 322


def probe_rtsp(url: str, timeout_s: float) -> bool:
    """True when the camera at ``url`` answers an RTSP DESCRIBE request in time."""
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "rtsps"
    port = parts.port or (DEFAULT_RTSPS_PORT if secure else DEFAULT_RTSP_PORT)
    host = parts.hostname
    if not host:
        return False
    request = (
        f"DESCRIBE {strip_credentials(url)} RTSP/1.0\r\nCSeq: 1\r\n"
        "Accept: application/sdp\r\nUser-Agent: nvr-probe\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw:
            raw.settimeout(timeout_s)
            sock: socket.socket = raw
            if secure:
                tls = ssl.create_default_context()
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
                sock = tls.wrap_socket(raw, server_hostname=host)
            sock.sendall(request)
            reply = sock.recv(256)
    except (OSError, ssl.SSLError):
        return False
    status_line = reply.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"RTSP/"):
        return False
    try:
        status = int(status_line[1])
    except ValueError:
        return False
    return status < 500
