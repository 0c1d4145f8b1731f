from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from nvr_gstreamer.core.logsetup import setup_logging
from nvr_gstreamer.testing.firefox import Firefox
from nvr_gstreamer.testing.webkit import WebKit


@pytest.fixture
def nvr_log() -> Iterator[io.StringIO]:
    """The program's own log set-up, writing into a buffer the test can read."""
    stream = io.StringIO()
    setup_logging(logging.INFO, stream=stream)
    yield stream
    setup_logging(logging.WARNING)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (its own browser download cannot be
    fetched here); video plays without a click."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        yield b
        b.close()


@pytest.fixture(scope="module", params=["firefox", "webkit"])
def other(request: pytest.FixtureRequest) -> Iterator[Firefox | WebKit]:
    """The other engines, one after the other: Debian's firefox-esr headless over Marionette,
    and WebKitGTK (Safari's engine) over WebDriver on a private Xvfb."""
    browser: Firefox | WebKit = Firefox() if request.param == "firefox" else WebKit()
    yield browser
    browser.close()
