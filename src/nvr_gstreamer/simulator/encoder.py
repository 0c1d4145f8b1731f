"""Encode once, serve many: one live encoder per distinct picture format, fanned out to mounts.

A :class:`SharedEncoder` runs
``videotestsrc ! [clockoverlay] ! [nvrclockstamp] ! x26Xenc ! h26Xparse ! appsink``: the stamp is
each frame's wall-clock time as a row of black and white cells along the bottom (``native/``,
read by :mod:`nvr_gstreamer.testing.frame_stamp`), so a test can tell how old a shown frame is.
Every encoded access unit is offered to each :class:`Subscription`; a subscription wraps the
``appsrc`` of one camera's RTSP media (``appsrc ! rtph26Xpay name=pay0``). Per camera and frame the
cost is one shallow buffer copy (the encoded memory is shared, only the metadata is copied) and one
``push_buffer``; nothing is encoded twice.

Timestamps: the copy carries no PTS/DTS and the media's appsrc runs with ``do-timestamp=true``, so
each media stamps frames with its own running time when they arrive. That keeps every media's
timeline consistent however often it is (re)started, and a freeze shows up as a gap. The copy's
``offset`` carries the encoder's timestamp (its capture time), from which the media puts the
frames back at the capture cadence (:mod:`.capture_clock`), as a real camera stamps them.

A subscription forwards nothing until a key frame arrives (the parser repeats SPS/PPS (and VPS)
before every key frame, so a new consumer can decode from there). It goes back to waiting for a key
frame whenever its camera stops flowing (stopped, frozen), a push fails or the media's queue is
full, so a client never gets a GOP with holes.

A scene camera (:mod:`.scene`) has an encoder of its own, whose picture is a ``compositor``
of a still background (one videotestsrc frame repeated by ``imagefreeze``), the object (a small
solid videotestsrc, placed for each output frame at that frame's running time), and
optionally noise (videotestsrc ``snow`` at a quarter size, scaled up, at low alpha), followed by
``videobalance`` for the brightness. :class:`SceneControl` commands it from any thread.

Longer than ~300 lines: the encoder pipeline and the scene controls that reach into it by
element and pad name stay together.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import GLib, Gst, GstApp  # noqa: E402

from nvr_gstreamer.simulator.model import Codec, VideoSize  # noqa: E402
from nvr_gstreamer.simulator.scene import (  # noqa: E402
    OBJECT_PAD,
    SCENE_MIXER,
    ObjectMotion,
    Picture,
    SceneGeometry,
    SceneStatus,
    check_brightness,
    scene_layers,
    scene_mixer,
)

logger = logging.getLogger(__name__)

_MAX_QUEUED_BYTES = 8 * 1024 * 1024
"""A media whose appsrc holds more than this (its client stopped reading) skips to a key frame."""

_COPY_FLAGS = Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.META | Gst.BufferCopyFlags.MEMORY
"""Shallow copy without timestamps: memory is shared, the media's appsrc stamps its own time."""

SCENE_BALANCE = "brightness"


class EncoderError(RuntimeError):
    """An encoder pipeline could not start or failed while running."""


@dataclass(frozen=True, slots=True)
class EncoderSpec:
    """The picture one shared encoder produces; cameras with equal specs share one encoder."""

    codec: Codec
    size: VideoSize
    fps: Fraction
    bitrate_kbps: int
    key_int_frames: int
    pattern: str = "ball"
    overlay: bool = True
    stamp: bool = True
    picture: Picture = Picture.PATTERN
    camera: str = ""
    """The scene camera this encoder draws for ('' for a pattern, shared by every camera of
    this format): a scene is commanded per camera, so it is never shared."""

    def __str__(self) -> str:
        text = f"{self.codec.value} {self.size} {float(self.fps):g}fps"
        return f"{text} {self.picture.value} of {self.camera}" if self.picture.is_scene else text

    @property
    def geometry(self) -> SceneGeometry:
        return SceneGeometry.for_size(self.size.width, self.size.height)

    def pipeline_description(
        self, *, overlay_available: bool, stamp_available: bool = False
    ) -> str:
        """gst-launch description of the encoder pipeline, ending in ``appsink name=sink``."""
        raw_caps = (
            f"video/x-raw,format=I420,width={self.size.width},height={self.size.height},"
            f"framerate={self.fps.numerator}/{self.fps.denominator}"
        )
        if self.picture.is_scene:
            parts = [scene_mixer(self.picture, self.size.width, self.size.height), raw_caps]
            parts.append(f"videobalance name={SCENE_BALANCE}")
        else:
            # A moving picture: the ball moves by itself, other patterns scroll.
            motion = "" if self.pattern == "ball" else " horizontal-speed=2"
            parts = [f"videotestsrc is-live=true pattern={self.pattern}{motion}", raw_caps]
        if self.overlay and overlay_available:
            parts.append(
                'clockoverlay time-format="%H:%M:%S" font-desc="Sans 18" shaded-background=true '
                f'halignment=left valignment=top text="{self.codec.value}"'
            )
        if self.stamp and stamp_available:
            parts.append("nvrclockstamp")
        common = (
            f"tune=zerolatency speed-preset=ultrafast key-int-max={self.key_int_frames} "
            f"bitrate={self.bitrate_kbps}"
        )
        if self.codec is Codec.H264:
            parts += [
                f"x264enc {common}",
                "h264parse config-interval=-1",
                "video/x-h264,stream-format=byte-stream,alignment=au",
            ]
        else:
            parts += [
                f"x265enc {common} log-level=none",
                "h265parse config-interval=-1",
                "video/x-h265,stream-format=byte-stream,alignment=au",
            ]
        parts.append(
            "appsink name=sink emit-signals=true sync=false enable-last-sample=false "
            "max-buffers=0 drop=false wait-on-eos=false"
        )
        layers = scene_layers(self.picture, self.size.width, self.size.height, self.fps)
        return " ".join([" ! ".join(parts), *layers])


