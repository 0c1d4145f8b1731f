"""WebKit for the web app's tests: Debian's WebKitGTK (Safari's engine; its MiniBrowser),
driven by WebDriver (``WebKitWebDriver`` from ``webkit2gtk-driver``, Selenium's client), on a
virtual screen of its own (Xvfb: this MiniBrowser has no headless mode). Not Safari itself —
WebKitGTK plays media through GStreamer where Safari uses AVFoundation — but the same engine
for the page's JavaScript, DOM and Media Source Extensions (ManagedMediaSource included)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["WebKit"]

MINIBROWSER = Path("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")
DRIVER = "/usr/bin/WebKitWebDriver"


class WebKit:
    def __init__(self) -> None:
        if not MINIBROWSER.exists() or shutil.which("Xvfb") is None:
            raise RuntimeError(
                "WebKitGTK's MiniBrowser or Xvfb is missing (Debian: webkit2gtk-driver, xvfb):"
                " run scripts/setup"
            )
        read, write = os.pipe()
        self._xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as f:
            display = f.readline().strip()
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service

        options = Options()
        options.binary_location = str(MINIBROWSER)
        options.add_argument("--automation")
        env = {**os.environ, "DISPLAY": f":{display}"}
        self.driver: Any = webdriver.WebKitGTK(
            options=options, service=Service(executable_path=DRIVER, env=env)
        )
        self.driver.set_script_timeout(60)

    def goto(self, url: str) -> None:
        self.driver.get(url)

    def run(self, script: str, *args: object) -> Any:
        """``script`` (a function body; its arguments are ``arguments``) in the page."""
        return self.driver.execute_script(script, *args)

    def run_async(self, function: str, *args: object) -> Any:
        """An async ``function`` (JS source) called with ``args``; what it resolves to."""
        body = (
            f"const f = {function};\n"
            "const done = arguments[arguments.length - 1];\n"
            "f(...Array.from(arguments).slice(0, -1)).then(done, (e) => done({error: String(e)}));"
        )
        return self.driver.execute_async_script(body, *args)

    def wait(self, script: str, timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.run(script)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            time.sleep(0.1)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # gone already? Xvfb goes below either way
            self.driver.quit()
        self._xvfb.terminate()
        try:
            self._xvfb.wait(10)
        except subprocess.TimeoutExpired:
            self._xvfb.kill()
            self._xvfb.wait(5)
