"""The live sink (native/nvrlivesink.c) on real encoders: what a viewer's socket gets is an
init message and segment, then one fragment per frame, which a player reads whole; a viewer
that stops reading skips ahead to a keyframe and never holds up the others."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from nvr_gstreamer.camera.fmp4 import codec_string
from nvr_gstreamer.camera.ws_frames import TEXT
from nvr_gstreamer.gst.faults import attach_branch
from nvr_gstreamer.gst.loop import init_gstreamer
from nvr_gstreamer.testing.engine import wait_until
from nvr_gstreamer.testing.live_viewer import (
    SocketViewer,
    decode_time,
    duration,
    is_key,
    played,
)

pytestmark = pytest.mark.integration

FRAMES = 45  # three GOPs
ENCODERS = {
    "h264": "x264enc key-int-max=15 speed-preset=ultrafast tune=zerolatency ! h264parse "
    "! video/x-h264,stream-format=avc,alignment=au",
    "h265": "x265enc key-int-max=15 speed-preset=ultrafast tune=zerolatency ! h265parse "
    "! video/x-h265,stream-format=hvc1,alignment=au",
}


def _pipeline(source: str, codec: str) -> tuple[Any, Any]:
    init_gstreamer()
    from gi.repository import Gst

    from nvr_gstreamer.gst.web_live import WebLiveBranch

    pipeline = Gst.parse_launch(f"{source} ! {ENCODERS[codec]} ! tee name=t allow-not-linked=true")
    branch = WebLiveBranch()
    attach_branch(pipeline, pipeline.get_by_name("t"), branch.bin)
    return pipeline, branch


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_a_viewer_gets_every_frame_as_a_fragment_a_player_reads(codec: str, tmp_path: Path) -> None:
    from gi.repository import Gst

    pipeline, branch = _pipeline(
        f"videotestsrc num-buffers={FRAMES} ! video/x-raw,width=320,height=240,framerate=15/1",
        codec,
    )
    with SocketViewer() as viewer:
        branch.add_client(viewer.give())
        pipeline.set_state(Gst.State.PLAYING)
        try:
            done = pipeline.get_bus().timed_pop_filtered(
                30 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
            )
            assert done is not None and done.type == Gst.MessageType.EOS, done
            wait_until(lambda: len(viewer.fragments()) == FRAMES, 5, "every frame")
        finally:
            pipeline.set_state(Gst.State.NULL)
        got = viewer.got
        assert got[0].message.opcode == TEXT and json.loads(got[0].message.text)["type"] == "init"
        (codec_text,) = viewer.codecs()
        assert codec_text == codec_string(got[1].message.data)  # what the page asks about
        assert codec_text.startswith("avc1." if codec == "h264" else "hvc1.")
        fragments = [g.message.data for g in viewer.fragments()]
        assert [is_key(f) for f in fragments] == [n % 15 == 0 for n in range(FRAMES)]
        # 15 fps at 90 kHz, and each frame lasts until the next begins: no gap, no overlap.
        times = [decode_time(f) for f in fragments]
        assert all(abs(b - a - 6000) <= 1 for a, b in itertools.pairwise(times)), times
        assert [duration(f) for f in fragments[:-1]] == [
            b - a for a, b in itertools.pairwise(times)
        ]
        for data in fragments:  # each a whole moof + mdat, nothing more, nothing less
            moof = int.from_bytes(data[0:4], "big")
            assert data[4:8] == b"moof" and data[moof + 4 : moof + 8] == b"mdat"
            assert len(data) == moof + int.from_bytes(data[moof : moof + 4], "big")
        name, decoded, sent = played(viewer, tmp_path / "live.mp4")
        assert name == ("h264" if codec == "h264" else "hevc") and decoded == sent == FRAMES


def test_a_viewer_that_stops_reading_skips_to_a_keyframe_and_holds_up_nobody(
    tmp_path: Path,
) -> None:
    from gi.repository import Gst

    # Large frames (noise at a high bitrate) so that a socket fills within a second.
    pipeline, branch = _pipeline(
        "videotestsrc is-live=true pattern=snow "
        "! video/x-raw,width=640,height=360,framerate=30/1",
        "h264",
    )
    branch.sink.set_property("backlog-max", 64 * 1024)
    with SocketViewer() as steady, SocketViewer() as slow:
        pipeline.set_state(Gst.State.PLAYING)
        try:
            branch.add_client(steady.give())
            branch.add_client(slow.give())
            assert branch.clients == 2
            slow.pause()
            wait_until(lambda: branch.skipped > 30, 20, "the slow viewer to skip frames")
            held = len(slow.fragments())
            slow.resume()
            wait_until(lambda: len(slow.fragments()) > held + 30, 20, "the slow viewer again")
        finally:
            pipeline.set_state(Gst.State.NULL)
        # The steady viewer got every frame, in order, at its pace.
        times = [decode_time(g.message.data) for g in steady.fragments()]
        assert all(abs(b - a - 3000) <= 1 for a, b in itertools.pairwise(times)), times
        # The slow one has a hole, and what follows it starts at a keyframe: it plays whole.
        slow_times = [decode_time(g.message.data) for g in slow.fragments()]
        holes = [i for i, (a, b) in enumerate(itertools.pairwise(slow_times)) if b - a > 3001]
        assert holes, "no frame was skipped"
        assert all(is_key(slow.fragments()[i + 1].message.data) for i in holes)
        _name, decoded, sent = played(slow, tmp_path / "slow.mp4")
        assert decoded == sent
