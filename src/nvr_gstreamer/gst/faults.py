"""Bus messages to :class:`~nvr_gstreamer.camera.errors.Fault` values: the boundary where
GStreamer's errors are translated once, then classified by the pure table."""

from __future__ import annotations

from typing import Any

from nvr_gstreamer.camera.errors import Fault, Origin, fault_from_error

# Name prefixes of the bins that hold each branch of a camera pipeline (``recorder-3``).
RECORDER_BIN = "recorder"
LIVE_BIN = "live"
WEB_BIN = "web"  # the browser live view: a live-view fault, never the camera's


def attach_branch(pipeline: Any, tee: Any, branch: Any) -> Any:
    """Add a branch bin (ghost "sink" pad) to a running pipeline, fed by a new tee pad.
    From the loop thread. Returns the tee pad, for unlinking later.

    The branch runs before it is linked: a tee pad linked to a branch still in NULL gets
    FLUSHING back from it and hands that to the camera's source, which then stops without an
    error (the camera stalls, recording included)."""
    pipeline.add(branch)
    branch.sync_state_with_parent()
    tee_pad = tee.request_pad_simple("src_%u")
    tee_pad.link(branch.get_static_pad("sink"))
    return tee_pad


def inside(element: Any, bin_: Any) -> bool:
    """Whether ``element`` is ``bin_`` or sits (at any depth) inside it."""
    obj = element
    while obj is not None:
        if obj is bin_:
            return True
        obj = obj.get_parent()
    return False


def origin_of(element: Any) -> tuple[Origin, str]:
    """Which branch an element belongs to (and that branch's bin name), by walking up to
    the bin that holds it."""
    obj = element
    while obj is not None:
        name = obj.get_name() if hasattr(obj, "get_name") else ""
        if name.startswith(RECORDER_BIN):
            return Origin.RECORDER, name
        if name.startswith((LIVE_BIN, WEB_BIN)):
            return Origin.LIVE, name
        parent = obj.get_parent()
        if parent is None:
            # Reached the top: the pipeline itself posted it, or an element directly in it.
            return (Origin.OTHER if obj is element else Origin.SOURCE), ""
        obj = parent
    return Origin.OTHER, ""  # pragma: no cover


def fault_from_gerror(
    origin: Origin, element: str, error: Any, debug: str | None, branch: str = ""
) -> Fault:
    """A Fault from a ``GLib.Error`` (as ``message.parse_error()`` gives it)."""
    return fault_from_error(origin, element, error, debug, branch)


def fault_from_error_message(message: Any) -> Fault:
    """A Fault from an ERROR (or WARNING) bus message."""
    if message.type == message.type.__class__.WARNING:
        error, debug = message.parse_warning()
    else:
        error, debug = message.parse_error()
    src = message.src
    name = src.get_name() if src is not None else "?"
    origin, branch = origin_of(src)
    return fault_from_gerror(origin, name, error, debug, branch)
