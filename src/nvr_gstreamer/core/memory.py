"""Process-wide malloc settings for the recorder (glibc only; elsewhere nothing happens).

Why: glibc gives threads their own malloc arenas, up to 8 per core (16 on a 2-core machine),
and gives freed memory back to the system only from the top of an arena. Every camera fault
rebuilds a pipeline or a recording branch, whose new streaming threads land on other arenas;
each arena then grows to its own high-water mark and keeps what was freed in it. Measured with
3 cameras (bench/bench_soak.py; bench/RESULTS.md, section 8): no object outlived its fault, yet
RSS grew ~150 kB per fault and kept climbing (30 camera freezes: +5.8 MB, of which malloc held
3.6 MB free and ``malloc_trim`` gave back 3.1 MB). With two arenas, freed memory is reused by
whichever thread needs it next: +2.1 MB over the same 30 freezes, level after the first 13.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

ARENA_MAX = 2
_M_ARENA_MAX = -8  # from glibc's <malloc.h>


def limit_malloc_arenas(arenas: int = ARENA_MAX) -> bool:
    """Cap glibc's malloc arenas at ``arenas``, unless ``MALLOC_ARENA_MAX`` is set in the
    environment (the user's choice wins). Call before threads start: arenas that already exist
    stay. True when the cap was set."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): nothing to tune
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_ARENA_MAX, arenas))
    if not ok:
        logger.debug("mallopt(M_ARENA_MAX, %d) refused", arenas)
    return ok
