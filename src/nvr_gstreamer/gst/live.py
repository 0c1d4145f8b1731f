"""The live view branch: exists only while someone watches.

``tee → queue (leaky) → decodebin → videorate → videoconvert → videoscale → caps → appsink``
in a bin named ``live`` (faults from it are classified as live-branch faults and never restart
the camera). Frames go to the viewer callbacks on the appsink's streaming thread: a viewer
hands them to its own thread (Qt: a queued signal). With no viewer, the branch is removed and
nothing is decoded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from nvr_gstreamer.camera.media import LiveFormat, LiveFrame, PipelineSpec  # noqa: E402
from nvr_gstreamer.gst.faults import LIVE_BIN, attach_branch, inside  # noqa: E402
from nvr_gstreamer.gst.pipeline import rtsp_source  # noqa: E402
from nvr_gstreamer.gst.weak import weak_cb  # noqa: E402

logger = logging.getLogger(__name__)


def _fraction(fps: float) -> str:
    """A GStreamer framerate fraction for a rate such as 5 or 2.5."""
    return f"{round(fps * 1000)}/1000" if fps != int(fps) else f"{int(fps)}/1"


def frame_from_sample(camera_id: str, sample: Any) -> LiveFrame | None:
    """Copy an RGB appsink sample out of GStreamer's memory (rows may be padded)."""
    if sample is None:
        return None
    buf = sample.get_buffer()
    s = sample.get_caps().get_structure(0)
    ok, info = buf.map(Gst.MapFlags.READ)
    if not ok:
        return None
    try:
        data = bytes(info.data)
    finally:
        buf.unmap(info)
    fmt = s.get_string("format") or "RGB"
    return LiveFrame(camera_id, s.get_value("width"), s.get_value("height"), data, fmt)


class BinBranch:
    """A branch that is one bin with a ghost "sink" pad, fed by a request pad of the video tee:
    the shape of the live views (the recorder has its own, with audio inputs)."""

    def __init__(self, bin_: Any) -> None:
        self.bin = bin_
        self.bin.set_property("async-handling", True)  # see RecorderBranch
        self._tee_pad: Any = None
        self._pipeline: Any = None
        self.finish_timeout_s = 2.0

    # ---- as a branch of a camera pipeline (see CameraPipeline.attach) ----------------------

    def link(self, pipeline: Any, tee: Any, _audio_tees: Sequence[Any] = ()) -> None:
        """Link to the tee of a running pipeline (loop thread)."""
        self._pipeline = pipeline
        self._tee_pad = attach_branch(pipeline, tee, self.bin)

    def owns(self, element: Any) -> bool:
        return inside(element, self.bin)

    def handle_sync_message(self, _message: Any) -> bool:
        return False  # errors go the usual way (a live-view fault never restarts the camera)

    def finish_blocking(self, timeout_s: float) -> bool:
        """Unlink from the tee at an idle moment of its pad (teardown worker)."""
        pad, self._tee_pad = self._tee_pad, None
        if pad is None:
            return True
        sink = self.bin.get_static_pad("sink")
        unlinked = threading.Event()

        def unlink_cb(tee_pad: Any, _info: Any) -> Any:
            if not unlinked.is_set():
                tee_pad.unlink(sink)
                unlinked.set()
            return Gst.PadProbeReturn.REMOVE

        pad.add_probe(Gst.PadProbeType.IDLE, unlink_cb)
        done = unlinked.wait(timeout_s)
        tee = pad.get_parent_element()
        if tee is not None:
            tee.release_request_pad(pad)
        return done

    def dispose(self) -> None:
        """NULL and out of the pipeline (teardown worker, the pipeline's state lock held)."""
        self.bin.set_state(Gst.State.NULL)
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None and self.bin.get_parent() is pipeline:
            pipeline.remove(self.bin)


