from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from nvr_gstreamer.core.logsetup import setup_logging


@pytest.fixture
def nvr_log() -> Iterator[io.StringIO]:
    """The program's own log set-up, writing into a buffer the test can read."""
    stream = io.StringIO()
    setup_logging(logging.INFO, stream=stream)
    yield stream
    setup_logging(logging.WARNING)
