"""The systemd notify protocol (sd_notify(3)): one datagram per message to ``$NOTIFY_SOCKET``.

No dependency: the protocol is a unix datagram socket and ``KEY=VALUE`` lines. Without
``NOTIFY_SOCKET`` (not started by systemd with ``Type=notify``) every call is a silent no-op.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

logger = logging.getLogger(__name__)


def socket_address(value: str) -> str | bytes:
    """``$NOTIFY_SOCKET`` as a socket address: a path, or ``@name`` in the abstract namespace."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def watchdog_interval_s(env: Mapping[str, str], pid: int) -> float | None:
    """The watchdog timeout systemd set for this process (``WATCHDOG_USEC``, and
    ``WATCHDOG_PID`` when given must be ours), None when there is none."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if owner and (not owner.isdigit() or int(owner) != pid):
        return None
    return int(usec) / 1_000_000


class SdNotifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        value = env.get("NOTIFY_SOCKET", "")
        self._address = socket_address(value) if value else None
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` ("READY=1", "STATUS=…") as one message; False when it did not go."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), self._address)
            return True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("cannot notify systemd at $NOTIFY_SOCKET: %s", exc)
            return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
