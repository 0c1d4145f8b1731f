"""Firefox for the web app's tests: Debian's ``firefox-esr``, headless, driven over its own
Marionette protocol (``marionette-driver``, Mozilla's client). Playwright's Firefox is a
patched build and geckodriver a separate download, neither of which can be fetched here;
Marionette is built into every Firefox."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["Firefox"]

# Prefs of the throwaway profile: video plays without a click, nothing phones home.
_PREFS = {
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "browser.aboutwelcome.enabled": False,
    "network.captive-portal-service.enabled": False,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Firefox:
    def __init__(self) -> None:
        binary = shutil.which("firefox-esr") or shutil.which("firefox")
        if binary is None:
            raise RuntimeError("Firefox is not installed (Debian: firefox-esr): run scripts/setup")
        self.profile = Path(tempfile.mkdtemp(prefix="nvr-firefox-"))
        self.port = _free_port()
        prefs = {**_PREFS, "marionette.port": self.port}
        lines = [f"user_pref({_js(k)}, {_js(v)});" for k, v in prefs.items()]
        (self.profile / "user.js").write_text("\n".join(lines) + "\n")
        self._proc = subprocess.Popen(
            [binary, "--headless", "--marionette", "--no-remote", "--profile", str(self.profile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from marionette_driver.marionette import Marionette

        self.client: Any = Marionette(host="127.0.0.1", port=self.port, startup_timeout=60)
        self.client.start_session()
        self.client.timeout.script = 60

    def goto(self, url: str) -> None:
        self.client.navigate(url)

    def run(self, script: str, *args: object) -> Any:
        """``script`` (a function body; its arguments are ``arguments``) in the page itself."""
        return self.client.execute_script(script, script_args=list(args), sandbox=None)

    def run_async(self, function: str, *args: object) -> Any:
        """An async ``function`` (JS source) called with ``args``; what it resolves to."""
        body = (
            f"const f = {function};\n"
            "const done = arguments[arguments.length - 1];\n"
            "f(...Array.from(arguments).slice(0, -1)).then(done, (e) => done({error: String(e)}));"
        )
        return self.client.execute_async_script(body, script_args=list(args), sandbox=None)

    def wait(self, script: str, timeout_s: float, what: str) -> Any:
        """Poll ``script`` until it returns something true; that value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.run(script)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            time.sleep(0.1)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # gone already? it is stopped below either way
            self.client.delete_session()
        self._proc.terminate()
        try:
            self._proc.wait(15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


def _js(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value) + '"'
