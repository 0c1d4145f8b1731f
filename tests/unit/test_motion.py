"""MotionDetector on synthetic grey frames: a textured scene with sensor noise, squares that
appear and move, lighting changes, masks, padded rows, bad input; and properties of any
frames (hypothesis). Milliseconds, no GStreamer."""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nvr_gstreamer.camera.motion import (
    Box,
    MotionDetector,
    MotionResult,
    MotionSettings,
    Polygon,
    rasterise_masks,
)

W, H = 178, 100  # what the pipeline's motion branch delivers
STRIDE = 180  # GRAY8 rows are padded to a multiple of 4
FPS = 5.0
Image = npt.NDArray[np.uint8]


@cache
def texture(seed: int = 1) -> npt.NDArray[np.float64]:
    """A smooth random scene, grey levels 20..180 (room for +60 without saturating)."""
    rng = np.random.default_rng(seed)
    img = rng.random((H, W))
    for _ in range(4):
        img = (img + np.roll(img, 1, 0) + np.roll(img, -1, 0) + np.roll(img, 1, 1)) / 4
    img = (img - img.mean()) / img.std() * 35 + 100
    return np.clip(img, 20, 180)


class Scene:
    """Frames of a texture with ±3 grey levels of sensor noise, and squares drawn on top."""

    def __init__(self, seed: int = 1) -> None:
        self.base = texture(seed)
        self.rng = np.random.default_rng(seed + 100)

    def frame(self, *squares: tuple[int, int, int], value: int = 240) -> Image:
        img = self.base + self.rng.integers(-3, 4, (H, W))
        for x, y, size in squares:
            img[y : y + size, x : x + size] = value
        return np.clip(img, 0, 255).astype(np.uint8)


def detector(**kwargs: object) -> MotionDetector:
    return MotionDetector(W, H, MotionSettings(**kwargs))  # type: ignore[arg-type]


def warmed(scene: Scene, frames: int = 10, **kwargs: object) -> tuple[MotionDetector, float]:
    """A detector that has seen the static scene for a while; the time of the next frame."""
    d = detector(**kwargs)
    for i in range(frames):
        r = d.feed(scene.frame(), i / FPS)
        assert not r.motion
    return d, frames / FPS


def pixels(box: Box) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return round(x * W), round(y * H), round(w * W), round(h * H)


# ---- motion and its boxes -------------------------------------------------------------------


def test_a_static_scene_with_sensor_noise_never_moves() -> None:
    scene = Scene()
    d = detector()
    results = [d.feed(scene.frame(), i / FPS) for i in range(300)]
    assert not any(r.motion or r.recalibrated for r in results)
    assert max(r.score for r in results) == 0.0


def test_the_first_frame_only_initialises() -> None:
    scene = Scene()
    d = detector()
    assert d.feed(scene.frame((50, 30, 40)), 0.0) == MotionResult(0.0, 0.0)
    # The square was part of the first frame: the scene, not motion.
    assert not d.feed(scene.frame((50, 30, 40)), 0.2).motion


def test_a_square_that_appears_is_one_box_around_it() -> None:
    scene = Scene()
    d, t = warmed(scene)
    r = d.feed(scene.frame((100, 30, 16)), t)
    assert r.motion and not r.recalibrated
    # The 3x3 blur widens the change by one pixel on each side.
    assert [pixels(b) for b in r.boxes] == [(99, 29, 18, 18)]
    # Its changed pixels: the 18x18 box but for a few corners (only 1/9 or 2/9 of the change).
    assert 300 < r.score * W * H <= 18 * 18
    assert r.t == t


def test_a_moving_square_is_followed_by_its_box() -> None:
    scene = Scene()
    d, t = warmed(scene)
    for i in range(20):
        x = 20 + 4 * i
        r = d.feed(scene.frame((x, 50, 16)), t + i / FPS)
        assert r.motion
        (box,) = r.boxes
        left, top, width, height = pixels(box)
        # The box holds the square where it is now; behind it, the trail that the running
        # average has not yet forgotten.
        assert (top, height) == (49, 18)
        assert left + width == x + 17
        assert left <= x - 1


