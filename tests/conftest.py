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
from nvr_gstreamer.testing.postgres import PostgresServer

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


class CatalogUrls:
    """New empty catalogs by backend name, for tests that run on both (hypothesis tests take
    one per example). The PostgreSQL server starts at the first use, once per test run."""

    def __init__(self) -> None:
        self.server: PostgresServer | None = None

    def new(self, backend: str) -> str | None:
        """None: the storage root's SQLite file; else the URL of an empty PostgreSQL schema."""
        if backend == "sqlite":
            return None
        if self.server is None:
            self.server = PostgresServer()
            self.server.start()
        return self.server.fresh_url()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@pytest.fixture(scope="session")
def catalog_urls() -> Iterator[CatalogUrls]:
    urls = CatalogUrls()
    yield urls
    urls.close()


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, catalog_urls: CatalogUrls) -> str | None:
    """The same catalog test on both backends: None is the storage root's SQLite file, else
    the URL of an empty schema on the test run's PostgreSQL server."""
    return catalog_urls.new(str(request.param))
