from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

# Desktop tests draw offscreen (no display in CI); set before any QApplication exists.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from nvr_gstreamer.core.redact import forget_secrets

# Tests never write into the repository: hypothesis keeps its files in a temporary folder,
# with no example database (cases it found are pinned with @example instead), and there is
# no ./.pytest_cache (pyproject).
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="nvr-hypothesis-"))
settings.register_profile("nvr", database=None)
settings.load_profile("nvr")


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    """Each test starts with no registered secrets, as a new process would."""
    forget_secrets()
    yield
    forget_secrets()