def test_two_objects_far_apart_are_two_boxes_in_reading_order() -> None:
    scene = Scene()
    d, t = warmed(scene)
    r = d.feed(scene.frame((20, 60, 16), (140, 10, 12)), t)
    assert [pixels(b) for b in r.boxes] == [(139, 9, 14, 14), (19, 59, 18, 18)]


def test_a_box_holds_its_own_object_only_even_with_another_one_next_to_its_corner() -> None:
    scene = Scene()
    d, t = warmed(scene, min_area=0.0)
    frame = scene.frame((50, 10, 4), (10, 50, 4))  # small squares at two corners ...
    for i in range(8, 40):  # ... of a diagonal line (cells of 8 px: they do not touch it)
        frame[i : i + 4, i : i + 4] = 240
    r = d.feed(frame, t)
    assert [pixels(b) for b in r.boxes] == [(7, 7, 37, 37), (49, 9, 6, 6), (9, 49, 6, 6)]


def test_on_frames_under_24_px_tall_each_pixel_is_a_cell() -> None:
    base = np.full((16, 16), 100, np.uint8)
    d = MotionDetector(16, 16, MotionSettings(min_area=0.0, threshold=25), stride=16)
    d.feed(base, 0.0)
    frame = base.copy()
    frame[6:9, 2] = frame[6:9, 6] = 255  # two bars 3 px apart: 1 px apart after the blur
    boxes = d.feed(frame, 0.2).boxes
    assert [(round(x * 16), round(w * 16)) for x, _, w, _ in boxes] == [(1, 3), (5, 3)]


def test_changes_a_few_pixels_apart_are_one_object() -> None:
    scene = Scene()
    d, t = warmed(scene)
    near = d.feed(scene.frame((40, 30, 16), (60, 30, 16)), t)  # 4 px between them
    assert [pixels(b) for b in near.boxes] == [(39, 29, 38, 18)]
    d, t = warmed(scene)
    far = d.feed(scene.frame((40, 30, 16), (76, 30, 16)), t)  # 20 px between them
    assert [pixels(b) for b in far.boxes] == [(39, 29, 18, 18), (75, 29, 18, 18)]


def test_min_area_applies_to_each_region_alone() -> None:
    def feed(min_area: float, *squares: tuple[int, int, int]) -> MotionResult:
        scene = Scene()  # the same frames each time
        d, t = warmed(scene, min_area=min_area)
        return d.feed(scene.frame(*squares), t)

    small, big = (60, 10, 6), (100, 30, 30)  # the small one spans two cells, and comes first
    both = feed(0.0, big, small)
    assert [pixels(b) for b in both.boxes] == [(59, 9, 8, 8), (99, 29, 32, 32)]
    small_count = round((both.score - feed(0.0, big).score) * W * H)
    assert 40 < small_count <= 64
    assert [pixels(b) for b in feed((small_count + 1) / (W * H), big, small).boxes] == [
        (99, 29, 32, 32)
    ]
    assert len(feed(small_count / (W * H), big, small).boxes) == 2


def test_an_object_smaller_than_min_area_is_not_motion() -> None:
    scene = Scene()
    # 0.002 of the frame is 35.6 px; a 3x3 square changes 5x5 = 25 px at most (the blur).
    d, t = warmed(scene)
    small = d.feed(scene.frame((80, 40, 3)), t)
    assert not small.motion and small.boxes == ()
    assert 21 <= small.score * W * H <= 25  # seen, but too small
    d, t = warmed(scene, min_area=0.0)
    assert [pixels(b) for b in d.feed(scene.frame((80, 40, 3)), t).boxes] == [(79, 39, 5, 5)]
    d, t = warmed(scene)
    assert d.feed(scene.frame((80, 40, 6)), t).motion  # 8x8 = 64 px


def test_min_area_is_a_share_of_the_frame_that_a_regions_changed_pixels_must_reach() -> None:
    def feed(min_area: float) -> MotionResult:
        scene = Scene()  # the same frames each time
        d, t = warmed(scene, min_area=min_area)
        return d.feed(scene.frame((100, 30, 16)), t)

    count = round(feed(0.0).score * W * H)  # fewer than its box's 324 px (the corners)
    assert count < 18 * 18
    assert feed(count / (W * H)).motion
    assert not feed((count + 1) / (W * H)).motion


