// @ts-check
// Reading the camera simulator's frame stamp in the page: each frame carries the wall-clock
// time it was made as a row of black and white cells along its bottom (native/nvrclockstamp.c;
// nvr_gstreamer/testing/frame_stamp.py reads the same layout). With `requestVideoFrameCallback`
// and a canvas this gives glass-to-glass latency of what the page really shows. Used by the
// tests and benchmarks; real cameras carry no stamp (then nothing is reported).

export const CELLS = 34;
const WRAP = 2 ** 32;

/** The picture row through the middle of the stamp band.
 * @param {number} height */
export function bandRow(height) {
  const band = Math.max(8, Math.floor(height / 12)) & ~1;
  return ((height - band) & ~1) + band / 2;
}

/** The stamp from one row of RGBA pixels through the band, or null.
 * @param {Uint8ClampedArray | number[]} rgba @param {number} width @returns {number | null} */
export function readStamp(rgba, width) {
  const cell = Math.floor(width / CELLS);
  if (cell < 2 || rgba.length < CELLS * cell * 4) return null;
  let value = 0;
  for (let i = 0; i < CELLS; i++) {
    const p = (i * cell + Math.floor(cell / 2)) * 4;
    const white = (rgba[p] + rgba[p + 1] + rgba[p + 2]) / 3 > 128;
    if (i === 0 && !white) return null;
    if (i === CELLS - 1) return white ? null : value;
    if (i > 0) value = value * 2 + (white ? 1 : 0);
  }
  return null;
}

/** How old a frame stamped `stamp` is at `nowMs` (ms since the epoch), modulo the wrap.
 * @param {number} stamp @param {number} nowMs */
export function ageMs(stamp, nowMs) {
  const age = (((Math.floor(nowMs) - stamp) % WRAP) + WRAP) % WRAP;
  return age >= WRAP / 2 ? age - WRAP : age;
}

/** Report the age (and stamp) of every frame `video` shows, until the returned function is
 * called.
 * @param {HTMLVideoElement} video @param {(ageMs: number, stamp: number) => void} report */
export function watchLatency(video, report) {
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  let stopped = false;
  /** @type {VideoFrameRequestCallback} */
  const onFrame = (_now, meta) => {
    if (stopped || ctx === null) return;
    const { width, height } = meta;
    if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
    const y = bandRow(height);
    ctx.drawImage(video, 0, y, width, 1, 0, 0, width, 1);
    const stamp = readStamp(ctx.getImageData(0, 0, width, 1).data, width);
    // When the frame reaches the screen, on the wall clock.
    if (stamp !== null) report(ageMs(stamp, performance.timeOrigin + meta.expectedDisplayTime), stamp);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  return () => { stopped = true; };
}