class FlowGate(Protocol):
    """Tells a subscription whether its camera currently streams (read on a streaming thread)."""

    @property
    def flowing(self) -> bool: ...


class Subscription:
    """One camera's media fed by a shared encoder; offered frames on its streaming thread."""

    def __init__(self, appsrc: GstApp.AppSrc, gate: FlowGate, label: str) -> None:
        self._appsrc = appsrc
        self._gate = gate
        self._label = label
        self._awaiting_keyframe = True

    def offer(self, buffer: Gst.Buffer, keyframe: bool) -> None:
        """Forward ``buffer`` if the camera flows and the stream can be decoded from it."""
        if not self._gate.flowing:
            self._awaiting_keyframe = True
            return
        if self._awaiting_keyframe and not keyframe:
            return
        if self._appsrc.get_current_level_bytes() > _MAX_QUEUED_BYTES:
            if not self._awaiting_keyframe:
                logger.debug("%s: media queue full, skipping to the next key frame", self._label)
            self._awaiting_keyframe = True
            return
        copy = buffer.copy_region(_COPY_FLAGS, 0, buffer.get_size())
        copy.offset = buffer.pts  # the capture time, for the media's CaptureClock
        ret = self._appsrc.push_buffer(copy)
        if ret == Gst.FlowReturn.OK:
            self._awaiting_keyframe = False
        else:
            # FLUSHING before the media started or while it shuts down: retry at a key frame.
            self._awaiting_keyframe = True


class SceneControl:
    """The object and brightness of one scene encoder's picture.

    Thread-safe (the control endpoint calls it from its own threads). It changes properties
    only, never element state. The compositor says which output frame it is about to make
    (``samples-selected``, on its streaming thread) and the object is placed where that frame's
    running time puts it, so the motion is exact per frame and needs no timer. (A controller
    with the path as interpolated points left the object still for ~2 s at times, with fresh
    frames around it: a motion test then saw two events, or none.)
    """

    def __init__(
        self, pipeline: Gst.Pipeline, geometry: SceneGeometry, *, noise: bool, label: str
    ) -> None:
        self._pipeline = pipeline
        self._label = label
        self._noise = noise
        self._lock = threading.Lock()
        # The object from the running time ``since`` on, and before it (frames for a time
        # before a command may still be drawn after it): read whole on the streaming thread.
        self._motion = ObjectMotion(geometry)
        self._placed: tuple[int, ObjectMotion, ObjectMotion] = (0, self._motion, self._motion)
        self._drawn_x: int | None = None  # where the streaming thread last drew it (None: not)
        self._brightness = 0.0
        self._balance = pipeline.get_by_name(SCENE_BALANCE)
        mixer = pipeline.get_by_name(SCENE_MIXER)
        self._object_pad = mixer.get_static_pad(OBJECT_PAD)
        mixer.set_property("emit-signals", True)
        mixer.connect("samples-selected", self._samples_selected_cb)

    def _samples_selected_cb(
        self, _mixer: Gst.Element, segment: Gst.Segment, pts: int, *_rest: object
    ) -> None:
        """The compositor's streaming thread, before it draws the frame at ``pts``."""
        t = segment.to_running_time(Gst.Format.TIME, pts)
        if pts == Gst.CLOCK_TIME_NONE or t == Gst.CLOCK_TIME_NONE:
            return  # no time, or outside the segment: the object stays as it was drawn
        since, before, after = self._placed
        box = (after if t >= since else before).box_at(t)
        x = None if box is None else box[0]
        if x == self._drawn_x:
            return  # a still object (or none) costs no property change
        self._drawn_x = x
        pad = self._object_pad
        if x is not None:
            pad.set_property("xpos", x)
        pad.set_property("alpha", 0.0 if x is None else 1.0)

    def running_time_ns(self) -> int:
        """The pipeline's running time now: the time base of the object's path."""
        clock = self._pipeline.get_clock()
        if clock is None:
            return 0
        return max(0, clock.get_time() - self._pipeline.get_base_time())

    def start_object(self) -> SceneStatus:
        return self._change(ObjectMotion.started)

    def stop_object(self) -> SceneStatus:
        return self._change(ObjectMotion.stopped)

    def remove_object(self) -> SceneStatus:
        return self._change(ObjectMotion.removed)

    def set_brightness(self, level: float) -> SceneStatus:
        """Step the whole picture's brightness to ``level`` (-1..1) from the next frame on."""
        level = check_brightness(level)
        with self._lock:
            self._balance.set_property("brightness", level)
            if level != self._brightness:
                logger.info("camera %s: brightness %g -> %g", self._label, self._brightness, level)
            self._brightness = level
            return self._status(self.running_time_ns())

    def status(self) -> SceneStatus:
        with self._lock:
            return self._status(self.running_time_ns())

    def _change(self, change: Callable[[ObjectMotion, int], ObjectMotion]) -> SceneStatus:
        with self._lock:
            now = self.running_time_ns()
            before = self._motion
            after = change(before, now)
            if after is not before:
                self._placed = (now, before, after)
                self._motion = after
                logger.info(
                    "camera %s: object %s at x=%.0f",
                    self._label,
                    after.state.value,
                    after.x_at(now),
                )
            return self._status(now)

    def _status(self, now_ns: int) -> SceneStatus:
        return SceneStatus(
            object=self._motion.state,
            brightness=self._brightness,
            noise=self._noise,
            object_box=self._motion.box_at(now_ns),
        )