def test_threshold_is_the_difference_a_pixel_needs_to_count() -> None:
    scene = Scene()
    # 30 grey levels brighter in a scene whose spread is 35: 43 normalised levels.
    frame = scene.frame().astype(np.int16)
    frame[30:60, 100:130] += 30
    for threshold, expected in [(30, True), (50, False)]:
        d, t = warmed(Scene(), threshold=threshold)
        r = d.feed(frame.astype(np.uint8), t)
        assert r.motion is expected
        assert (r.score > 0.04) is expected


def test_a_difference_of_exactly_the_threshold_is_not_a_change() -> None:
    # Half the frame at grey level 99, the other at 100, with a 5x5 block at 104 that moves:
    # the histogram stays the same, so does the normalisation (median 100, scale 50/8 = 6.25),
    # and the middle of the block is 4 x 6.25 = 25 normalised levels, to the bit.
    def frame(x: int) -> Image:
        img = np.full((H, W), 99, np.uint8)
        img[:, W // 2 :] = 100
        img[40:45, x : x + 5] = 104
        return img

    for threshold, expected in [(25, 0), (24, 9 + 9)]:  # 3x3 block middles, where it was and is
        d = MotionDetector(W, H, MotionSettings(threshold=threshold, min_area=0.0))
        d.feed(frame(100), 0.0)
        assert round(d.feed(frame(120), 0.2).score * W * H) == expected


def test_an_object_that_stays_becomes_scene_at_the_pace_of_average_s_whatever_the_fps() -> None:
    scene = Scene()

    def learnt_after(fps: float, average_s: float) -> float:
        d = detector(average_s=average_s)
        d.feed(scene.frame(), 0.0)
        for i in range(1, 1000):
            t = i / fps
            if not d.feed(scene.frame((60, 30, 30)), t).motion:
                return t
        raise AssertionError("never learnt")

    slow, quick = learnt_after(5.0, 2.0), learnt_after(5.0, 1.0)
    assert 3.0 < slow < 10.0
    assert quick == pytest.approx(slow / 2, abs=0.4)
    assert learnt_after(1.0, 2.0) == pytest.approx(slow, abs=1.5)  # within a frame
    assert learnt_after(20.0, 2.0) == pytest.approx(slow, abs=0.3)


def test_frames_at_the_same_time_teach_the_average_nothing() -> None:
    scene = Scene()
    d, t = warmed(scene)
    for _ in range(100):
        assert d.feed(scene.frame((60, 30, 30)), t).motion


def test_reset_makes_the_next_frame_the_scene() -> None:
    scene = Scene()
    d, t = warmed(scene)
    d.reset()
    assert d.feed(scene.frame((60, 30, 30)), t) == MotionResult(t, 0.0)
    assert not d.feed(scene.frame((60, 30, 30)), t + 0.2).motion
    assert d.feed(scene.frame(), t + 0.4).motion  # the square left: that is motion now
    # Time still goes on.
    d.reset()
    with pytest.raises(ValueError, match="before the previous frame's"):
        d.feed(scene.frame(), t)


# ---- lighting -------------------------------------------------------------------------------


def test_a_global_brightness_step_recalibrates_and_is_never_motion() -> None:
    scene = Scene()
    d, t = warmed(scene)
    results = [d.feed(scene.frame() + 60, t + i / FPS) for i in range(20)]
    assert [r.recalibrated for r in results] == [True] + [False] * 19
    assert not any(r.motion for r in results)
    assert results[0].score == 0.0  # normalisation alone saw no change: the raw test did


def test_normalisation_alone_cancels_a_global_brightness_step() -> None:
    scene = Scene()
    d, t = warmed(scene, recalibrate_fraction=1.0)  # every pixel changed: not more than that
    for i in range(20):
        assert d.feed(scene.frame() + 60, t + i / FPS) == MotionResult(t + i / FPS, 0.0)
    d, t = warmed(Scene(), recalibrate_fraction=0.999)
    assert d.feed(scene.frame() + 60, t).recalibrated


def test_a_brightness_step_that_clips_is_never_motion() -> None:
    # Flat bars as on videotestsrc's smpte75, as the simulator's scene cameras show; a step of
    # 40 % blackens the darker ones, 35 % whitens the brighter ones: nothing to normalise away.
    bars = np.repeat(np.array([180, 162, 131, 112, 84, 65, 35, 35], np.int16), W // 8 + 1)[:W]
    picture = np.tile(bars, (H, 1))
    picture[75:, :] = 16
    picture[75:, W // 4 : W // 2] = 235
    rng = np.random.default_rng(5)
    d = detector()

    def frame(step: int) -> Image:
        noise = rng.integers(-2, 3, (H, W))
        return np.clip(picture + step + noise, 16, 235).astype(np.uint8)

    t = 0.0
    for step in (0, -102, 0, 89, 0, 25, 0):
        for _ in range(15):
            r = d.feed(frame(step), t)
            t += 1 / FPS
            assert not r.motion, (step, r)


@pytest.mark.parametrize(("gain", "offset"), [(0.5, 64), (1.4, -40), (0.25, 120)])
def test_a_contrast_change_is_never_motion(gain: float, offset: int) -> None:
    scene = Scene()
    d, t = warmed(scene)
    for i in range(10):
        changed = scene.frame().astype(np.float64) * gain + offset
        r = d.feed(np.clip(changed, 0, 255).astype(np.uint8), t + i / FPS)
        assert not r.motion


def test_a_slow_change_of_light_is_followed_without_recalibrating() -> None:
    scene = Scene()
    d, t = warmed(scene)
    for i in range(60):  # dawn: 5 grey levels a second brighter, for 12 s
        r = d.feed(scene.frame() + i, t + i / FPS)
        assert not r.motion and not r.recalibrated


def test_most_of_the_frame_changing_at_once_recalibrates_and_motion_works_again_after() -> None:
    scene = Scene()
    d, t = warmed(scene)
    inverted = 255 - scene.frame()  # the camera switched to infrared
    r = d.feed(inverted, t)
    assert r == MotionResult(t, r.score, recalibrated=True)
    assert not r.motion and r.score > 0.6
    # The new picture is the scene at once: motion in the very next frame is seen.
    r = d.feed(255 - scene.frame((100, 30, 16), value=15), t + 0.2)
    assert [pixels(b) for b in r.boxes] == [(99, 29, 18, 18)]
    for i in range(2, 30):  # no second recalibration when the square goes
        r = d.feed(255 - scene.frame(), t + i / FPS)
        assert not r.recalibrated
    assert not r.motion


def test_recalibrate_fraction_is_the_share_of_the_frame_that_must_change() -> None:
    scene = Scene()
    half: Polygon = ((0.0, 0.0), (1.0, 0.0), (1.0, 0.5), (0.0, 0.5))
    # With the top half masked, a change of the bottom half is all the unmasked frame.
    d, t = warmed(scene, masks=(half,))
    bottom_changed = scene.frame().copy()
    bottom_changed[50:] = 255 - bottom_changed[50:]
    r = d.feed(bottom_changed, t)
    assert r.recalibrated and r.score > 0.6

    # A faint scene (7 grey levels of spread) turned around: the normalised picture changes
    # nearly everywhere, the raw one by less than the threshold.
    def turned(recalibrate_fraction: float) -> MotionResult:
        scene = Scene()  # the same frames each time
        scene.base = (scene.base - 100) / 5 + 100
        d, t = warmed(scene, recalibrate_fraction=recalibrate_fraction)
        return d.feed(scene.frame()[::-1, ::-1], t)

    r = turned(1.0)  # never
    assert r.motion and not r.recalibrated and r.score > 0.5
    assert turned(r.score).motion  # exactly the share: still motion
    assert turned(r.score * 0.999).recalibrated


def test_a_recalibrated_result_cannot_carry_boxes() -> None:
    with pytest.raises(ValueError, match="^a recalibrated result has no motion boxes$"):
        MotionResult(1.0, 0.9, ((0.0, 0.0, 0.5, 0.5),), recalibrated=True)
    assert not MotionResult(1.0, 0.9, recalibrated=True).motion


# ---- masks ----------------------------------------------------------------------------------

TOP_RIGHT: Polygon = ((0.5, 0.0), (1.0, 0.0), (1.0, 0.6), (0.5, 0.6))


def test_motion_inside_a_mask_is_ignored_and_outside_it_is_not() -> None:
    scene = Scene()
    d, t = warmed(scene, masks=(TOP_RIGHT,))
    inside = d.feed(scene.frame((120, 10, 20)), t)
    assert not inside.motion and inside.score == 0.0
    outside = d.feed(scene.frame((20, 60, 20)), t + 0.2)
    assert [pixels(b) for b in outside.boxes] == [(19, 59, 22, 22)]


def test_an_object_across_a_mask_edge_has_a_box_of_its_unmasked_part_only() -> None:
    scene = Scene()
    d, t = warmed(scene, masks=(TOP_RIGHT,))
    r = d.feed(scene.frame((79, 10, 20)), t)  # x 79..98; the mask starts at x = 89
    assert [pixels(b) for b in r.boxes] == [(78, 9, 11, 22)]


def test_score_is_a_share_of_the_unmasked_frame() -> None:
    scene = Scene()
    d, t = warmed(scene, masks=(TOP_RIGHT,))
    r = d.feed(scene.frame((20, 60, 20)), t)
    assert r.score == pytest.approx(22 * 22 / (W * H * 0.7), rel=0.02)


def test_a_mask_hides_changes_from_the_normalisation_too() -> None:
    scene = Scene()
    d, t = warmed(scene, masks=(TOP_RIGHT,))
    flashing = scene.frame().copy()
    flashing[:55, 92:] = 255  # most of the masked area lights up: a TV, a sky
    assert d.feed(flashing, t) == MotionResult(t, 0.0)


def test_masks_that_share_an_edge_share_out_the_pixels_on_it() -> None:
    # Pixel centres at 0.1, 0.3, 0.5, 0.7, 0.9: the middle ones lie on the edges at 0.5. Like
    # pixels, a polygon takes those on its left and top edges, not those on its right and bottom.
    left_top: Polygon = ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.5))
    assert show(rasterise_masks([left_top], 5, 5)) == ["##...", "##...", ".....", ".....", "....."]
    right_bottom: Polygon = ((0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0))
    assert show(rasterise_masks([right_bottom], 5, 5)) == [
        ".....",
        ".....",
        "..###",
        "..###",
        "..###",
    ]


def test_masks_are_rasterised_by_pixel_centre_even_odd_and_united() -> None:
    diamond: Polygon = ((0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5))
    assert show(rasterise_masks([diamond], 5, 5)) == ["..#..", ".###.", "#####", ".###.", "..#.."]
    ell: Polygon = ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0))
    assert show(rasterise_masks([ell], 8, 4)) == ["####....", "####....", "########", "########"]
    # Clockwise or not, and a second polygon adds to the first.
    dot: Polygon = ((0.75, 0.0), (0.75, 0.25), (1.0, 0.25), (1.0, 0.0))
    assert show(rasterise_masks([ell[::-1], dot], 8, 4)) == [
        "####..##",
        "####....",
        "########",
        "########",
    ]
    assert show(rasterise_masks([], 3, 2)) == ["...", "..."]


