// The page's frame-stamp reader on synthetic RGBA rows (the layout native/nvrclockstamp.c draws).
import { test } from "node:test";
import assert from "node:assert/strict";
import { CELLS, ageMs, bandRow, readStamp } from "../../src/nvr_gstreamer/web/static/frame_stamp.js";

/** @param {number} value @param {number} width */
function row(value, width) {
  const cell = Math.floor(width / CELLS);
  const px = new Uint8ClampedArray(width * 4).fill(128);
  for (let i = 0; i < CELLS; i++) {
    const white = i === 0 ? true : i === CELLS - 1 ? false : Boolean(Math.floor(value / 2 ** (32 - i)) % 2);
    for (let x = i * cell; x < (i + 1) * cell; x++) px.fill(white ? 235 : 16, x * 4, x * 4 + 3);
  }
  return px;
}

test("a drawn stamp reads back, at any width", () => {
  for (const value of [0, 1, 0x80000000, 0xffffffff, 1234567890]) {
    for (const width of [320, 640, 1920]) assert.equal(readStamp(row(value, width), width), value);
  }
});

test("no stamp: an all-black or all-white row, or one too narrow", () => {
  assert.equal(readStamp(new Uint8ClampedArray(640 * 4), 640), null);
  assert.equal(readStamp(new Uint8ClampedArray(640 * 4).fill(235), 640), null);
  assert.equal(readStamp(row(5, 640), 60), null);
});

test("age is taken modulo the wrap, and may be slightly negative", () => {
  assert.equal(ageMs(1000, 1250.7), 250);
  assert.equal(ageMs(2 ** 32 - 100, 2 ** 32 + 150), 250);
  assert.equal(ageMs(2000, 1990), -10);
});

test("the band row matches the Python reader's", () => {
  assert.equal(bandRow(360), 345);
  assert.equal(bandRow(96), 92);
});
