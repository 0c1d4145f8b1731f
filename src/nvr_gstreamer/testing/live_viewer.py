"""A browser live viewer as the live sink sees one: a socket it writes WebSocket frames to.

:class:`SocketViewer` hands one end of a socket pair to the engine (or a sink) and reads the
other on a thread of its own, keeping each message with the time it came, so a test can check
what a browser would get: the init message and segment, then one fragment per frame, starting
at a keyframe. ``pause()`` stops reading (a viewer on a slow network: its socket fills).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from nvr_gstreamer.camera.ws_frames import TEXT, FrameReader, Message


@dataclass(frozen=True, slots=True)
class Got:
    at: float  # time.monotonic() when it came
    message: Message


def _box(data: bytes, path: tuple[bytes, ...]) -> bytes | None:
    for kind in path:
        pos, found = 0, None
        while pos + 8 <= len(data):
            size = int.from_bytes(data[pos : pos + 4], "big")
            if size < 8:
                return None
            if data[pos + 4 : pos + 8] == kind:
                found = data[pos + 8 : pos + size]
                break
            pos += size
        if found is None:
            return None
        data = found
    return data


def is_key(fragment: bytes) -> bool:
    """Whether a moof + mdat fragment's first sample is a sync sample (a keyframe)."""
    trun = _box(fragment, (b"moof", b"traf", b"trun"))
    assert trun is not None, "a fragment without trun"
    flags = int.from_bytes(trun[1:4], "big")
    pos = 8 + (4 if flags & 0x1 else 0)
    if flags & 0x4:  # first-sample-flags
        sample_flags = int.from_bytes(trun[pos : pos + 4], "big")
    else:
        pos += (4 if flags & 0x100 else 0) + (4 if flags & 0x200 else 0)
        sample_flags = int.from_bytes(trun[pos : pos + 4], "big")
    return not sample_flags & 0x10000  # sample_is_non_sync_sample


def duration(fragment: bytes) -> int:
    """The duration of a one-sample fragment's sample (trun), in its track's timescale."""
    trun = _box(fragment, (b"moof", b"traf", b"trun"))
    assert trun is not None, "a fragment without trun"
    flags = int.from_bytes(trun[1:4], "big")
    assert flags & 0x100, "no sample duration in trun"
    pos = 8 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
    return int.from_bytes(trun[pos : pos + 4], "big")


def decode_time(fragment: bytes) -> int:
    """The fragment's baseMediaDecodeTime (tfdt), in its track's timescale."""
    tfdt = _box(fragment, (b"moof", b"traf", b"tfdt"))
    assert tfdt is not None, "a fragment without tfdt"
    return int.from_bytes(tfdt[4:12] if tfdt[0] == 1 else tfdt[4:8], "big")


class SocketViewer:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self._sock = ours
        self._theirs: socket.socket | None = theirs
        self._reader = FrameReader()
        self._lock = threading.Lock()
        self._got: list[Got] = []
        self._reading = threading.Event()
        self._reading.set()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="socket-viewer", daemon=True)
        self._thread.start()

    def give(self) -> int:
        """The descriptor for the engine or sink (it owns it from then on)."""
        theirs, self._theirs = self._theirs, None
        assert theirs is not None, "given once"
        return theirs.detach()

    @property
    def reading(self) -> bool:
        """False once the other end is closed (every copy of it) or this viewer closed."""
        return self._thread.is_alive()

    def pause(self) -> None:
        self._reading.clear()

    def resume(self) -> None:
        self._reading.set()

    def close(self) -> None:
        self._closed = True
        self._reading.set()
        self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._sock.close()
        if self._theirs is not None:
            self._theirs.close()

    def __enter__(self) -> SocketViewer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._closed:
            self._reading.wait()
            try:
                data = self._sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            now = time.monotonic()
            messages = self._reader.feed(data)
            with self._lock:
                self._got += [Got(now, m) for m in messages]

    # ---- what it got ----------------------------------------------------------------------

    @property
    def got(self) -> list[Got]:
        with self._lock:
            return list(self._got)

    def codecs(self) -> list[str]:
        """The codec of each init message, in order."""
        return [json.loads(g.message.text)["codec"] for g in self.got if g.message.opcode == TEXT]

    def fragments(self) -> list[Got]:
        """Every fragment (binary messages that are not an init segment)."""
        return [g for g in self.got if g.message.opcode != TEXT and g.message.data[4:8] != b"ftyp"]

    def mp4(self) -> tuple[bytes, int]:
        """The newest stream so far as one file (its init segment and fragments), and how many
        fragments that is."""
        got = self.got
        starts = [i for i, g in enumerate(got) if g.message.data[4:8] == b"ftyp"]
        assert starts, "no init segment yet"
        stream = [g.message.data for g in got[starts[-1] :] if g.message.opcode != TEXT]
        return b"".join(stream), len(stream) - 1


def played(viewer: SocketViewer, path: Path) -> tuple[str, int, int]:
    """What a player makes of what the viewer got so far, written to ``path`` as one file:
    (codec, frames decoded, frames sent)."""
    data, sent = viewer.mp4()
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    codec, count = out.split(",")
    return codec, int(count), sent
