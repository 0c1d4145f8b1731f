"""The web app on the API's port: pages, login, and two WebSockets.

* ``/`` the live grid (``web/static``), ``/recordings`` the timeline and playback, ``/login``
  when a token is required.
* ``POST /api/login`` exchanges the token for an HttpOnly, SameSite=Strict session cookie (the
  token never appears in a URL, a page or a log line); ``POST /api/logout`` ends it.
* ``/api/ws/events``: every camera's status as JSON, at once and on every change (no polling):
  a list of cameras; other messages are objects with a ``type`` (``export``: a job changed).
* ``/api/ws/live/{camera}``: the camera's live video as fragmented MP4 for Media Source
  Extensions: a JSON ``{"type": "init", "codec": ...}`` text message, then binary init segment
  and fragments, written by the camera's live sink in C (:mod:`nvr_gstreamer.api.live_socket`).
  A viewer whose socket cannot keep up skips to the next keyframe.
* ``/api/ws/webrtc/{camera}``: the signalling of a WebRTC view of the camera (H.264 passed
  through; :mod:`nvr_gstreamer.camera.webrtc` has the messages). The server offers; an
  ``unsupported`` or ``error`` message ends the session (the page then uses the MSE socket).
  A message that is not JSON of a known type closes the socket with 4400.

Access: on loopback without ``api.token`` everything is open. With a token, every page, API
call and WebSocket needs the bearer token or a session; requests carrying a session from a
browser must come from this origin (``Origin``), so another site cannot act for the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Coroutine
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from nvr_gstreamer.api.events import motion_message
from nvr_gstreamer.api.exports import export_message
from nvr_gstreamer.api.live_socket import (
    LiveViewers,
    handed_socket,
    pass_through,
    socket_pair,
)
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.status import CameraStatus, EngineEvent, MotionEvent
from nvr_gstreamer.camera.webrtc import (
    BadMessage,
    Ended,
    ServerSignal,
    parse_browser_message,
    signal_json,
)
from nvr_gstreamer.engine.exports import ExportChanged

logger = logging.getLogger(__name__)

SESSION_COOKIE = "nvr_session"
_STATIC = (
    "app.js",
    "logic.js",
    "frame_stamp.js",
    "style.css",
    "webrtc.js",
    "recordings.js",
    "timeline.js",
)


class LoginIn(BaseModel):
    token: str


class Sessions:
    """Sessions of logged-in browsers (in memory: a restart logs everybody out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    def new(self) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._ids.add(sid)
        return sid

    def valid(self, sid: str | None) -> bool:
        with self._lock:
            return sid is not None and sid in self._ids

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._ids.discard(sid or "")


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a browser's ``Origin`` is this server (``host`` as the browser addressed it)."""
    if origin is None or host is None:
        return origin is None  # not a browser's cross-site request
    return origin.split("://", 1)[-1] == host


class Access:
    """Who may do what, in one place (HTTP and WebSocket alike)."""

    def __init__(self, token: str | None, sessions: Sessions) -> None:
        self.token = token
        self.sessions = sessions

    def allowed(self, headers: Any, cookies: Any, changes_state: bool) -> bool:
        if self.token is None:
            return True
        bearer = headers.get("authorization", "")
        if hmac.compare_digest(bearer.encode(), f"Bearer {self.token}".encode()):
            return True
        if not self.sessions.valid(cookies.get(SESSION_COOKIE)):
            return False
        return not changes_state or same_origin(headers.get("origin"), headers.get("host"))

    def check(self, request: Request) -> None:
        changes = request.method not in ("GET", "HEAD", "OPTIONS")
        if not self.allowed(request.headers, request.cookies, changes):
            raise HTTPException(401, "log in (or send the bearer token)")


async def first_to_end(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutines`` until one ends (or fails: the browser went away); cancel the rest."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task


async def closed(ws: WebSocket) -> None:
    """Until the browser closes ``ws``, or the server does as it shuts down (what the page
    sends on a sending-only socket is ignored)."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def relay(ws: WebSocket, upstream: str, token: str | None) -> None:
    """Pass another node's WebSocket through, message by message, until either side ends.
    (The nodes of a cluster share the API token, when there is one.)"""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with ws_connect(
            upstream, additional_headers=headers, max_size=None, open_timeout=5
        ) as up:

            async def down() -> None:
                async for message in up:
                    if isinstance(message, bytes):
                        await ws.send_bytes(message)
                    else:
                        await ws.send_text(message)

            await first_to_end(down(), closed(ws))
    except (OSError, TimeoutError, WebSocketException) as exc:
        logger.warning("live view relayed from %s failed: %s", upstream, exc)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(code=1011, reason="the recording node's live view is unreachable")


def _static(name: str) -> str:
    return resources.files("nvr_gstreamer.web").joinpath("static", name).read_text()


def add_web(
    api: FastAPI,
    app: NvrApp,
    access: Access,
    camera_json: Any,
    live_viewers: LiveViewers,
) -> None:
    """The pages and WebSockets; ``camera_json(status)`` renders a camera as the API does."""

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> Response:
        if not access.allowed(request.headers, request.cookies, False):
            return RedirectResponse("/login", status_code=303)
        return HTMLResponse(_static("index.html"))

    @api.get("/recordings", response_class=HTMLResponse, include_in_schema=False)
    def recordings_page(request: Request) -> Response:
        if not access.allowed(request.headers, request.cookies, False):
            return RedirectResponse("/login", status_code=303)
        return HTMLResponse(_static("recordings.html"))

    @api.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page() -> Response:
        return HTMLResponse(_static("login.html"))

    @api.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:
            raise HTTPException(404, f"no file {name!r}")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(_static(name), media_type=kind)

    @api.post("/api/login")
    def login(body: LoginIn, request: Request) -> Response:
        if access.token is None:
            return JSONResponse({"ok": True, "needed": False})
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            raise HTTPException(403, "log in from this server's own page")
        if not hmac.compare_digest(body.token.encode(), access.token.encode()):
            raise HTTPException(401, "wrong token")
        response = JSONResponse({"ok": True, "needed": True})
        response.set_cookie(
            SESSION_COOKIE, access.sessions.new(), httponly=True, samesite="strict", path="/"
        )
        return response

    @api.post("/api/logout")
    def logout(request: Request) -> Response:
        access.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = JSONResponse({"ok": True})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def admitted(ws: WebSocket) -> bool:
        # A WebSocket is never protected by SameSite alone: its Origin must be ours.
        # (Accepted first: a close before the handshake reaches a browser only as 1006.)
        await ws.accept()
        if not access.allowed(ws.headers, ws.cookies, changes_state=True):
            await ws.close(code=4401, reason="log in first")
            return False
        return True

    async def admitted_to(ws: WebSocket, camera_id: str) -> bool:
        """Admitted, and the camera exists (else closed with 4404)."""
        if not await admitted(ws):
            return False
        if camera_id not in app.engine.statuses():
            await ws.close(code=4404, reason=f"no camera {camera_id!r}")
            return False
        return True

    @api.websocket("/api/ws/events")
    async def events(ws: WebSocket) -> None:
        if not await admitted(ws):
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[CameraStatus | ExportChanged | dict[str, Any]] = asyncio.Queue()

        def listener(event: EngineEvent) -> None:  # the GStreamer loop thread
            loop.call_soon_threadsafe(queue.put_nowait, event.status)
            if isinstance(event, MotionEvent):
                loop.call_soon_threadsafe(queue.put_nowait, motion_message(event))

        def export_listener(change: ExportChanged) -> None:  # the export worker, HTTP threads
            loop.call_soon_threadsafe(queue.put_nowait, change)

        async def sending() -> None:
            await ws.send_text(json.dumps([camera_json(s) for s in app.engine.statuses().values()]))
            while True:
                item = await queue.get()
                if isinstance(item, ExportChanged):  # an object with a "type"; cameras: a list
                    await ws.send_text(json.dumps(export_message(item)))
                elif isinstance(item, dict):  # a motion event
                    await ws.send_text(json.dumps(item))
                else:
                    await ws.send_text(json.dumps([camera_json(item)]))

        unsubscribe = app.engine.subscribe(listener)
        unsubscribe_exports = app.exports.subscribe(export_listener)
        try:
            await first_to_end(sending(), closed(ws))
        finally:
            unsubscribe()
            unsubscribe_exports()

    @api.websocket("/api/ws/live/{camera_id}")
    async def live(ws: WebSocket, camera_id: str) -> None:
        if not await admitted_to(ws, camera_id):
            return
        cluster = app.cluster
        elsewhere = cluster.recorded_elsewhere(camera_id) if cluster is not None else None
        if cluster is not None and elsewhere is not None:
            # Cluster mode: the node that records the camera serves its live view; this one
            # relays it (the page needs no address but this node's).
            base = cluster.api_url_of(elsewhere)
            if base is None:
                await ws.close(code=4503, reason=f"node {elsewhere} has no API address")
                return
            upstream = base.replace("http", "ws", 1).rstrip("/") + f"/api/ws/live/{camera_id}"
            await relay(ws, upstream, access.token)
            return
        # The camera's live sink writes to the viewer's socket itself (api/live_socket.py);
        # where it cannot, to a socket pair whose frames this passes on.
        fd = handed_socket(ws, app.config.api.live_viewer_timeout_seconds)
        ours = None
        if fd is None:
            ours, fd = socket_pair()
        try:
            token = await asyncio.to_thread(app.engine.add_web_viewer, camera_id, fd)
        except BaseException:
            os.close(fd)
            raise
        via = "socket" if ours is None else "pass_through"
        live_viewers.change(camera_id, via, 1)
        try:
            if ours is None:
                await closed(ws)
            else:
                await first_to_end(closed(ws), pass_through(ws, ours))
        finally:
            app.engine.remove_web_viewer(camera_id, token)
            live_viewers.change(camera_id, via, -1)
            if ours is not None:
                ours.close()

    @api.websocket("/api/ws/webrtc/{camera_id}")
    async def webrtc(ws: WebSocket, camera_id: str) -> None:
        if not await admitted_to(ws, camera_id):
            return
        loop = asyncio.get_running_loop()
        signals: asyncio.Queue[ServerSignal] = asyncio.Queue()

        def send(signal: ServerSignal) -> None:  # a GStreamer thread or the loop's
            loop.call_soon_threadsafe(signals.put_nowait, signal)

        session = app.engine.add_webrtc_viewer(camera_id, send)

        async def to_browser() -> None:
            while True:
                signal = await signals.get()
                await ws.send_text(json.dumps(signal_json(signal)))
                if isinstance(signal, Ended):
                    await ws.close(code=1000, reason="session ended")
                    return

        async def from_browser() -> None:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    if message.get("text") is None:
                        raise BadMessage("expected JSON text, not binary")
                    parsed = parse_browser_message(message["text"])
                except BadMessage as exc:
                    await ws.close(code=4400, reason=f"bad message: {exc}"[:120])
                    return
                if parsed is not None:
                    session.from_browser(parsed)

        try:
            await first_to_end(to_browser(), from_browser())
        finally:
            app.engine.remove_webrtc_viewer(session)
