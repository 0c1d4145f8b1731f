"""A decoded picture (I420, as the motion view delivers it) to a JPEG: an event's thumbnail.

One small pipeline per picture (``appsrc → jpegenc → appsink``): a thumbnail is made once per
motion event, so nothing is kept running for it.
"""

from __future__ import annotations

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from nvr_gstreamer.gst.loop import init_gstreamer  # noqa: E402

JPEG_QUALITY = 80


class StillError(Exception):
    pass


def jpeg_of_i420(width: int, height: int, data: bytes, timeout_s: float = 2.0) -> bytes:
    """Encode one I420 picture (GStreamer's layout: planes padded to 4 bytes) as a JPEG."""
    init_gstreamer()
    pipeline = Gst.parse_launch(
        f"appsrc name=src format=time caps=video/x-raw,format=I420,width={width},"
        f"height={height},framerate=0/1 ! jpegenc quality={JPEG_QUALITY} ! "
        "appsink name=sink sync=false"
    )
    try:
        pipeline.set_state(Gst.State.PLAYING)
        src = pipeline.get_by_name("src")
        buf = Gst.Buffer.new_wrapped(bytes(data))
        buf.pts = 0
        if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
            raise StillError("the encoder refused the picture")
        src.emit("end-of-stream")
        sample = pipeline.get_by_name("sink").emit("try-pull-sample", int(timeout_s * Gst.SECOND))
        if sample is None:
            msg = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
            why = msg.parse_error()[0].message if msg is not None else "no picture in time"
            raise StillError(f"cannot encode the picture: {why}")
        out = sample.get_buffer()
        return bytes(out.extract_dup(0, out.get_size()))
    finally:
        pipeline.set_state(Gst.State.NULL)
