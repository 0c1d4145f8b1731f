from __future__ import annotations

from collections.abc import Iterator

import pytest

from nvr_gstreamer.core.redact import forget_secrets


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    """Each test starts with no registered secrets, as a new process would."""
    forget_secrets()
    yield
    forget_secrets()
