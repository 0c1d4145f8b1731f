// The web app's pure logic, with node's own test runner (node --test tests/web).
import assert from "node:assert/strict";
import { test } from "node:test";

import { badge, latencyControl, storageNote, SEEK_LAG_S, DEADBAND_S, MAX_NUDGE, TARGET_LAG_S } from
  "../../src/nvr_gstreamer/web/static/logic.js";

const cam = (over = {}) => ({
  id: "cam1", name: "cam1", state: "streaming", reason: "", stalled: false, recording: true,
  recording_wanted: true, storage_state: "ok", next_retry_in_s: null, codec: "h264", ...over,
});

test("badges say what the desktop says", () => {
  assert.deepEqual(badge(cam()), ["streaming", "ok"]);
  assert.deepEqual(badge(cam({ state: "connecting" })), ["connecting", "busy"]);
  assert.deepEqual(badge(cam({ state: "stopped" })), ["stopped", "off"]);
  assert.deepEqual(badge(cam({ state: "stopped", recorded_by: "rec-b" })), ["recorded by node rec-b", "off"]);
  assert.deepEqual(badge(cam({ state: "reconnecting" })), ["reconnecting: waiting for the camera", "busy"]);
  assert.deepEqual(badge(cam({ state: "unauthorized" })), ["unauthorized: check user and password", "bad"]);
  assert.deepEqual(badge(cam({ state: "not_found" })), ["not found: check the stream path", "bad"]);
  assert.deepEqual(badge(cam({ state: "failed" })), ["failed: gave up retrying", "bad"]);
  assert.deepEqual(badge(cam({ state: "disabled" })), ["disabled", "off"]);
  assert.deepEqual(badge(cam({ state: "stopped" })), ["stopped", "off"]);
});

test("the retry counts down from the moment the status came", () => {
  const c = cam({ state: "reconnecting", next_retry_in_s: 5 });
  assert.equal(badge(c)[0], "reconnecting: retry in 5 s");
  assert.equal(badge(c, 2.2)[0], "reconnecting: retry in 3 s");
  assert.equal(badge(c, 9)[0], "reconnecting: retrying now");
  assert.equal(badge({ ...c, stalled: true }, 1)[0], "stalled: retry in 4 s");
});

test("storage problems are named", () => {
  assert.equal(storageNote(cam({ storage_state: "full" })), "disk full");
  assert.equal(storageNote(cam({ storage_state: "unavailable" })), "storage unavailable");
  assert.equal(storageNote(cam()), "");
});

test("latency: steady near the target, nudged when behind, a seek only when far behind", () => {
  assert.deepEqual(latencyControl(TARGET_LAG_S), { seekTo: null, rate: 1 });
  assert.deepEqual(latencyControl(TARGET_LAG_S + DEADBAND_S), { seekTo: null, rate: 1 });
  assert.deepEqual(latencyControl(TARGET_LAG_S + 0.2), { seekTo: null, rate: 1.05 });
  assert.deepEqual(latencyControl(TARGET_LAG_S + 0.4), { seekTo: null, rate: 1.1 });
  assert.deepEqual(latencyControl(SEEK_LAG_S - 0.01), { seekTo: null, rate: 1 + MAX_NUDGE });
  assert.deepEqual(latencyControl(SEEK_LAG_S + 0.1), { seekTo: TARGET_LAG_S, rate: 1 });
  // Too close to the newest frame: a little slower, never below 95 %.
  assert.deepEqual(latencyControl(TARGET_LAG_S - 0.2), { seekTo: null, rate: 0.95 });
  assert.deepEqual(latencyControl(0), { seekTo: null, rate: 0.95 });
  // Monotonic: further behind never plays slower.
  let last = 0;
  for (let lag = 0; lag <= SEEK_LAG_S; lag += 0.01) {
    const { rate } = latencyControl(lag);
    assert.ok(rate >= last, `rate ${rate} at ${lag} after ${last}`);
    last = rate;
  }
});