class LiveBranch(BinBranch):
    """One decoded live view attached to one pipeline generation's tee."""

    _count = 0

    def __init__(
        self, camera_id: str, fmt: LiveFormat, deliver: Callable[[LiveFrame], None]
    ) -> None:
        self._camera_id = camera_id
        self._deliver = deliver
        LiveBranch._count += 1
        super().__init__(Gst.Bin.new(f"{LIVE_BIN}-{LiveBranch._count}"))
        queue = Gst.ElementFactory.make("queue", "live-queue")
        queue.set_property("leaky", 2)  # downstream: drop old frames, never block the tee
        queue.set_property("max-size-buffers", 5)
        queue.set_property("max-size-time", 0)
        queue.set_property("max-size-bytes", 0)
        self._decode = Gst.ElementFactory.make("decodebin", "decoder")
        self._convert = Gst.ElementFactory.make("videoconvert", "convert")
        scale = Gst.ElementFactory.make("videoscale", "scale")
        rate = Gst.ElementFactory.make("videorate", "rate")
        rate.set_property("drop-only", True)
        caps = Gst.ElementFactory.make("capsfilter", "caps")
        # Size 0: as decoded (the scaler passes the frames through untouched).
        size = f",width={fmt.width},height={fmt.height},pixel-aspect-ratio=1/1" if fmt.width else ""
        caps.set_property(
            "caps",
            Gst.Caps.from_string(
                f"video/x-raw,format={fmt.format}{size},framerate={_fraction(fmt.fps)}"
            ),
        )
        sink = Gst.ElementFactory.make("appsink", "videosink")
        sink.set_property("emit-signals", True)
        sink.set_property("drop", True)
        sink.set_property("max-buffers", 1)
        sink.set_property("sync", False)
        for el in (queue, self._decode, rate, self._convert, scale, caps, sink):
            self.bin.add(el)
        queue.link(self._decode)
        # Frames are dropped to the rate first: only those kept are converted and scaled.
        self._rate = rate
        rate.link(self._convert)
        self._convert.link(scale)
        scale.link(caps)
        caps.link(sink)
        self._decode.connect("pad-added", weak_cb(self._decoded_pad_cb))
        if fmt.decoder_threads:
            threads = fmt.decoder_threads

            def added(_bin: Any, _sub: Any, element: Any) -> None:
                if element.find_property("max-threads") is not None:
                    element.set_property("max-threads", threads)

            self._decode.connect("deep-element-added", added)
        sink.connect("new-sample", weak_cb(self._new_sample_cb, Gst.FlowReturn.EOS))
        ghost = Gst.GhostPad.new("sink", queue.get_static_pad("sink"))
        self.bin.add_pad(ghost)

    def _decoded_pad_cb(self, _decodebin: Any, pad: Any) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        if caps.get_structure(0).get_name().startswith("video/"):
            pad.link(self._rate.get_static_pad("sink"))

    def _new_sample_cb(self, sink: Any) -> Any:
        frame = frame_from_sample(self._camera_id, sink.emit("pull-sample"))
        if frame is not None:
            try:
                self._deliver(frame)
            except Exception:
                logger.exception("live viewer failed")
        return Gst.FlowReturn.OK


class SubStream:
    """A camera's own ``live_url`` (a sub-stream) in a pipeline of its own, for a view.

    ``rtspsrc(live_url) → …`` where the view links the video pad (:meth:`_link_video`). The
    main stream's pipeline and recording never see it: a failure here only calls ``on_failed``
    (loop thread), and the view tries again later while someone still watches.
    """

    def __init__(
        self,
        loop: Any,
        spec: PipelineSpec,  # for the live URL
        on_failed: Callable[[str], None],
        teardown: Any,
        name: str,
    ) -> None:
        self._loop = loop
        self._on_failed = on_failed
        self._teardown = teardown
        self._released = False
        self.pipeline = Gst.Pipeline.new(f"{name}-{spec.camera_id}")
        src = rtsp_source(spec, f"{name}-source")
        self.pipeline.add(src)
        self._src = src
        self._handler = src.connect("pad-added", weak_cb(self._pad_added_cb))

    def _link_video(self, pad: Any, structure: Any) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Loop thread: watch the bus on the loop's context and go."""
        self.pipeline.get_bus().add_watch(0, weak_cb(self._bus_cb, False))
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self._fail("could not start the live stream")

    def _pad_added_cb(self, _src: Any, pad: Any) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        if s.get_string("media") == "video":
            self._link_video(pad, s)

    def _bus_cb(self, _bus: Any, msg: Any) -> bool:
        if self._released:
            return False
        if msg.type == Gst.MessageType.ERROR:
            err, _dbg = msg.parse_error()
            self._fail(str(err.message))
            return False
        if msg.type == Gst.MessageType.EOS:
            self._fail("the live stream ended")
            return False
        return True

    def _fail(self, why: str) -> None:
        if not self._released:
            self.release()
            self._on_failed(why)

    def release(self) -> None:
        """Loop thread; idempotent. NULL happens on a teardown worker."""
        if self._released:
            return
        self._released = True
        self.pipeline.get_bus().remove_watch()
        pipeline, src, handler = self.pipeline, self._src, self._handler

        def to_null() -> None:
            pipeline.set_state(Gst.State.NULL)
            src.disconnect(handler)

        self._teardown.submit(to_null)


class LiveStream(SubStream):
    """The decoded live view from a camera's own ``live_url``: ``rtspsrc → LiveBranch``
    (decodebin also plugs the depayloader)."""

    def __init__(
        self,
        loop: Any,
        spec: PipelineSpec,  # for the live URL
        fmt: LiveFormat,
        deliver: Callable[[LiveFrame], None],
        on_failed: Callable[[str], None],
        teardown: Any,
    ) -> None:
        super().__init__(loop, spec, on_failed, teardown, "live")
        self.branch = LiveBranch(spec.camera_id, fmt, deliver)
        self.pipeline.add(self.branch.bin)

    def _link_video(self, pad: Any, _structure: Any) -> None:
        sink = self.branch.bin.get_static_pad("sink")
        if not sink.is_linked():
            pad.link(sink)