def show(mask: npt.NDArray[np.bool_]) -> list[str]:
    return ["".join("#" if v else "." for v in row) for row in mask]


# ---- frames as they come: bytes, padded rows, arrays ----------------------------------------


def padded(img: Image, rng: np.random.Generator) -> bytes:
    """As GStreamer lays out GRAY8: STRIDE bytes a row, the padding arbitrary."""
    rows = rng.integers(0, 256, (H, STRIDE), dtype=np.uint8)
    rows[:, :W] = img
    return rows.tobytes()


def test_padded_rows_are_read_without_their_padding() -> None:
    scene, rng = Scene(), np.random.default_rng(7)
    d = MotionDetector(W, H, MotionSettings(), stride=STRIDE)
    for i in range(20):
        r = d.feed(padded(scene.frame(), rng), i / FPS)
        assert not r.motion  # the padding changes every frame, unseen
    frame = scene.frame((100, 30, 16))
    r = d.feed(memoryview(padded(frame, rng)), 4.0)
    assert [pixels(b) for b in r.boxes] == [(99, 29, 18, 18)]
    # The same frame as a (height, stride) array, and as a (height, width) one.
    rows = np.frombuffer(padded(frame, rng), dtype=np.uint8).reshape(H, STRIDE)
    assert d.feed(rows, 4.0).boxes == r.boxes
    assert d.feed(frame, 4.0).boxes == r.boxes
    assert d.feed(bytearray(padded(frame, rng)), 4.0).boxes == r.boxes


