"""The malloc arena cap (core/memory.py), checked in a child process: it is process-wide."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc malloc"
)

# Eight threads each allocate at once, then the script prints how many arenas malloc made.
CHILD = """
import ctypes, re, sys, threading
from nvr_gstreamer.core.memory import limit_malloc_arenas
print(limit_malloc_arenas() if sys.argv[1] == "cap" else "-")
libc = ctypes.CDLL("libc.so.6")
libc.open_memstream.restype = ctypes.c_void_p
barrier = threading.Barrier(8)
def work():
    kept = [bytearray(60000) for _ in range(4)]  # malloc'd by this thread
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
buf, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = ctypes.c_void_p(libc.open_memstream(ctypes.byref(buf), ctypes.byref(size)))
libc.malloc_info(0, stream)
libc.fclose(stream)
print(len(re.findall("<heap nr=", buf.value.decode())))
"""


def arenas(mode: str, **env: str) -> tuple[str, int]:
    child_env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        capture_output=True,
        text=True,
        check=True,
        env=child_env,
        timeout=30,
    ).stdout.split()
    return out[0], int(out[1])


def test_threads_share_two_arenas_with_the_cap() -> None:
    assert arenas("cap") == ("True", 2)
    _, uncapped = arenas("none")
    assert uncapped > 2  # one per thread, up to 8 per core: what let RSS grow per fault


def test_malloc_arena_max_in_the_environment_wins() -> None:
    assert arenas("cap", MALLOC_ARENA_MAX="3") == ("False", 3)
