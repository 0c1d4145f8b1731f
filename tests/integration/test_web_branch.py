"""The browser live branch on a real encoder: the pieces joined in C (native/nvrfmp4frag.c) are
the same as the ones the Python assembler joins, and a player reads them."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from nvr_gstreamer.camera.fmp4 import Fragment, InitSegment, Piece
from nvr_gstreamer.gst.faults import attach_branch
from nvr_gstreamer.gst.loop import init_gstreamer

pytestmark = pytest.mark.integration

FRAMES = 45  # three GOPs


def _pieces(fragmenter: bool) -> list[Piece]:
    init_gstreamer()
    from gi.repository import Gst

    from nvr_gstreamer.gst.web_live import WebLiveBranch

    if fragmenter:
        assert Gst.ElementFactory.find("nvrfmp4frag"), "scripts/setup builds nvrfmp4frag"
    pipeline = Gst.parse_launch(
        f"videotestsrc num-buffers={FRAMES} ! video/x-raw,width=320,height=240,framerate=15/1 "
        "! x264enc key-int-max=15 speed-preset=ultrafast tune=zerolatency ! h264parse config-interval=-1 "
        "! tee name=t allow-not-linked=true"
    )
    got: list[Piece] = []
    lock = threading.Lock()

    def deliver(piece: Piece) -> None:
        with lock:
            got.append(piece)

    branch = WebLiveBranch("h264", deliver, fragmenter=fragmenter)
    attach_branch(pipeline, pipeline.get_by_name("t"), branch.bin)
    pipeline.set_state(Gst.State.PLAYING)
    try:
        done = pipeline.get_bus().timed_pop_filtered(
            20 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
        )
        assert done is not None and done.type == Gst.MessageType.EOS, done
    finally:
        pipeline.set_state(Gst.State.NULL)
    return got


def test_pieces_joined_in_c_are_those_joined_in_python_and_play(tmp_path: Path) -> None:
    in_c, in_python = _pieces(fragmenter=True), _pieces(fragmenter=False)
    assert isinstance(in_c[0], InitSegment) and in_c[0].codec.startswith("avc1.")
    assert [type(p) for p in in_c] == [type(p) for p in in_python]
    assert [getattr(p, "key", None) for p in in_c] == [getattr(p, "key", None) for p in in_python]
    assert [p.key for p in in_c if isinstance(p, Fragment)].count(True) == FRAMES // 15
    for piece in in_c[1:]:  # each a whole moof + mdat, nothing more, nothing less
        moof = int.from_bytes(piece.data[0:4], "big")
        mdat = int.from_bytes(piece.data[moof : moof + 4], "big")
        assert piece.data[4:8] == b"moof" and piece.data[moof + 4 : moof + 8] == b"mdat"
        assert len(piece.data) == moof + mdat
    path = tmp_path / "c.mp4"
    path.write_bytes(b"".join(p.data for p in in_c))
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert int(out.stdout.strip()) == FRAMES and out.stderr == ""
