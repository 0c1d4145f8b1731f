"""The scene picture of a simulated camera, as plain values (no GStreamer).

A scene camera shows a still picture (videotestsrc ``smpte75``: flat bars with sharp edges,
colours and grey levels for a detector to normalise) instead of the moving test pattern,
optionally with sensor noise, and on command a moving object or a brightness step: what a motion
detector must tell apart. :mod:`.encoder` draws it; this module says where things are and when.

The object is a white square, a tenth of the picture's height, on a horizontal line at 40 % of
the height (over smpte's bars, away from the clock at the top and the frame stamp at the bottom).
Started, it moves a quarter of the picture's width per second and bounces off the left and right
edges. Its position is a function of the encoder pipeline's running time
(:meth:`ObjectMotion.x_at`), evaluated for each frame the compositor makes, so each frame shows
it exactly where that frame's time puts it. Stopped, it stays where it is;
removed, it disappears (which a detector sees as motion too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from fractions import Fraction
from typing import Any

BACKGROUND_PATTERN = "smpte75"
"""videotestsrc pattern of the still background: 75 % colour bars, luma 35..180 where the object
moves (``smpte``'s 100 % white bar would hide a white object)."""
OBJECT_PATTERN = "white"
"""videotestsrc pattern of the object: solid white (luma 235), at least 55 grey levels brighter
than any bar it crosses."""
NOISE_SCALE = 4
"""The noise is drawn at 1/NOISE_SCALE of the picture size and scaled up: blobs of a few pixels
survive H.264/H.265 at ~1 Mbit/s, where per-pixel noise is mostly quantised away."""
NOISE_ALPHA = 0.06
"""Opacity of the noise layer (videotestsrc ``snow``). Measured at 640x360, 1000 kbit/s: consecutive
decoded frames differ by ~2 grey levels on average, ~30 at most."""
# What changes in every frame whatever the scene, as on a real camera: the clock text (top left)
# and the frame stamp (the bottom twelfth). A motion detector watching a simulated camera
# masks these (polygons in relative coordinates, as the config's motion.masks).
OVERLAY_MASKS = (
    ((0.0, 0.0), (0.5, 0.0), (0.5, 0.15), (0.0, 0.15)),
    ((0.0, 0.88), (1.0, 0.88), (1.0, 1.0), (0.0, 1.0)),
)
OBJECT_TOP_FRACTION = 0.4
"""Top edge of the object, as a fraction of the picture height."""
OBJECT_SPEED_FRACTION = 0.25
"""Object speed: this fraction of the picture's width per second."""
SCENE_MIXER = "scene"
"""Name of the scene's compositor in the encoder pipeline."""
OBJECT_PAD = "sink_1"
"""The compositor pad of the object (its ``xpos`` and ``alpha`` are commanded)."""
_BACKGROUND_PAD, _NOISE_PAD = "sink_0", "sink_2"

_NS_PER_S = 1_000_000_000


class NotASceneCameraError(ValueError):
    """A scene command (object, brightness) for a camera that shows the moving test pattern."""


class Picture(StrEnum):
    """What a simulated camera shows."""

    PATTERN = "pattern"
    """The moving videotestsrc picture of ``--pattern`` (the ball by default), shared by every
    camera of the same format."""
    SCENE = "scene"
    """A still scene with an object and a brightness to command; encoded for this camera alone."""
    NOISY_SCENE = "scene-noise"
    """The scene with mild sensor noise on every frame."""

    @property
    def is_scene(self) -> bool:
        return self is not Picture.PATTERN


class ObjectState(StrEnum):
    """The scene's object."""

    ABSENT = "absent"
    """Not drawn: never started, or removed."""
    MOVING = "moving"
    STILL = "still"
    """Stopped where it was, still drawn."""


@dataclass(frozen=True, slots=True)
class SceneGeometry:
    """Where the object is drawn and how fast it moves, for one picture size."""

    width: int
    height: int
    box: int
    """Side of the square object in pixels."""
    top: int
    """Its top edge (it moves horizontally only)."""
    speed_px_s: float

    @classmethod
    def for_size(cls, width: int, height: int) -> SceneGeometry:
        box = max(2, min(round(height / 10), width // 4))
        top = min(round(height * OBJECT_TOP_FRACTION), height - box)
        return cls(width, height, box, top, width * OBJECT_SPEED_FRACTION)

    @property
    def x_max(self) -> int:
        """Rightmost left edge: the object touches the right edge of the picture."""
        return self.width - self.box


@dataclass(frozen=True, slots=True)
class SceneStatus:
    """The scene part of a camera's status (``GET /cameras``)."""

    object: ObjectState
    brightness: float
    """videobalance brightness, -1 (black) .. 0 (as drawn) .. 1 (white)."""
    noise: bool
    object_box: tuple[int, int, int, int] | None
    """Object's (x, y, width, height) in pixels when the status was taken; None when absent."""

    def to_json(self) -> dict[str, Any]:
        return {
            "object": self.object.value,
            "brightness": self.brightness,
            "noise": self.noise,
            "object_box": list(self.object_box) if self.object_box is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SceneStatus:
        box = data.get("object_box")
        x, y, width, height = (int(v) for v in box) if box is not None else (0, 0, 0, 0)
        return cls(
            object=ObjectState(data["object"]),
            brightness=float(data["brightness"]),
            noise=bool(data["noise"]),
            object_box=(x, y, width, height) if box is not None else None,
        )


def check_brightness(level: float) -> float:
    """``level`` if it is a brightness in -1..1; raise ValueError otherwise."""
    if not -1.0 <= level <= 1.0:  # also rejects NaN
        raise ValueError(f"brightness must be between -1 and 1, got {level}")
    return float(level)


@dataclass(frozen=True, slots=True)
class ObjectMotion:
    """The object's state from ``since_ns`` (encoder running time) on. Transitions return new
    values; nothing here reads a clock."""

    geometry: SceneGeometry
    state: ObjectState = ObjectState.ABSENT
    since_ns: int = 0
    x: float = 0.0
    """Left edge at ``since_ns``."""
    direction: int = 1
    """+1 moving right, -1 moving left (at ``since_ns``; a moving object turns at the edges)."""

    def x_at(self, t_ns: int) -> float:
        """Left edge at running time ``t_ns`` (not before ``since_ns``: the position then)."""
        if self.state is not ObjectState.MOVING or t_ns <= self.since_ns:
            return self.x
        return self._unfold(t_ns)[0]

    def direction_at(self, t_ns: int) -> int:
        if self.state is not ObjectState.MOVING or t_ns <= self.since_ns:
            return self.direction
        return self._unfold(t_ns)[1]

    def box_at(self, t_ns: int) -> tuple[int, int, int, int] | None:
        """(x, y, width, height) at ``t_ns``; None when absent."""
        if self.state is ObjectState.ABSENT:
            return None
        g = self.geometry
        return (round(self.x_at(t_ns)), g.top, g.box, g.box)

    def started(self, t_ns: int) -> ObjectMotion:
        """Move from where it is at ``t_ns`` (appearing at the left edge if absent)."""
        if self.state is ObjectState.MOVING:
            return self
        return replace(self, state=ObjectState.MOVING, since_ns=t_ns)

    def stopped(self, t_ns: int) -> ObjectMotion:
        """Stay where it is at ``t_ns`` (still drawn). An absent object stays absent."""
        if self.state is not ObjectState.MOVING:
            return self
        return self._frozen(t_ns, ObjectState.STILL)

    def removed(self, t_ns: int) -> ObjectMotion:
        """Disappear at ``t_ns``; a later start continues from there."""
        if self.state is ObjectState.ABSENT:
            return self
        return self._frozen(t_ns, ObjectState.ABSENT)

    def _frozen(self, t_ns: int, state: ObjectState) -> ObjectMotion:
        t = max(t_ns, self.since_ns)
        return replace(
            self, state=state, since_ns=t, x=self.x_at(t), direction=self.direction_at(t)
        )

    def _unfold(self, t_ns: int) -> tuple[float, int]:
        # Unfold the bouncing path onto a circle of length 2 * x_max: 0..x_max going right,
        # x_max..2*x_max coming back.
        span = float(self.geometry.x_max)
        if span <= 0:
            return 0.0, self.direction
        start = self.x if self.direction > 0 else 2 * span - self.x
        u = (start + self.geometry.speed_px_s * (t_ns - self.since_ns) / _NS_PER_S) % (2 * span)
        return (u, 1) if u < span else (2 * span - u, -1)


def scene_mixer(picture: Picture, width: int, height: int) -> str:
    """gst-launch description of the scene's compositor, with the properties of its inputs
    (applied as they are linked): the object hidden until started, the noise at low alpha."""
    g = SceneGeometry.for_size(width, height)
    pads = [
        f"{_BACKGROUND_PAD}::zorder=0",
        f"{OBJECT_PAD}::zorder=1 {OBJECT_PAD}::alpha=0 {OBJECT_PAD}::ypos={g.top}",
    ]
    if picture is Picture.NOISY_SCENE:
        pads.append(
            f"{_NOISE_PAD}::zorder=2 {_NOISE_PAD}::alpha={NOISE_ALPHA} "
            f"{_NOISE_PAD}::width={width} {_NOISE_PAD}::height={height}"
        )
    return f"compositor name={SCENE_MIXER} background=black {' '.join(pads)}"


def scene_layers(picture: Picture, width: int, height: int, fps: Fraction) -> list[str]:
    """gst-launch descriptions of the compositor's inputs: background, object, noise (none for
    a pattern)."""
    if not picture.is_scene:
        return []
    g = SceneGeometry.for_size(width, height)
    rate = f"framerate={fps.numerator}/{fps.denominator}"
    # The background is drawn once; imagefreeze repeats that buffer (no copy, no redraw).
    layers = [
        f"videotestsrc num-buffers=1 pattern={BACKGROUND_PATTERN} "
        f"! video/x-raw,format=I420,width={width},height={height},{rate} "
        f"! imagefreeze is-live=true ! video/x-raw,{rate} ! {SCENE_MIXER}.{_BACKGROUND_PAD}",
        f"videotestsrc is-live=true pattern={OBJECT_PATTERN} "
        f"! video/x-raw,format=I420,width={g.box},height={g.box},{rate} "
        f"! {SCENE_MIXER}.{OBJECT_PAD}",
    ]
    if picture is Picture.NOISY_SCENE:
        small_w = max(2, width // NOISE_SCALE) & ~1
        small_h = max(2, height // NOISE_SCALE) & ~1
        layers.append(
            "videotestsrc is-live=true pattern=snow "
            f"! video/x-raw,format=I420,width={small_w},height={small_h},{rate} "
            f"! {SCENE_MIXER}.{_NOISE_PAD}"
        )
    return layers
