// @ts-check
// The web app's pure logic (no DOM): badge wording, latency control. Tested with node --test.

/** @typedef {{id: string, name: string, state: string, reason: string, stalled: boolean,
 *   recording: boolean, recording_wanted: boolean, storage_state: string,
 *   next_retry_in_s: number | null, codec: string | null, motion?: boolean | null,
 *   recorded_by?: string | null}} Camera */

export const TARGET_LAG_S = 0.25; // behind the newest frame, on purpose (room for network jitter)
export const DEADBAND_S = 0.05; // this close to the target: normal speed
export const MAX_NUDGE = 0.1; // at most 10 % faster or 5 % slower: not visible as such
export const SEEK_LAG_S = 2.0; // further behind: jump to the newest frame
export const KEEP_S = 10; // buffered video kept behind the playhead

/** The state badge, in the desktop's words.
 * @param {Camera} cam @param {number} elapsedS @returns {[string, string]} text and tone */
export function badge(cam, elapsedS = 0) {
  switch (cam.state) {
    case "streaming": return ["streaming", "ok"];
    case "connecting": return ["connecting", "busy"];
    case "reconnecting": {
      const what = cam.stalled ? "stalled" : "reconnecting";
      if (cam.next_retry_in_s === null) return [`${what}: waiting for the camera`, "busy"];
      const left = Math.max(0, Math.round(cam.next_retry_in_s - elapsedS));
      return [left === 0 ? `${what}: retrying now` : `${what}: retry in ${left} s`, "busy"];
    }
    case "unauthorized": return ["unauthorized: check user and password", "bad"];
    case "not_found": return ["not found: check the stream path", "bad"];
    case "failed": return ["failed: gave up retrying", "bad"];
    case "disabled": return ["disabled", "off"];
    default:
      // Cluster mode: another node records it (this one does not connect to it).
      if (cam.recorded_by) return [`recorded by node ${cam.recorded_by}`, "off"];
      return ["stopped", "off"];
  }
}

/** @param {Camera} cam */
export function storageNote(cam) {
  if (cam.storage_state === "full") return "disk full";
  if (cam.storage_state === "unavailable") return "storage unavailable";
  return "";
}

/** What the page does to keep latency steady, from how far behind it is: playback a little
 * faster the further it is behind (proportional, so it settles at the target instead of at the
 * edge of a threshold), a little slower when too close to the newest frame (it would stall),
 * a jump only when far behind.
 * @param {number} lagS @returns {{seekTo: number | null, rate: number}} */
export function latencyControl(lagS) {
  if (lagS > SEEK_LAG_S) return { seekTo: TARGET_LAG_S, rate: 1 };
  const error = lagS - TARGET_LAG_S;
  if (Math.abs(error) <= DEADBAND_S) return { seekTo: null, rate: 1 };
  const rate = 1 + Math.max(-MAX_NUDGE / 2, Math.min(MAX_NUDGE, error * 0.25));
  return { seekTo: null, rate: Math.round(rate * 1000) / 1000 };
}
