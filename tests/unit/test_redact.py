from __future__ import annotations

import io
import logging

import pytest

from nvr_gstreamer.core.logsetup import camera_logger, setup_logging
from nvr_gstreamer.core.redact import redact, register_secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://user:pass@host/x", "rtsp://user:***@host/x"),
        ("rtsps://admin:p@ss@10.0.0.2:554/s", "rtsps://admin:***@10.0.0.2:554/s"),
        (
            "Could not open resource (rtsp://a:b1@h/x) gstrtspsrc.c(123): rtsp://c:d2@g/y",
            "Could not open resource (rtsp://a:***@h/x) gstrtspsrc.c(123): rtsp://c:***@g/y",
        ),
        ("rtsp://host:554/cam1", "rtsp://host:554/cam1"),
        ("rtsp://user@host/x", "rtsp://user@host/x"),
        ("no url here: a:b@c", "no url here: a:b@c"),
    ],
)
def test_url_passwords_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_registered_secret_is_masked_anywhere() -> None:
    register_secret("hunter22")
    assert redact("auth failed for hunter22 twice") == "auth failed for *** twice"


def _capture() -> io.StringIO:
    stream = io.StringIO()
    setup_logging(logging.DEBUG, stream=stream)
    return stream


def test_log_lines_carry_camera_and_hide_passwords_in_args_and_tracebacks() -> None:
    stream = _capture()
    log = camera_logger(logging.getLogger("nvr_gstreamer.test"), "cam7")
    register_secret("s3cr3t-pw")
    log.info("connecting to %s", "rtsp://admin:s3cr3t-pw@cam/1")
    try:
        raise RuntimeError("gst said: rtsp://admin:s3cr3t-pw@cam/1 refused (s3cr3t-pw)")
    except RuntimeError:
        log.exception("pipeline failed")
    logging.getLogger("nvr_gstreamer.other").warning("no camera here")
    out = stream.getvalue()
    assert "s3cr3t-pw" not in out
    assert "[cam7] connecting to rtsp://admin:***@cam/1" in out
    assert "RuntimeError: gst said: rtsp://admin:***@cam/1 refused (***)" in out
    assert "[-] no camera here" in out
