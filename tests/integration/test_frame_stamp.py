"""The simulator's frame stamp (native/nvrclockstamp.c): each frame carries the wall-clock time
it was made, readable after the picture went through an encoder and a decoder."""

from __future__ import annotations

import itertools
import time

import pytest

from nvr_gstreamer.gst.loop import init_gstreamer
from nvr_gstreamer.testing.frame_stamp import age_ms, band_row, read_stamp

pytestmark = pytest.mark.integration


def _stamped_frames(encode: str, frames: int = 30) -> list[tuple[int | None, float]]:
    """Stamps read from decoded frames, with the wall-clock time each was read."""
    init_gstreamer()
    from gi.repository import Gst

    assert Gst.ElementFactory.find("nvrclockstamp"), "scripts/setup builds nvrclockstamp"
    pipeline = Gst.parse_launch(
        f"videotestsrc is-live=true pattern=ball num-buffers={frames} "
        "! video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! nvrclockstamp "
        f"! {encode} ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=sink sync=false"
    )
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    seen: list[tuple[int | None, float]] = []
    try:
        while (sample := sink.emit("try-pull-sample", 5 * Gst.SECOND)) is not None:
            s = sample.get_caps().get_structure(0)
            width, height = s.get_value("width"), s.get_value("height")
            buf = sample.get_buffer()
            ok, info = buf.map(Gst.MapFlags.READ)
            assert ok
            try:
                stride = (width + 3) & ~3  # GRAY8 rows are 4-byte aligned
                y = band_row(height)
                row = bytes(info.data[y * stride : y * stride + width])
            finally:
                buf.unmap(info)
            seen.append((read_stamp(row, width), time.time() * 1000))
    finally:
        pipeline.set_state(Gst.State.NULL)
    return seen


@pytest.mark.parametrize(
    "encode",
    [
        "identity",
        "x264enc tune=zerolatency speed-preset=ultrafast bitrate=300 ! avdec_h264",
        "x265enc tune=zerolatency speed-preset=ultrafast bitrate=300 log-level=none ! avdec_h265",
    ],
    ids=["raw", "h264", "h265"],
)
def test_every_frame_tells_its_wall_clock_time(encode: str) -> None:
    seen = _stamped_frames(encode)
    assert len(seen) == 30
    stamps = [s for s, _ in seen]
    assert None not in stamps, stamps
    ages = [age_ms(s, now) for s, now in seen if s is not None]
    # Made just now (an encoder's look-ahead at most), never in the future.
    assert all(-5 <= a < 1500 for a in ages), ages
    # One frame every 33 ms: the stamps follow the live source's pace.
    steps = [b - a for a, b in itertools.pairwise(stamps) if a is not None and b is not None]
    assert 25 <= sorted(steps)[len(steps) // 2] <= 45, steps
