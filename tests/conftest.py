from __future__ import annotations

import os
from collections.abc import Iterator

# Desktop tests draw offscreen (no display in CI); set before any QApplication exists.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest
from hypothesis import settings

from nvr_gstreamer.core.redact import forget_secrets

# Tests never write into the repository: no example database in ./.hypothesis (cases that
# hypothesis found are pinned with @example instead), and no ./.pytest_cache (pyproject).
settings.register_profile("nvr", database=None)
settings.load_profile("nvr")


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    """Each test starts with no registered secrets, as a new process would."""
    forget_secrets()
    yield
    forget_secrets()
