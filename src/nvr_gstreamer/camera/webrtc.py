"""The WebRTC live view's signalling, as plain values (pure: no ``gi``, no I/O).

The server offers, the browser answers, ICE candidates trickle both ways. What the server says
(:data:`ServerSignal`) comes from a GStreamer thread or the loop and goes out as JSON
(:func:`signal_json`); what the browser says arrives as JSON and is checked once, here
(:func:`parse_browser_message`), before it reaches ``webrtcbin``.

Server → browser: ``{"type": "offer", "sdp"}``, ``{"type": "ice", "candidate",
"sdpMLineIndex"}``, ``{"type": "unsupported", "reason"}`` (the page uses MSE instead) and
``{"type": "error", "reason"}`` (the session ended). Browser → server: ``{"type": "answer",
"sdp"}`` and ``{"type": "ice", "candidate", "sdpMLineIndex"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Browsers do WebRTC with H.264 here; H.265 over WebRTC is not a thing (the page uses MSE).
WEBRTC_CODECS = frozenset({"h264"})
MAX_MESSAGE_CHARS = 64 * 1024  # an SDP answer is a few kB


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str


@dataclass(frozen=True, slots=True)
class Answer:
    sdp: str


@dataclass(frozen=True, slots=True)
class IceCandidate:
    candidate: str  # "candidate:..." as in SDP (without "a=")
    mline: int  # sdpMLineIndex


@dataclass(frozen=True, slots=True)
class Ended:
    """The session is over: the page falls back to MSE (or tries again later)."""

    reason: str
    unsupported: bool = False  # never possible for this camera now (its codec)


ServerSignal = Offer | IceCandidate | Ended
BrowserMessage = Answer | IceCandidate
SendSignal = Callable[[ServerSignal], None]  # thread-safe, never blocks


def signal_json(signal: ServerSignal) -> dict[str, Any]:
    if isinstance(signal, Offer):
        return {"type": "offer", "sdp": signal.sdp}
    if isinstance(signal, IceCandidate):
        return {"type": "ice", "candidate": signal.candidate, "sdpMLineIndex": signal.mline}
    return {"type": "unsupported" if signal.unsupported else "error", "reason": signal.reason}


class BadMessage(ValueError):
    """A browser message that is not JSON of a known shape (the socket closes with 4400)."""


def parse_browser_message(text: str) -> BrowserMessage | None:
    """One message of the browser; None for "end of candidates" (nothing to do)."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise BadMessage(f"message longer than {MAX_MESSAGE_CHARS} characters")
    try:
        data = json.loads(text)
    except ValueError:
        raise BadMessage("not JSON") from None
    if not isinstance(data, dict):
        raise BadMessage("expected a JSON object")
    kind = data.get("type")
    if kind == "answer":
        sdp = data.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v=0"):
            raise BadMessage("answer without an SDP text")
        return Answer(sdp)
    if kind == "ice":
        candidate = data.get("candidate")
        mline = data.get("sdpMLineIndex", 0)
        if not isinstance(candidate, str) or not isinstance(mline, int) or mline < 0:
            raise BadMessage("ice needs a candidate string and a sdpMLineIndex >= 0")
        if candidate == "":
            return None  # end of candidates
        return IceCandidate(candidate.removeprefix("a="), mline)
    raise BadMessage(f"unknown message type {kind!r}" if kind is not None else "no type")
