"""Callbacks that do not keep their owner alive.

A Python callback connected to a GStreamer signal or pad probe is owned by the C side
(element → pad → probe → closure → bound method → our object → the pipeline wrapper). Python's
garbage collector cannot see the C half of that cycle, so a pipeline whose callbacks are
plain bound methods is never freed, and its sockets and threads leak with it. These
callbacks hold only a weak reference: once the owner is gone, they answer ``dead`` instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any


def weak_cb(method: Callable[..., Any], dead: Any = None) -> Callable[..., Any]:
    ref = weakref.WeakMethod(method)  # type: ignore[arg-type]

    def call(*args: Any) -> Any:
        target = ref()
        if target is None:
            return dead
        return target(*args)

    return call
