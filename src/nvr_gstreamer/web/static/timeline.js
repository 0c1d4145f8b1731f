// @ts-check
// The recordings page's pure logic (no DOM): the visible window of the timeline and its zoom,
// time ticks, gap wording, and the player's decisions (when to fetch the next chunk, when a
// gap is skipped). Tested with node --test.

/** The desktop's words for why nothing was recorded. */
export const GAP_WORDS = /** @type {Record<string, string>} */ ({
  camera_down: "camera down",
  recording_off: "recording switched off",
  storage_unavailable: "storage unavailable",
  disk_full: "disk full",
  nvr_stopped: "recorder not running",
  no_motion: "no motion (recording on events only)",
  failover: "recorder node lost, camera moved to another node",
});

/** @param {string} reason */
export function gapWords(reason) {
  return GAP_WORDS[reason] ?? reason.replaceAll("_", " ");
}

export const DAY_S = 86400;
export const MIN_WINDOW_S = 60; // zoomed in all the way: one minute across
export const AHEAD_S = 15; // fetch the next chunk when less than this is buffered ahead
export const FIRST_SPAN_S = 6; // a seek asks for a short chunk: the picture comes sooner
export const NEXT_SPAN_S = 30;
export const GAP_JUMP_S = 0.5; // a hole in the footage longer than this is a gap to skip
export const LIVE_POLL_S = 2; // at the end of the file being written: ask again this often
export const STUCK_POLL_S = 0.5; // ... this often when playback stands still there

/** A time window [start, end) on the axis, in epoch seconds.
 * @typedef {{start: number, end: number}} Window */

/** The window after zooming by ``factor`` (< 1 zooms in) around ``at``, kept inside the day.
 * @param {Window} w @param {number} factor @param {number} at @param {Window} day
 * @returns {Window} */
export function zoom(w, factor, at, day) {
  const width = Math.min(day.end - day.start, Math.max(MIN_WINDOW_S, (w.end - w.start) * factor));
  const frac = w.end > w.start ? (at - w.start) / (w.end - w.start) : 0.5;
  return pan({ start: at - frac * width, end: at - frac * width + width }, 0, day);
}

/** The window moved by ``by`` seconds, kept inside the day (its width unchanged).
 * @param {Window} w @param {number} by @param {Window} day @returns {Window} */
export function pan(w, by, day) {
  const width = w.end - w.start;
  const start = Math.min(day.end - width, Math.max(day.start, w.start + by));
  return { start, end: start + width };
}

/** Fraction (0..1) of the window's width where ``t`` is. @param {Window} w @param {number} t */
export function fraction(w, t) {
  return (t - w.start) / (w.end - w.start);
}

const TICK_STEPS_S = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600];

/** Tick times for a window so that about ``count`` labelled ticks fit, aligned to the local
 * clock (``offsetS``: the local zone's offset from UTC at that time, east positive).
 * @param {Window} w @param {number} count @param {number} offsetS @returns {number[]} */
export function ticks(w, count, offsetS) {
  const step = TICK_STEPS_S.find((s) => (w.end - w.start) / s <= count) ?? 6 * 3600;
  const first = Math.ceil((w.start + offsetS) / step) * step - offsetS;
  const out = [];
  for (let t = first; t < w.end; t += step) out.push(t);
  return out;
}

/** "HH:MM" or "HH:MM:SS" (when the ticks are seconds apart) in local time.
 * @param {number} t @param {boolean} seconds */
export function clockText(t, seconds) {
  const d = new Date(t * 1000);
  const two = (/** @type {number} */ n) => String(n).padStart(2, "0");
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  return seconds ? `${hm}:${two(d.getSeconds())}` : hm;
}

/** A hole in the appended footage: [from, to) in wall time, and why (a gap's reason, or "").
 * @typedef {{from: number, to: number}} Hole */

/** What the player does at a tick. ``now``: the wall time shown; ``fetchedEnd``: the end of the
 * last chunk appended; ``next``: where the next chunk starts (null: no more footage known yet);
 * ``live``: the last chunk came from the file being written, which grows (ask again from its
 * end every ``LIVE_POLL_S``; ``sinceFetchS`` since the last ask); ``fetching``: a chunk is on
 * its way; ``holes``: the gaps between appended chunks; ``stuck``: playing, the time stands
 * still (at the end of the file being written: ask again sooner, every ``STUCK_POLL_S``).
 * @param {{now: number, fetchedEnd: number, next: number | null, live: boolean,
 *   sinceFetchS: number, fetching: boolean, holes: Hole[], stuck?: boolean}} s
 * @returns {{fetch: number | null, jumpTo: number | null, ended: boolean}} */
export function playerStep(s) {
  const ahead = !s.fetching && s.fetchedEnd - s.now < AHEAD_S;
  let fetch = null;
  if (ahead && s.next !== null) fetch = s.next;
  else if (ahead && s.live && s.sinceFetchS >= (s.stuck ? STUCK_POLL_S : LIVE_POLL_S)) fetch = s.fetchedEnd;
  const hole = s.holes.find((h) => h.from - 0.15 <= s.now && s.now < h.to);
  return {
    fetch,
    jumpTo: hole ? hole.to : null,
    ended: s.next === null && !s.live && !s.fetching && s.fetchedEnd - s.now < 0.15,
  };
}

export const STUCK_S = 0.3; // playing, yet the time stood still this long: stuck
export const REACH_S = 0.5; // stuck: a hole this close ahead is jumped over, ...
export const REACH_PER_RATE_S = 0.25; // ... plus this much per 1x of speed

/** Where playback that is stuck jumps to (``now`` has not moved for ``stuckS`` s while
 * playing at ``rate``): past the first hole ahead within reach (a gap in the footage), else
 * to the next buffered range's start (``nextRange``, a small hole between chunks) within
 * reach. null: wait (a chunk is on its way, or this is the end).
 *
 * With audio, Chromium stops short of the end of what is buffered (its audio renderer wants
 * decoded audio ahead: stuck 0.08 s before the end at 2x, 2.5 s at 16x, measured), so the
 * player never reaches a hole that it jumps when reaching it.
 * @param {{now: number, stuckS: number, rate: number, holes: Hole[], nextRange: number | null}} s
 * @returns {number | null} */
export function stuckJump(s) {
  if (s.stuckS < STUCK_S) return null;
  const reach = REACH_S + REACH_PER_RATE_S * s.rate;
  const hole = s.holes.find((h) => s.now < h.to && h.from - s.now <= reach);
  if (hole) return hole.to;
  if (s.nextRange !== null && s.nextRange > s.now && s.nextRange - s.now <= reach) return s.nextRange;
  return null;
}

/** Whether the player takes up a waiting chunk whose tracks differ from its SourceBuffer's
 * (audio came or went: a fresh MediaSource, as one SourceBuffer's tracks cannot change):
 * once what came before it has played out (``now`` at ``fetchedEnd``, or ``stuck`` short of
 * it), and only while playing.
 * @param {{now: number, fetchedEnd: number, stuck: boolean, paused: boolean}} s */
export function switchNow(s) {
  return !s.paused && (s.stuck || s.fetchedEnd - s.now < 0.15);
}

/** The hole a new chunk opens, if it starts later than the last one ended.
 * @param {number | null} lastEnd @param {number} first @returns {Hole | null} */
export function holeBefore(lastEnd, first) {
  return lastEnd !== null && first - lastEnd > GAP_JUMP_S ? { from: lastEnd, to: first } : null;
}
