"""Cheap motion detection on small grey frames: frames in, motion out.

Pure: no GStreamer, no clock; each frame comes with its time. The pipeline's motion branch
hands over GRAY8 frames about 100 px tall at a few frames a second; a frame costs well under
a millisecond. The steps, for each frame:

1. **Contrast normalisation.** The frame is shifted by its median and scaled so that its spread
   (interquartile range / 1.349: the standard deviation, for a normal distribution) is
   ``SPREAD`` grey levels, both over the pixels no mask hides; a global change of brightness or
   contrast (auto exposure, a cloud) cancels out. Quartiles, not mean and standard deviation: a
   big bright object barely moves them, so it does not shift the rest of the picture. A flat
   frame (night, fog) is not stretched beyond ``MIN_SPREAD``, so its sensor noise stays noise.
2. **Blur** with a 3x3 box: single noisy pixels fade, an object stays.
3. **Difference** with a running average of the past frames (float32), which follows the
   scene with the time constant ``MotionSettings.average_s``; a pixel has changed where the
   difference exceeds ``threshold``. Masked pixels never count.
4. **Recalibration.** When more than ``recalibrate_fraction`` of the unmasked picture changed at
   once (the camera switched to infrared, the lights went on), that is not motion: the average
   becomes this frame and the result says ``recalibrated``. "Changed" after normalisation, or
   before it: by more than ``threshold`` raw grey levels from a running average of the raw
   frames. The raw test catches a brightness step that clips (dark parts go black), which
   normalisation cannot undo; an object, however big, changes less than that share.
5. **Regions.** Changed pixels are counted on a grid of cells about 1/12 of the height (8 px
   for a 100 px frame); touching cells with changes (diagonals too) are one region, so one
   object is one region even when its difference has holes. A region is motion when its changed
   pixels cover ``min_area`` of the picture; its box is that of its changed pixels. The few
   hundred cells are grouped in plain Python; every per-pixel step is numpy.

The first frame (and the first after :meth:`MotionDetector.reset`) only initialises the average.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Point = tuple[float, float]  # (x, y), relative: 0..1 from the top left
Polygon = tuple[Point, ...]
Box = tuple[float, float, float, float]  # (x, y, width, height), relative to the frame

SPREAD = 50.0  # the spread every frame is scaled to, in grey levels
MIN_SPREAD = 8.0  # a frame flatter than this is scaled as if it had this spread
IQR_PER_STD = 1.349  # interquartile range of a normal distribution, in standard deviations
GRID_ROWS = 12  # the region grid has about this many rows of cells, whatever the frame height
MIN_SIDE = 3  # the blur's width: the smallest frame


@dataclass(frozen=True, slots=True)
class MotionSettings:
    """How sensitive the detector is (``MotionConfig`` in the config maps onto this)."""

    threshold: int = 25  # a pixel's difference from the average, in normalised grey levels
    min_area: float = 0.002  # the smallest region that is motion, as a share of the frame
    masks: tuple[Polygon, ...] = ()  # areas never looked at (timestamps, trees, a road)
    # Time constant of the running average: a change that stays is 63 % learnt after this long
    # (about 0.1 of each new frame at 5 fps), whatever the frame rate.
    average_s: float = 2.0
    recalibrate_fraction: float = 0.6  # more of the unmasked frame changed at once: recalibrate

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= 255:
            raise ValueError(f"threshold must be 1..255, not {self.threshold}")
        if not 0.0 <= self.min_area <= 1.0:
            raise ValueError(f"min_area must be 0..1 (a share of the frame), not {self.min_area}")
        if not self.average_s > 0.0:
            raise ValueError(f"average_s must be more than 0 seconds, not {self.average_s}")
        if not 0.0 < self.recalibrate_fraction <= 1.0:
            raise ValueError(
                f"recalibrate_fraction must be more than 0 and at most 1, "
                f"not {self.recalibrate_fraction}"
            )
        for i, polygon in enumerate(self.masks):
            if len(polygon) < 3:
                raise ValueError(f"mask {i} has {len(polygon)} points; a polygon needs 3 or more")
            for x, y in polygon:
                if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    raise ValueError(
                        f"mask {i} has the point ({x}, {y}); coordinates are relative, 0..1"
                    )


@dataclass(frozen=True, slots=True)
class MotionResult:
    t: float
    score: float  # the share of the unmasked frame that changed, 0..1
    boxes: tuple[Box, ...] = ()  # one per region of at least min_area, in reading order
    recalibrated: bool = False  # the average was reset to this frame; never motion

    def __post_init__(self) -> None:
        if self.recalibrated and self.boxes:
            raise ValueError("a recalibrated result has no motion boxes")

    @property
    def motion(self) -> bool:
        return bool(self.boxes)


Frame = bytes | bytearray | memoryview | npt.NDArray[np.uint8]


class MotionDetector:
    """Compares each frame with a running average of the ones before; see the module's doc.

    ``stride`` is the number of bytes per row of a frame given as bytes (the rows of a GStreamer
    GRAY8 buffer are padded to a multiple of 4, the default); a 2-D array may be ``height`` rows
    of ``width`` or of ``stride`` values.
    """

    def __init__(
        self, width: int, height: int, settings: MotionSettings, stride: int | None = None
    ) -> None:
        if width < MIN_SIDE or height < MIN_SIDE:
            raise ValueError(f"a frame of {width}x{height} px is too small (at least 3x3)")
        stride = (width + 3) // 4 * 4 if stride is None else stride
        if stride < width:
            raise ValueError(f"stride {stride} is less than the width {width}")
        self._width, self._height, self._stride = width, height, stride
        self._settings = settings
        masked = rasterise_masks(settings.masks, width, height)
        self._unmasked_count = int(np.count_nonzero(~masked))
        if self._unmasked_count == 0:
            raise ValueError("the masks cover the whole frame: nothing is left to watch")
        self._unmasked = ~masked
        self._keep = self._unmasked.astype(np.float32)  # 1 where the detector looks
        # Changed pixels per cell = rows_to_cells @ changed @ cols_to_cells (BLAS, no loop).
        self._cell = max(1, height // GRID_ROWS)
        self._rows_to_cells = _cells_of(height, self._cell).T
        self._cols_to_cells = _cells_of(width, self._cell)
        self._min_pixels = settings.min_area * width * height
        # The running averages: of the normalised and blurred frames, and of the raw ones.
        self._averages: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None
        self._last_t = -math.inf

    def reset(self) -> None:
        """Forget the scene (the camera came back after an outage): the next frame initialises.

        Time still goes on: the next frame may not be older than the last one fed.
        """
        self._averages = None

    def feed(self, frame: Frame, t: float) -> MotionResult:
        """Compare one frame, taken at ``t`` seconds (monotonic), with the scene learnt so far.

        A time before the previous frame's is a ``ValueError`` (the caller mixed up clocks);
        the same time again is fine (the average then learns nothing from the frame).
        """
        if not t >= self._last_t:  # (NaN too)
            raise ValueError(f"frame time {t} s is before the previous frame's {self._last_t} s")
        pixels = self._pixels(frame)
        raw = pixels.astype(np.float32)  # a contiguous copy
        grey = self._normalised(pixels, raw)
        alpha = -math.expm1((self._last_t - t) / self._settings.average_s)
        self._last_t = t
        if self._averages is None:
            self._averages = (grey, raw)
            return MotionResult(t, 0.0)
        average, raw_average = self._averages
        diff, raw_diff = grey - average, raw - raw_average
        changed = self._changed(diff)
        score = int(np.count_nonzero(changed)) / self._unmasked_count
        relit = int(np.count_nonzero(self._changed(raw_diff))) / self._unmasked_count
        limit = self._settings.recalibrate_fraction
        if score > limit or relit > limit:
            self._averages = (grey, raw)
            return MotionResult(t, score, recalibrated=True)
        average += alpha * diff
        raw_average += alpha * raw_diff
        return MotionResult(t, score, self._regions(changed))

    # ---- steps ------------------------------------------------------------------------------

    def _pixels(self, frame: Frame) -> npt.NDArray[np.uint8]:
        w, h, stride = self._width, self._height, self._stride
        if isinstance(frame, np.ndarray):
            if frame.dtype != np.uint8:
                raise ValueError(f"a frame array must hold uint8 grey levels, not {frame.dtype}")
            if frame.ndim == 2 and frame.shape[0] == h and frame.shape[1] in (w, stride):
                return frame[:, :w]
            if frame.ndim != 1:
                raise ValueError(
                    f"a frame array of shape {frame.shape}; expected ({h}, {w}) or ({h}, {stride})"
                )
        data = np.frombuffer(frame, dtype=np.uint8)
        if data.size != stride * h:
            raise ValueError(
                f"a frame of {data.size} bytes; {w}x{h} GRAY8 with a stride of {stride} "
                f"is {stride * h} bytes"
            )
        return data.reshape(h, stride)[:, :w]

    def _changed(self, diff: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """Unmasked pixels that differ by more than the threshold."""
        changed = np.abs(diff) > self._settings.threshold
        changed &= self._unmasked
        return changed

    def _normalised(
        self, pixels: npt.NDArray[np.uint8], raw: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        low, median, high = _quartiles(np.bincount(pixels[self._unmasked]))
        grey = raw - median
        grey *= self._keep  # masked pixels are 0 in every frame: they never change
        grey *= SPREAD / max((high - low) / IQR_PER_STD, MIN_SPREAD)
        # 3x3 box blur, separable; the outermost pixels keep their own value.
        rows = grey[:-2] + grey[1:-1] + grey[2:]
        grey[1:-1, 1:-1] = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0
        return grey

    def _regions(self, changed: npt.NDArray[np.bool_]) -> tuple[Box, ...]:
        """Boxes of the regions with enough changed pixels to be motion (min_area)."""
        min_pixels = self._min_pixels
        if np.count_nonzero(changed) < min_pixels:
            return ()  # not even all of them together would do
        counts = self._rows_to_cells @ changed @ self._cols_to_cells
        # Row-major order (argwhere's), so regions come in the reading order of their first cell.
        cells = {(y, x): int(counts[y, x]) for y, x in np.argwhere(counts).tolist()}
        boxes: list[Box] = []
        cell = self._cell
        for region in _connected(cells):
            if sum(cells[c] for c in region) < min_pixels:
                continue
            y0 = min(y for y, _ in region) * cell
            y1 = (max(y for y, _ in region) + 1) * cell
            x0 = min(x for _, x in region) * cell
            x1 = (max(x for _, x in region) + 1) * cell
            boxes.append(_pixel_box(changed, x0, y0, x1, y1))
        return tuple(boxes)


_STEPS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def _quartiles(histogram: npt.NDArray[np.intp]) -> tuple[float, float, float]:
    """First quartile, median and third quartile of grey levels counted in a histogram.

    Interpolated within a level (its pixels spread evenly over [level, level + 1)), so that
    quartiles move smoothly with the picture and not by whole grey levels.
    """
    below = np.cumsum(histogram)  # pixels at or below each level
    rank = np.array([0.25, 0.5, 0.75]) * below[-1]
    level = np.searchsorted(below, rank)  # the first level reaching each rank
    within = (rank - below[level] + histogram[level]) / histogram[level]
    low, median, high = (level + within).tolist()
    return low, median, high


def _cells_of(size: int, cell: int) -> npt.NDArray[np.float32]:
    """(size, cells) matrix: 1 where pixel i lies in cell j."""
    index = np.arange(size) // cell
    member = np.equal(index[:, None], np.unique(index))
    return member.astype(np.float32)


def _connected(cells: dict[tuple[int, int], int]) -> list[list[tuple[int, int]]]:
    """Groups of touching cells (8-connected): flood fill over the cells that changed."""
    left = set(cells)
    groups: list[list[tuple[int, int]]] = []
    for start in cells:
        if start not in left:
            continue
        left.discard(start)
        group, todo = [start], [start]
        while todo:
            y, x = todo.pop()
            for dy, dx in _STEPS:
                near = (y + dy, x + dx)
                if near in left:
                    left.discard(near)
                    group.append(near)
                    todo.append(near)
        groups.append(group)
    return groups


def _pixel_box(changed: npt.NDArray[np.bool_], x0: int, y0: int, x1: int, y1: int) -> Box:
    """The box of the changed pixels inside a region's cells, relative to the frame."""
    h, w = changed.shape
    inside = changed[y0:y1, x0:x1]
    ys = np.flatnonzero(inside.any(axis=1))
    xs = np.flatnonzero(inside.any(axis=0))
    top, left = y0 + int(ys[0]), x0 + int(xs[0])
    bottom, right = y0 + int(ys[-1]) + 1, x0 + int(xs[-1]) + 1
    return (left / w, top / h, (right - left) / w, (bottom - top) / h)


def rasterise_masks(polygons: Sequence[Polygon], width: int, height: int) -> npt.NDArray[np.bool_]:
    """Pixels whose centre lies inside any of the polygons (even-odd rule).

    A centre on a left or top edge is inside, on a right or bottom edge outside: masks that
    share an edge share out the pixels on it, as pixels share out the picture.
    """
    masked = np.zeros((height, width), dtype=bool)
    px = (np.arange(width) + 0.5) / width
    py = (np.arange(height)[:, None] + 0.5) / height
    for polygon in polygons:
        inside = np.zeros((height, width), dtype=bool)
        for (xa, ya), (xb, yb) in itertools.pairwise((*polygon, polygon[0])):
            if ya == yb:
                continue  # a horizontal edge crosses no horizontal ray
            # The edge crosses the ray going right from (px, py) when py lies between its ends
            # (half-open, so a vertex is counted once) and the crossing is right of px.
            spans = (ya <= py) != (yb <= py)
            x_cross = xa + (py - ya) * (xb - xa) / (yb - ya)
            inside ^= spans & (px < x_cross)
        masked |= inside
    return masked