def test_the_default_stride_is_gstreamers_width_rounded_up_to_4() -> None:
    scene = Scene()
    d = MotionDetector(W, H, MotionSettings())
    d.feed(padded(scene.frame(), np.random.default_rng(1)), 0.0)
    with pytest.raises(
        ValueError,
        match=r"^a frame of 17800 bytes; 178x100 GRAY8 with a stride of 180 is 18000 bytes$",
    ):
        d.feed(scene.frame().tobytes(), 0.2)
    tight = MotionDetector(W, H, MotionSettings(), stride=W)
    assert tight.feed(scene.frame().tobytes(), 0.0) == MotionResult(0.0, 0.0)
    assert MotionDetector(8, 4, MotionSettings()).feed(bytes(32), 0.0) == MotionResult(0.0, 0.0)
    assert MotionDetector(5, 4, MotionSettings()).feed(bytes(32), 0.0) == MotionResult(0.0, 0.0)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (bytes(100), r"^a frame of 100 bytes; 178x100 GRAY8 with a stride of 180 is 18000 bytes$"),
        (np.zeros((H, W), np.float32), r"^a frame array must hold uint8 grey levels, not float32$"),
        (
            np.zeros((H, W + 1), np.uint8),
            r"^a frame array of shape \(100, 179\); expected \(100, 178\) or \(100, 180\)$",
        ),
        (np.zeros((H + 1, W), np.uint8), r"^a frame array of shape \(101, 178\); expected"),
        (np.zeros((H, W, 1), np.uint8), r"^a frame array of shape \(100, 178, 1\); expected"),
        (
            np.zeros(H * W, np.uint8),
            r"^a frame of 17800 bytes; 178x100 GRAY8 with a stride of 180 is 18000 bytes$",
        ),
    ],
)
def test_a_frame_of_the_wrong_size_or_type_is_rejected(frame: object, message: str) -> None:
    d = MotionDetector(W, H, MotionSettings())
    with pytest.raises(ValueError, match=message):
        d.feed(frame, 0.0)  # type: ignore[arg-type]


