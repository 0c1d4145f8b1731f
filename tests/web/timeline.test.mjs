// The recordings page's pure logic, with node's own test runner (node --test tests/web).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AHEAD_S, DAY_S, GAP_JUMP_S, LIVE_POLL_S, MIN_WINDOW_S, fraction, gapWords, holeBefore, pan,
  playerStep, REACH_PER_RATE_S, REACH_S, STUCK_POLL_S, STUCK_S, stuckJump, switchNow, ticks, zoom,
} from "../../src/nvr_gstreamer/web/static/timeline.js";

const day = { start: 1_000_000, end: 1_000_000 + DAY_S };

test("gaps are worded as on the desktop, unknown reasons readably", () => {
  assert.equal(gapWords("camera_down"), "camera down");
  assert.equal(gapWords("recording_off"), "recording switched off");
  assert.equal(gapWords("storage_unavailable"), "storage unavailable");
  assert.equal(gapWords("disk_full"), "disk full");
  assert.equal(gapWords("nvr_stopped"), "recorder not running");
  assert.equal(gapWords("failover"), "recorder node lost, camera moved to another node");
  assert.equal(gapWords("no_motion"), "no motion (recording on events only)");
  assert.equal(gapWords("power_cut"), "power cut");
});

test("zooming keeps the instant under the pointer where it was, inside the day", () => {
  const w = zoom(day, 0.5, day.start + 3600 * 6, day);
  assert.equal(w.end - w.start, DAY_S / 2);
  // The pointer was a quarter into the window; it still is.
  assert.equal(fraction(w, day.start + 3600 * 6), 0.25);
  const tight = zoom(w, 1e-6, day.start + 3600 * 6, day);
  assert.equal(tight.end - tight.start, MIN_WINDOW_S);
  const out = zoom(tight, 1e6, day.start, day);
  assert.deepEqual(out, day);
  const edge = zoom(day, 0.1, day.end, day);
  assert.equal(edge.end, day.end);
});

test("panning stops at the day's edges and keeps the width", () => {
  const w = { start: day.start + 100, end: day.start + 700 };
  assert.deepEqual(pan(w, -1000, day), { start: day.start, end: day.start + 600 });
  assert.deepEqual(pan(w, DAY_S, day), { start: day.end - 600, end: day.end });
  assert.deepEqual(pan(w, 50, day), { start: day.start + 150, end: day.start + 750 });
});

test("ticks are round local times, about as many as asked for", () => {
  const hour = -3600; // a zone one hour west of UTC
  const t = ticks(day, 12, hour);
  assert.ok(t.length >= 4 && t.length <= 12, String(t.length));
  const step = t[1] - t[0];
  for (const x of t) assert.equal((x + hour) % step, 0);
  assert.ok(t[0] >= day.start && t.at(-1) < day.end);
  const minute = ticks({ start: day.start, end: day.start + 60 }, 12, 0);
  assert.equal(minute[1] - minute[0], 5);
});

const base = { now: 100, fetchedEnd: 130, next: 130, live: false, sinceFetchS: 0, fetching: false, holes: [] };

test("the player fetches the next chunk when less than AHEAD_S is buffered, one at a time", () => {
  assert.equal(playerStep(base).fetch, null);
  assert.equal(playerStep({ ...base, fetchedEnd: 100 + AHEAD_S - 1 }).fetch, 130);
  assert.equal(playerStep({ ...base, fetchedEnd: 101, fetching: true }).fetch, null);
  assert.equal(playerStep({ ...base, fetchedEnd: 101, next: null }).fetch, null);
});

test("a gap between chunks is a hole the player jumps over, a short one is not", () => {
  assert.equal(holeBefore(null, 50), null);
  assert.equal(holeBefore(50, 50 + GAP_JUMP_S / 2), null);
  assert.equal(holeBefore(52, 51), null); // overlap (the file being written, asked again)
  const hole = holeBefore(50, 80);
  assert.deepEqual(hole, { from: 50, to: 80 });
  const at = (now) => playerStep({ ...base, now, holes: [hole] }).jumpTo;
  assert.equal(at(49), null);
  assert.equal(at(49.9), 80);
  assert.equal(at(60), 80);
  assert.equal(at(80), null);
});

test("at the end of the file being written the player asks again, at the end of all it stops", () => {
  const end = { ...base, fetchedEnd: 100.05, next: null };
  assert.deepEqual(playerStep(end), { fetch: null, jumpTo: null, ended: true });
  const live = { ...end, live: true };
  assert.deepEqual(playerStep({ ...live, sinceFetchS: LIVE_POLL_S - 0.1 }), { fetch: null, jumpTo: null, ended: false });
  assert.equal(playerStep({ ...live, sinceFetchS: LIVE_POLL_S }).fetch, 100.05);
  assert.equal(playerStep({ ...live, sinceFetchS: LIVE_POLL_S, fetching: true }).fetch, null);
  // Standing still at its end (played out what came): sooner.
  assert.equal(playerStep({ ...live, sinceFetchS: STUCK_POLL_S, stuck: true }).fetch, 100.05);
  assert.equal(playerStep({ ...live, sinceFetchS: STUCK_POLL_S - 0.1, stuck: true }).fetch, null);
});

test("stuck playback jumps a hole just ahead, further ahead the faster it plays", () => {
  const hole = { from: 110, to: 140 };
  const stuck = { now: 109.5, stuckS: STUCK_S, rate: 1, holes: [hole], nextRange: 140.03 };
  assert.equal(stuckJump(stuck), 140);
  assert.equal(stuckJump({ ...stuck, stuckS: STUCK_S - 0.1 }), null); // not stuck (yet)
  // At 16x Chromium stopped 2.5 s before the end of what was buffered: still in reach.
  const far = { ...stuck, now: 110 - 2.5 };
  assert.equal(stuckJump(far), null);
  assert.equal(stuckJump({ ...far, rate: 16 }), 140);
  assert.ok(REACH_S + REACH_PER_RATE_S * 16 >= 2.5);
  // Past the hole's start already (a jump landed short of the buffered range): the next range.
  assert.equal(stuckJump({ ...stuck, now: 140.001 }), 140.03);
  // A small hole between chunks, no gap in the footage: on to the next buffered range.
  assert.equal(stuckJump({ ...stuck, holes: [], nextRange: 109.8 }), 109.8);
  // Nothing ahead within reach: wait for the chunk on its way, or the end.
  assert.equal(stuckJump({ ...stuck, holes: [], nextRange: null }), null);
  assert.equal(stuckJump({ ...stuck, holes: [], nextRange: 130 }), null);
  assert.equal(stuckJump({ ...stuck, holes: [{ from: 90, to: 100 }], nextRange: null }), null);
});

test("a chunk with other tracks waits until what came before it has played out", () => {
  const s = { now: 100, fetchedEnd: 110, stuck: false, paused: false };
  assert.equal(switchNow(s), false); // 10 s of the old tracks still to play
  assert.equal(switchNow({ ...s, now: 109.9 }), true);
  assert.equal(switchNow({ ...s, now: 109.5, stuck: true }), true); // stopped short of the end
  assert.equal(switchNow({ ...s, now: 109.9, paused: true }), false); // not while paused
});
