"""Scene cameras of the simulator, for motion detection: a still picture, noise, a moving object,
a brightness step, read back as decoded grey frames from real RTSP clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise

import gi
import numpy as np
import pytest

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstApp, GstVideo  # noqa: E402

from nvr_gstreamer.simulator.model import AudioCodec, Codec  # noqa: E402
from nvr_gstreamer.simulator.process import SimulatorProcess, SimulatorProcessError  # noqa: E402
from nvr_gstreamer.simulator.scene import ObjectState, Picture  # noqa: E402
from nvr_gstreamer.testing.frame_stamp import age_ms, band_row, read_stamp  # noqa: E402

pytestmark = pytest.mark.integration

Gst.init(None)

FPS = 15
WIDTH, HEIGHT = 640, 360
SPEED_PX_S = WIDTH / 4
BOX = 36  # a tenth of the height
BOX_TOP = 144  # 40 % of the height
WAIT_S = 8.0
CHANGED = 30
"""A pixel differing by more than this many grey levels from the frame before changed."""

# Where a detector should look: below the clock (top left) and above the frame stamp (bottom).
ROI_TOP = HEIGHT // 5
ROI_BOTTOM = (HEIGHT - max(8, HEIGHT // 12)) & ~1


@dataclass(frozen=True, slots=True)
class GreyFrame:
    stamp_ms: int | None
    """Wall-clock milliseconds (mod 2^32) the simulator drew into the frame."""
    pixels: np.ndarray  # HEIGHT x WIDTH, uint8 luma

    @property
    def roi(self) -> np.ndarray:
        return self.pixels[ROI_TOP:ROI_BOTTOM].astype(np.int16)


def _diff(a: GreyFrame, b: GreyFrame) -> np.ndarray:
    diff: np.ndarray = np.abs(b.roi - a.roi)
    return diff


def _changed_box(a: GreyFrame, b: GreyFrame) -> tuple[int, int, int, int] | None:
    """(x0, x1, y0, y1) in picture coordinates of the pixels that changed from a to b."""
    ys, xs = np.nonzero(_diff(a, b) > CHANGED)
    if not len(xs):
        return None
    return int(xs.min()), int(xs.max()), int(ys.min()) + ROI_TOP, int(ys.max()) + ROI_TOP


class GreyReader:
    """``rtspsrc`` with the video decoded to grey frames and the audio (if any) counted.

    Frames and audio buffers are recorded from streaming threads and awaited with bounded
    condition waits; ``pad-added`` only links, it changes no state.
    """

    def __init__(self, url: str, codec: Codec) -> None:
        name = codec.value
        self.pipeline = Gst.Pipeline.new("grey-reader")
        src = Gst.ElementFactory.make("rtspsrc", "src")
        for prop, value in (("location", url), ("latency", 100), ("tcp-timeout", 3_000_000)):
            src.set_property(prop, value)
        Gst.util_set_object_arg(src, "protocols", "tcp")
        src.connect("pad-added", self._pad_added_cb)
        self._video = Gst.parse_bin_from_description(
            f"rtp{name}depay ! {name}parse ! avdec_{name} ! videoconvert "
            "! video/x-raw,format=GRAY8 ! appsink name=grey emit-signals=true sync=false",
            True,
        )
        self._audio = Gst.ElementFactory.make("appsink", "audio")
        for prop, value in (("emit-signals", True), ("sync", False), ("async", False)):
            self._audio.set_property(prop, value)
        for element in (src, self._video, self._audio):
            self.pipeline.add(element)
        self._video.get_by_name("grey").connect("new-sample", self._frame_cb)
        self._audio.connect("new-sample", self._audio_cb)
        self._cond = threading.Condition()
        self.frames: list[GreyFrame] = []
        self.audio_buffers = 0

    def start(self) -> GreyReader:
        self.pipeline.set_state(Gst.State.PLAYING)
        return self

    def close(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)

    def _pad_added_cb(self, src: Gst.Element, pad: Gst.Pad) -> None:
        media = pad.get_current_caps().get_structure(0).get_string("media")
        sink = {"video": self._video, "audio": self._audio}.get(media)
        if sink is not None and not sink.get_static_pad("sink").is_linked():
            pad.link(sink.get_static_pad("sink"))

    def _frame_cb(self, sink: GstApp.AppSink) -> Gst.FlowReturn:
        sample = sink.pull_sample()
        info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
        buffer = sample.get_buffer()
        ok, mapped = buffer.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.OK
        rows = np.frombuffer(mapped.data, np.uint8, info.stride[0] * info.height)
        pixels = rows.reshape(info.height, info.stride[0])[:, : info.width].copy()
        buffer.unmap(mapped)
        stamp = read_stamp(pixels[band_row(info.height)].tobytes(), info.width)
        with self._cond:
            self.frames.append(GreyFrame(stamp, pixels))
            self._cond.notify_all()
        return Gst.FlowReturn.OK

    def _audio_cb(self, sink: GstApp.AppSink) -> Gst.FlowReturn:
        sink.pull_sample()
        with self._cond:
            self.audio_buffers += 1
            self._cond.notify_all()
        return Gst.FlowReturn.OK

    def wait(self, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout_s)

    def count(self) -> int:
        with self._cond:
            return len(self.frames)

    def next_frames(self, count: int, timeout_s: float = WAIT_S) -> list[GreyFrame]:
        """The ``count`` frames decoded after now (asserting they came in time)."""
        start = self.count()
        assert self.wait(
            lambda: len(self.frames) >= start + count, timeout_s
        ), f"{count} frames not decoded within {timeout_s} s"
        with self._cond:
            return self.frames[start : start + count]

    def frames_until(self, predicate: Callable[[GreyFrame], bool], timeout_s: float) -> int:
        """Index of the first frame from now on that satisfies ``predicate``."""
        start = self.count()
        found: list[int] = []

        def seen() -> bool:
            found[:] = [i for i in range(start, len(self.frames)) if predicate(self.frames[i])][:1]
            return bool(found)

        assert self.wait(seen, timeout_s), "no such frame came"
        return found[0]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(
        cameras=3,
        fps=FPS,
        size=(WIDTH, HEIGHT),
        camera_codecs={"cam2": Codec.H265},
        camera_audio={"cam1": AudioCodec.AAC},
        camera_pictures={"cam1": Picture.SCENE, "cam2": Picture.NOISY_SCENE},
    ) as simulator:
        yield simulator
        assert simulator.close() == 0, simulator.output()


@pytest.fixture
def readers(sim: SimulatorProcess) -> Iterator[Callable[[str], GreyReader]]:
    """Readers that have decoded their first frames; afterwards the scenes are reset."""
    opened: list[GreyReader] = []
    codecs = {"cam1": Codec.H264, "cam2": Codec.H265}

    def open_reader(camera: str) -> GreyReader:
        reader = GreyReader(sim.url(camera), codecs[camera]).start()
        opened.append(reader)
        reader.next_frames(FPS // 2)  # past the first key frame's settling
        return reader

    yield open_reader
    for reader in opened:
        reader.close()
    for camera in codecs:
        sim.object_remove(camera)
        sim.brightness(camera, 0)


def test_scene_without_object_is_still_with_stamp_clock_and_audio(
    sim: SimulatorProcess, readers: Callable[[str], GreyReader]
) -> None:
    status = sim.status()["cam1"].scene
    assert status is not None and status.object is ObjectState.ABSENT and not status.noise
    reader = readers("cam1")
    frames = reader.next_frames(2 * FPS)  # two seconds: a key frame and a clock tick
    for a, b in pairwise(frames):
        diff = _diff(a, b)
        assert diff.mean() < 0.2 and int((diff > CHANGED).sum()) == 0, (diff.mean(), diff.max())
    assert float(frames[0].roi.std()) > 30, "the scene has texture, it is not flat"
    # The frame stamp and the clock work as on pattern cameras; the clock ticks outside the ROI.
    stamps = [f.stamp_ms for f in frames]
    assert None not in stamps, stamps
    assert all(age_ms(a or 0, b or 0) > 0 for a, b in pairwise(stamps)), stamps
    assert 0 <= age_ms(stamps[-1] or 0, time.time() * 1000) < 3000
    if Gst.ElementFactory.find("clockoverlay") is not None:
        clock = [f.pixels[:ROI_TOP].astype(np.int16) for f in frames]
        assert any(np.abs(b - a).max() > CHANGED for a, b in pairwise(clock))
    assert reader.wait(lambda: reader.audio_buffers > 10), "cam1's AAC audio must flow"


def test_noise_differs_a_little_everywhere_and_nothing_more(
    sim: SimulatorProcess, readers: Callable[[str], GreyReader]
) -> None:
    status = sim.status()["cam2"].scene
    assert status is not None and status.noise
    frames = readers("cam2").next_frames(FPS)  # H.265
    for a, b in pairwise(frames):
        diff = _diff(a, b)
        left, right = diff[:, : WIDTH // 2].mean(), diff[:, WIDTH // 2 :].mean()
        assert 0.3 < left < 6 and 0.3 < right < 6, (left, right)
        assert (diff > CHANGED).mean() < 0.01, "noise, not a changed region"


def test_object_moves_across_on_every_stream_then_stops_and_stays(
    sim: SimulatorProcess, readers: Callable[[str], GreyReader]
) -> None:
    first, second = readers("cam1"), readers("cam1")  # two clients of one camera
    started = sim.object_start("cam1").scene
    assert started is not None and started.object is ObjectState.MOVING
    assert started.object_box is not None and started.object_box[1:] == (BOX_TOP, BOX, BOX)
    assert started.object_box[0] < SPEED_PX_S / 2, "appears at the left edge"

    for reader in (first, second):
        frames = reader.next_frames(FPS)
        boxes = [_changed_box(a, b) for a, b in pairwise(frames)]
        moving = [(f, box) for f, box in zip(frames[1:], boxes, strict=False) if box is not None]
        assert len(moving) >= len(frames) - 3, boxes  # the first may predate the start
        for _, (x0, x1, y0, y1) in moving:
            assert y0 >= BOX_TOP - 2 and y1 <= BOX_TOP + BOX + 2, (y0, y1)
            assert x1 - x0 < 2.5 * BOX, "only the object changed"
        # Steadily rightwards at a quarter of the width per second, by the frames' own stamps.
        centres = [(x0 + x1) / 2 for _, (x0, x1, _, _) in moving]
        times_s = [(f.stamp_ms or 0) / 1000 for f, _ in moving]
        assert all(b > a for a, b in pairwise(centres)), centres
        speed = np.polyfit(times_s, centres, 1)[0]
        assert 0.8 * SPEED_PX_S < speed < 1.2 * SPEED_PX_S, speed

    stopped = sim.object_stop("cam1").scene
    assert stopped is not None and stopped.object is ObjectState.STILL
    assert stopped.object_box is not None
    x = stopped.object_box[0]
    first.next_frames(FPS // 2)  # frames drawn before the stop, and the encoder settling
    frames = first.next_frames(FPS)
    for a, b in pairwise(frames):
        assert _changed_box(a, b) is None, "still again after the stop"
    # It stays where the status says, a frame's travel either way (the bars are darker).
    white = np.nonzero(frames[-1].pixels[BOX_TOP + BOX // 2] > 225)[0]
    assert white.size and int(white.max() - white.min()) + 1 == BOX, white
    assert abs(int(white.min()) - x) <= SPEED_PX_S / FPS + 2, (white.min(), x)
    assert sim.status()["cam1"].scene == stopped


def test_brightness_steps_the_whole_picture_at_once(
    sim: SimulatorProcess, readers: Callable[[str], GreyReader]
) -> None:
    reader = readers("cam1")
    before = reader.next_frames(3)[-1]
    level = 0.15
    expected = np.clip(before.roi + level * 255, 0, 255).mean()  # videobalance: Y + 255 * level
    assert before.roi.mean() + 20 < expected

    status = sim.brightness("cam1", level).scene
    assert status is not None and status.brightness == level
    moved = reader.frames_until(lambda f: abs(f.roi.mean() - before.roi.mean()) > 2, 3.0)
    after = reader.frames[moved : moved + 4] + reader.next_frames(3)
    for frame in after:  # the first changed frame already has the whole step: no ramp
        assert abs(frame.roi.mean() - expected) < 2.0, (frame.roi.mean(), expected)

    dark = sim.brightness("cam1", -1).scene  # lights off
    assert dark is not None and dark.brightness == -1
    reader.frames_until(lambda f: f.roi.mean() < 2, 3.0)
    frame = reader.next_frames(1)[0]
    assert frame.roi.max() < 10 and frame.stamp_ms is not None, "black, the stamp still drawn"

    sim.brightness("cam1", 0)
    reader.frames_until(lambda f: abs(f.roi.mean() - before.roi.mean()) < 1, 3.0)


def test_scene_commands_for_a_pattern_camera_are_refused(sim: SimulatorProcess) -> None:
    assert sim.status()["cam3"].scene is None
    with pytest.raises(SimulatorProcessError, match="409"):
        sim.object_start("cam3")
    with pytest.raises(SimulatorProcessError, match="409"):
        sim.brightness("cam3", 0.5)
    with pytest.raises(SimulatorProcessError, match="400"):
        sim.brightness("cam1", 1.5)