def test_a_flat_1d_array_of_the_right_size_is_a_frame() -> None:
    d = MotionDetector(W, H, MotionSettings())
    assert d.feed(np.zeros(H * STRIDE, np.uint8), 0.0) == MotionResult(0.0, 0.0)


def test_time_going_backwards_is_an_error() -> None:
    scene = Scene()
    d, t = warmed(scene)
    with pytest.raises(
        ValueError, match=r"^frame time 1.5 s is before the previous frame's 1.8 s$"
    ):
        d.feed(scene.frame(), 1.5)
    with pytest.raises(ValueError, match=r"^frame time nan s is before"):
        d.feed(scene.frame(), float("nan"))
    assert not d.feed(scene.frame(), 1.8).motion


# ---- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0}, "threshold must be 1..255, not 0"),
        ({"threshold": 256}, "threshold must be 1..255, not 256"),
        ({"min_area": -0.01}, r"min_area must be 0..1 \(a share of the frame\), not -0.01"),
        ({"min_area": 1.01}, r"min_area must be 0..1 \(a share of the frame\), not 1.01"),
        ({"average_s": 0.0}, "average_s must be more than 0 seconds, not 0.0"),
        (
            {"recalibrate_fraction": 0.0},
            "recalibrate_fraction must be more than 0 and at most 1, not 0.0",
        ),
        (
            {"recalibrate_fraction": 1.01},
            "recalibrate_fraction must be more than 0 and at most 1, not 1.01",
        ),
        (
            {"masks": (TOP_RIGHT, ((0.0, 0.0), (1.0, 1.0)))},
            "mask 1 has 2 points; a polygon needs 3 or more",
        ),
        (
            {"masks": (((0.0, 0.0), (1.2, 0.0), (0.0, 1.0)),)},
            r"mask 0 has the point \(1.2, 0.0\); coordinates are relative, 0..1",
        ),
        (
            {"masks": (((0.0, 0.0), (1.0, 0.0), (0.0, -0.1)),)},
            r"mask 0 has the point \(0.0, -0.1\); coordinates are relative, 0..1",
        ),
        (
            {"masks": (((0.0, 0.0), (-0.1, 0.0), (0.0, 1.0)),)},
            r"mask 0 has the point \(-0.1, 0.0\); coordinates are relative, 0..1",
        ),
        (
            {"masks": (((0.0, 0.0), (1.0, 0.0), (0.0, 1.2)),)},
            r"mask 0 has the point \(0.0, 1.2\); coordinates are relative, 0..1",
        ),
        (
            {"masks": (((0.0, 0.0), (1.0, 0.0), (0.0, float("nan"))),)},
            r"mask 0 has the point \(0.0, nan\)",
        ),
    ],
)
def test_settings_out_of_range_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        MotionSettings(**kwargs)  # type: ignore[arg-type]


