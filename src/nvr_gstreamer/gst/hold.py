"""Holding a branch's frames back without holding up the camera.

A BLOCK probe (:func:`keep_blocked`) after a queue keeps frames in that queue. But a serialized
query (allocation, drain) waits in a queue until everything before it has moved on, and the
thread that asks is the one that reads the camera, for every branch of its tee: one held branch
would stall the camera, its recording included. So a held branch answers such queries at its
entrance (:func:`answer_serialized_query`) instead of queueing them.
"""

from __future__ import annotations

from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def keep_blocked(_pad: Any, _info: Any) -> Any:
    return Gst.PadProbeReturn.OK  # a BLOCK probe that stays until removed


def answer_serialized_query(_pad: Any, info: Any) -> Any:
    query = info.get_query()
    serialized = query is not None and bool(
        Gst.QueryType.get_flags(query.type) & Gst.QueryTypeFlags.SERIALIZED
    )
    if serialized:
        return Gst.PadProbeReturn.HANDLED  # (an allocation query answered empty: defaults)
    return Gst.PadProbeReturn.OK