class SharedEncoder:
    """Owns one encoder pipeline and fans its output out to subscriptions.

    ``start``/``stop`` must be called from a thread that is not one of this pipeline's streaming
    threads. ``subscribe``/``unsubscribe`` are thread-safe. ``on_error`` is called on a streaming
    thread with a description of the error; it must only hand the news over to a main loop.
    """

    def __init__(self, spec: EncoderSpec, on_error: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self._on_error = on_error
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()
        self._caps: Gst.Caps | None = None
        self._ready = threading.Event()
        self._frames = 0
        overlay_available = Gst.ElementFactory.find("clockoverlay") is not None
        if spec.overlay and not overlay_available:
            logger.info(
                "encoder %s: no clockoverlay element (Debian: gstreamer1.0-x); no clock drawn", spec
            )
        stamp_available = Gst.ElementFactory.find("nvrclockstamp") is not None
        if spec.stamp and not stamp_available:
            logger.info("encoder %s: no nvrclockstamp element (scripts/setup builds it)", spec)
        description = spec.pipeline_description(
            overlay_available=overlay_available, stamp_available=stamp_available
        )
        logger.debug("encoder %s: %s", spec, description)
        try:
            self._pipeline = Gst.parse_launch(description)
        except GLib.Error as exc:
            raise EncoderError(f"encoder {spec}: cannot build pipeline: {exc.message}") from exc
        self.scene: SceneControl | None = None
        """The scene's commands, for a scene encoder."""
        if spec.picture.is_scene:
            self.scene = SceneControl(
                self._pipeline,
                spec.geometry,
                noise=spec.picture is Picture.NOISY_SCENE,
                label=spec.camera,
            )
        sink = self._pipeline.get_by_name("sink")
        sink.connect("new-sample", self._new_sample_cb)
        self._pipeline.get_bus().set_sync_handler(self._bus_sync_cb)

    @property
    def caps(self) -> Gst.Caps | None:
        """Caps of the encoded stream, known once the first frame came out."""
        return self._caps

    @property
    def frames(self) -> int:
        return self._frames

    def start(self) -> None:
        if self._pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise EncoderError(f"encoder {self.spec}: cannot start the pipeline")

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the first encoded frame (and so the caps) is known."""
        return self._ready.wait(timeout_s)

    def stop(self) -> None:
        """Stop encoding and forget all subscriptions. Idempotent."""
        with self._lock:
            self._subscriptions = ()
        self._pipeline.set_state(Gst.State.NULL)

    def subscribe(self, appsrc: GstApp.AppSrc, gate: FlowGate, label: str) -> Subscription:
        subscription = Subscription(appsrc, gate, label)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    @property
    def subscriptions(self) -> int:
        return len(self._subscriptions)

    def _new_sample_cb(self, sink: GstApp.AppSink) -> Gst.FlowReturn:
        sample = sink.pull_sample()
        if sample is None:
            return Gst.FlowReturn.EOS
        buffer = sample.get_buffer()
        if self._caps is None:
            self._caps = sample.get_caps()
            self._ready.set()
        self._frames += 1
        keyframe = not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT)
        for subscription in self._subscriptions:  # an immutable snapshot
            subscription.offer(buffer, keyframe)
        return Gst.FlowReturn.OK

    def _bus_sync_cb(self, bus: Gst.Bus, message: Gst.Message) -> Gst.BusSyncReply:
        # Runs on the posting thread: only log and hand over; DROP so nothing piles up on the bus.
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            text = f"encoder {self.spec}: {error.message} ({debug})"
            logger.error("%s", text)
            if self._on_error is not None:
                self._on_error(text)
        elif message.type == Gst.MessageType.WARNING:
            warning, debug = message.parse_warning()
            logger.warning("encoder %s: %s (%s)", self.spec, warning.message, debug)
        return Gst.BusSyncReply.DROP
