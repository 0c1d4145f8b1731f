"""Localhost HTTP control endpoint of the simulator (stdlib ``http.server`` in a thread).

* ``GET /cameras`` -> ``200 {"cameras": [{"name", "state", "codec", "audio", "transports",
  "clients", "scene"}, ...]}``
* ``GET /cameras/{name}`` -> ``200 {"name", "state", "codec", "audio", "transports", "clients",
  "scene"}``; ``scene`` is null for a pattern camera, else ``{"object": "absent"|"moving"|"still",
  "brightness": -1..1, "noise": bool, "object_box": [x, y, w, h] or null}``
* ``POST /cameras/{name}/stop|freeze|resume|rtp-jump`` -> ``200`` with the camera's new status
* scene cameras: ``POST /cameras/{name}/object-start|object-stop|object-remove`` and
  ``POST /cameras/{name}/brightness?level=L`` (L in -1..1) -> ``200`` with the new status

Unknown camera: 404; unknown action, or a missing or bad level: 400; a scene command for a
pattern camera: 409; other methods: 405. Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from nvr_gstreamer.simulator.model import CameraAction, CameraStatus
from nvr_gstreamer.simulator.scene import NotASceneCameraError, check_brightness

logger = logging.getLogger(__name__)


class CameraControl(Protocol):
    """What the endpoint drives; :class:`~nvr_gstreamer.simulator.server.Simulator` is one."""

    @property
    def camera_names(self) -> tuple[str, ...]: ...

    def status(self) -> list[CameraStatus]: ...

    def camera_status(self, name: str) -> CameraStatus: ...

    def apply(self, name: str, action: CameraAction) -> CameraStatus: ...

    def set_brightness(self, name: str, level: float) -> CameraStatus: ...


class _ControlHTTPServer(HTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], control: CameraControl) -> None:
        super().__init__(address, _Handler)
        self.control = control


class _Handler(BaseHTTPRequestHandler):
    server: _ControlHTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        parts = self._path_parts()
        control = self.server.control
        if parts == ["cameras"]:
            self._reply(HTTPStatus.OK, {"cameras": [s.to_json() for s in control.status()]})
        elif len(parts) == 2 and parts[0] == "cameras":
            if parts[1] not in control.camera_names:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no camera {parts[1]!r}"})
            else:
                self._reply(HTTPStatus.OK, control.camera_status(parts[1]).to_json())
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def do_POST(self) -> None:
        self._drain_body()
        parts = self._path_parts()
        control = self.server.control
        if len(parts) != 3 or parts[0] != "cameras":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        name, action_text = parts[1], parts[2]
        if name not in control.camera_names:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no camera {name!r}"})
            return
        try:
            action = CameraAction(action_text)
        except ValueError:
            allowed = ", ".join(a.value for a in CameraAction)
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"action must be one of {allowed}"})
            return
        try:
            if action is CameraAction.BRIGHTNESS:
                level = self._level()
                if level is None:
                    return
                status = control.set_brightness(name, level)
            else:
                status = control.apply(name, action)
        except NotASceneCameraError as exc:
            self._reply(HTTPStatus.CONFLICT, {"error": str(exc)})
            return
        self._reply(HTTPStatus.OK, status.to_json())

    def _level(self) -> float | None:
        """The ``level`` query parameter in -1..1; None (and a 400 sent) if missing or bad."""
        values = parse_qs(urlsplit(self.path).query).get("level", [])
        try:
            if len(values) != 1:
                raise ValueError("brightness needs one level=-1..1, e.g. ?level=0.3")
            return check_brightness(float(values[0]))
        except ValueError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return None

    def do_PUT(self) -> None:
        self._method_not_allowed()

    def do_DELETE(self) -> None:
        self._method_not_allowed()

    def _method_not_allowed(self) -> None:
        self._drain_body()
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use GET or POST"})

    def _path_parts(self) -> list[str]:
        path = self.path.split("?", 1)[0]
        return [p for p in path.split("/") if p]

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _reply(self, status: HTTPStatus, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("control %s: " + format, self.client_address[0], *args)


class ControlServer:
    """Serves the control endpoint on ``address:port`` (port 0: OS-picked) in a daemon thread."""

    def __init__(self, control: CameraControl, address: str = "127.0.0.1", port: int = 0) -> None:
        self._httpd = _ControlHTTPServer((address, port), control)  # binds now; may raise OSError
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="simulator-control", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info("control endpoint on http://127.0.0.1:%d/cameras", self.port)

    def close(self) -> None:
        """Stop serving and release the port. Idempotent."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()
