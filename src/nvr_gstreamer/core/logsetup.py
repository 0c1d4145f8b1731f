"""One logging set-up for the whole program.

Every line carries the camera it is about (``[cam1]``, or ``[-]`` for lines about no camera)
and passes through :func:`nvr_gstreamer.core.redact.redact` after formatting, so a password
cannot reach the log through a message, an argument, a GStreamer debug string or a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

from nvr_gstreamer.core.redact import redact

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(camera)s] %(message)s"
# Under systemd the journal stamps each line itself and reads its priority from "<N>".
JOURNAL_FORMAT = "%(name)s [%(camera)s] %(message)s"
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def journal_priority(levelno: int) -> int:
    """syslog priority of a logging level (debug 7 … critical 2)."""
    return next((prio for level, prio in _PRIORITIES if levelno >= level), 7)


def writes_to_journal(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Whether ``stream`` is the journal stream systemd connected us to (``$JOURNAL_STREAM``
    names its device and inode), not a pipe or terminal the service passed on."""
    value = env.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


class CameraContextFilter(logging.Filter):
    """Gives every record a ``camera`` attribute, ``-`` when it is about no camera."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "camera"):
            record.camera = "-"
        return True


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks passwords in the whole line, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JournalFormatter(RedactingFormatter):
    """No timestamp, a priority prefix on every line (a traceback's lines too)."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{journal_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


class CameraLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose every line names one camera."""

    def __init__(self, logger: logging.Logger, camera_id: str) -> None:
        super().__init__(logger, {"camera": camera_id})

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra: Mapping[str, object] = kwargs.get("extra") or {}
        kwargs["extra"] = {**extra, **(self.extra or {})}
        return msg, kwargs


def camera_logger(logger: logging.Logger, camera_id: str) -> CameraLogger:
    return CameraLogger(logger, camera_id)


def setup_logging(level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Install the program's single handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_nvr_handler", False):
            root.removeHandler(handler)
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler._nvr_handler = True  # type: ignore[attr-defined]
    handler.addFilter(CameraContextFilter())
    if writes_to_journal(out, os.environ):
        handler.setFormatter(JournalFormatter(JOURNAL_FORMAT))
    else:
        handler.setFormatter(RedactingFormatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