def test_the_edges_of_each_range_are_accepted() -> None:
    corners: Polygon = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0))
    for kwargs in [
        {"threshold": 1, "min_area": 0.0, "recalibrate_fraction": 1.0, "masks": (corners,)},
        {"threshold": 255, "min_area": 1.0, "recalibrate_fraction": 0.001, "average_s": 0.001},
    ]:
        MotionSettings(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((2, 100), r"^a frame of 2x100 px is too small \(at least 3x3\)$"),
        ((178, 2), r"^a frame of 178x2 px is too small \(at least 3x3\)$"),
        ((178, 100, 177), r"^stride 177 is less than the width 178$"),
    ],
)
def test_frame_sizes_that_cannot_work_are_rejected(args: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MotionDetector(*args[:2], MotionSettings(), *args[2:])


def test_masks_that_cover_everything_are_rejected() -> None:
    everything: Polygon = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
    with pytest.raises(
        ValueError, match="^the masks cover the whole frame: nothing is left to watch$"
    ):
        MotionDetector(W, H, MotionSettings(masks=(everything,)))
    assert MotionDetector(3, 3, MotionSettings(), stride=3).feed(bytes(9), 0.0) == MotionResult(
        0.0, 0.0
    )


# ---- properties -----------------------------------------------------------------------------

sizes = st.tuples(st.integers(3, 40), st.integers(3, 30))


@st.composite
def frame_sequences(draw: st.DrawFn) -> tuple[int, int, list[Image]]:
    w, h = draw(sizes)
    frames = draw(st.lists(hnp.arrays(np.uint8, (h, w)), min_size=2, max_size=6))
    return w, h, frames


@settings(deadline=None)
@given(frame_sequences(), st.sampled_from([1, 25, 100]), st.sampled_from([0.0, 0.002, 0.1]))
def test_any_frames_give_a_score_in_0_1_and_boxes_inside_the_frame(
    seq: tuple[int, int, list[Image]], threshold: int, min_area: float
) -> None:
    w, h, frames = seq
    d = MotionDetector(w, h, MotionSettings(threshold=threshold, min_area=min_area))
    for i, frame in enumerate(frames):
        r = d.feed(frame, i / FPS)
        assert 0.0 <= r.score <= 1.0
        assert r.motion == bool(r.boxes)
        for x, y, bw, bh in r.boxes:
            assert 0.0 <= x < x + bw <= 1.0 and 0.0 <= y < y + bh <= 1.0
            assert bw * w * bh * h >= min_area * w * h  # a box holds at least its region


@settings(max_examples=100, deadline=None)
@given(sizes.flatmap(lambda s: hnp.arrays(np.uint8, (s[1], s[0]))), st.integers(2, 20))
def test_a_frame_seen_again_and_again_is_never_motion_whatever_it_shows(
    frame: Image, repeats: int
) -> None:
    h, w = frame.shape
    d = MotionDetector(w, h, MotionSettings(threshold=1, min_area=0.0))
    for i in range(repeats):
        assert d.feed(frame, i / FPS) == MotionResult(i / FPS, 0.0)
