// @ts-check
// The web app's pure logic (no DOM): badge wording, latency control. Tested with node --test.

/** @typedef {{id: string, name: string, state: string, reason: string, stalled: boolean,
 *   recording: boolean, recording_wanted: boolean, storage_state: string,
 *   next_retry_in_s: number | null, codec: string | null}} Camera */

export const TARGET_LAG_S = 0.3; // behind the newest frame, on purpose (room for network jitter)
export const NUDGE_LAG_S = 0.6; // further behind: play 5 % faster until back
export const SEEK_LAG_S = 2.0; // further still: jump to the newest frame
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
    default: return ["stopped", "off"];
  }
}

/** @param {Camera} cam */
export function storageNote(cam) {
  if (cam.storage_state === "full") return "disk full";
  if (cam.storage_state === "unavailable") return "storage unavailable";
  return "";
}

/** What the page does to keep latency steady, from how far behind it is.
 * @param {number} lagS @returns {{seekTo: number | null, rate: number}} */
export function latencyControl(lagS) {
  if (lagS > SEEK_LAG_S) return { seekTo: TARGET_LAG_S, rate: 1 };
  if (lagS > NUDGE_LAG_S) return { seekTo: null, rate: 1.05 };
  return { seekTo: null, rate: 1 };
}

