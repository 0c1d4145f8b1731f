// @ts-check
// The recordings page: every camera's day on one time axis (footage, and each gap with its
// reason), a still of the moment under the pointer while scrubbing, and a player that plays
// the stored footage from any instant through Media Source Extensions: keyframe-aligned
// fragmented MP4 chunks made by the server from the recorded files (nothing re-encoded), laid
// on a wall-clock timeline, gaps skipped with a visible note; with the recording's sound where
// the browser plays its codec (at 1x; muted at other speeds).

import {
  DAY_S, FIRST_SPAN_S, GAP_WORDS, NEXT_SPAN_S, clockText, fraction, gapWords, holeBefore, pan,
  STUCK_S, playerStep, stuckJump, switchNow, ticks, zoom,
} from "./timeline.js";

/** @typedef {import("./timeline.js").Window} Window */
/** @typedef {import("./timeline.js").Hole} Hole */
/** @typedef {{start_utc: number, end_utc: number, reason?: string}} ApiSpan */
/** @typedef {{footage: ApiSpan[], gaps: ApiSpan[]}} ApiTimeline */
/** @typedef {{id: number, camera: string, start_utc: number, end_utc: number | null, score: number, thumbnail: string | null}} ApiEvent */
/** @typedef {{data: ArrayBuffer, codec: string, first: number, mediaStart: number, end: number,
 *   next: number | null, live: boolean, frames: number}} Chunk */

const $ = (/** @type {string} */ sel) => /** @type {HTMLElement} */ (document.querySelector(sel));

/** @param {number} t */
const num = (t) => t.toFixed(6);

/** The chunks' audio codecs (as the server names them) and their MP4 codec parameter. */
const AUDIO_CODECS = /** @type {Record<string, string>} */ ({ aac: "mp4a.40.2", opus: "opus" });

/** The audio codecs this browser plays from MP4 in Media Source Extensions. */
function playableAudio() {
  return Object.keys(AUDIO_CODECS).filter((name) => MediaSource.isTypeSupported(`audio/mp4; codecs="${AUDIO_CODECS[name]}"`));
}

/** Local midnight of a "YYYY-MM-DD" day, epoch seconds. @param {string} day */
function dayStart(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d).getTime() / 1000;
}

/** @param {Date} d */
function dayText(d) {
  const two = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}

class Player {
  /** @param {HTMLVideoElement} video */
  constructor(video) {
    this.video = video;
    this.session = 0; // a new play() makes older fetches stale
    /** @type {string | null} */ this.camera = null;
    this.origin = 0; // wall time of media time 0
    /** @type {MediaSource | null} */ this.ms = null;
    /** @type {SourceBuffer | null} */ this.sb = null;
    /** @type {number | null} */ this.next = null;
    this.fetchedEnd = 0;
    this.fetching = false;
    this.live = false; // the last chunk came from the file being written
    this.fetchedAt = 0; // performance.now() of the last ask
    /** @type {Hole[]} */ this.holes = [];
    this.shown = 0; // wall time of the frame on screen
    this.frameS = 1 / 15; // frame interval, from the last chunk
    this.note = "";
    this.audio = playableAudio(); // asked for with every chunk ([]: video only)
    this.codec = ""; // of the SourceBuffer: "avc1.42c016" or "avc1.42c016,mp4a.40.2"
    this.soundWanted = true; // the sound button; audio plays at 1x only
    /** @type {Chunk | null} */ this.pending = null; // with other tracks: for a fresh MediaSource
    this.lastTime = -1; // currentTime at the last tick, and since when it stood still
    this.stillSince = 0;
    setInterval(() => this.tick(), 100);
    const onFrame = (/** @type {number} */ _now, /** @type {VideoFrameCallbackMetadata} */ meta) => {
      this.shown = this.origin + meta.mediaTime;
      this.video.requestVideoFrameCallback(onFrame);
    };
    this.video.requestVideoFrameCallback(onFrame);
  }

  /** Play ``camera`` from wall time ``t`` (the frame of that instant first).
   * @param {string} camera @param {number} t @param {number} origin */
  async play(camera, t, origin) {
    if (camera === this.camera && this.sb !== null && this.isBuffered(t)) {
      this.setNote("");
      await this.showThenPlay(t);
      return;
    }
    const session = ++this.session;
    this.camera = camera;
    this.origin = origin;
    this.holes = [];
    this.next = null;
    this.fetchedEnd = 0;
    this.pending = null;
    this.setNote("");
    this.sb = null;
    this.fetching = true;
    let chunk;
    try {
      chunk = await this.fetchChunk(camera, t, FIRST_SPAN_S);
      if (chunk !== null && chunk.codec.includes(",") && !MediaSource.isTypeSupported(`video/mp4; codecs="${chunk.codec}"`)) {
        // Each codec alone, not the pair: video only from now on.
        this.audio = [];
        chunk = await this.fetchChunk(camera, t, FIRST_SPAN_S);
      }
    } finally {
      if (session === this.session) this.fetching = false;
    }
    if (session !== this.session) return;
    if (chunk === null) { this.setNote("nothing recorded from here"); return; }
    if (chunk.first > t + 0.5) this.setNote(`nothing recorded at ${clockText(t, true)}: from ${clockText(chunk.first, true)}`);
    if (!await this.open(chunk, session)) return;
    await this.showThenPlay(Math.max(t, chunk.first));
  }

  /** A fresh MediaSource with ``chunk`` in it, for chunks with its tracks (those of one
   * SourceBuffer cannot change). @param {Chunk} chunk @param {number} session */
  async open(chunk, session) {
    const type = `video/mp4; codecs="${chunk.codec}"`;
    if (!MediaSource.isTypeSupported(type)) {
      this.setNote(`this browser cannot play ${chunk.codec}`);
      return false;
    }
    const ms = new MediaSource();
    this.ms = ms;
    this.sb = null;
    this.video.src = URL.createObjectURL(ms);
    await new Promise((resolve) => ms.addEventListener("sourceopen", resolve, { once: true }));
    if (session !== this.session) return false;
    this.sb = ms.addSourceBuffer(type);
    this.codec = chunk.codec;
    this.applySound();
    await this.append(chunk, session);
    return true;
  }

  /** Sound when the footage has audio, the sound button wants it and the speed is 1x (at
   * other speeds the audio is muted). */
  applySound() {
    const audio = this.codec.includes(",");
    this.video.muted = !(audio && this.soundWanted && this.video.playbackRate === 1);
    const button = $("#sound");
    button.hidden = !audio;
    button.textContent = this.soundWanted ? "Sound on" : "Sound off";
  }

  /** Seek to ``t``, let that frame reach the screen, then play on (a seek while playing could
   * otherwise move past the frame of the instant before it is ever shown).
   * @param {number} t */
  async showThenPlay(t) {
    const video = this.video;
    video.pause();
    const target = t - this.origin;
    const shown = new Promise((resolve) => {
      /** @param {number} _now @param {VideoFrameCallbackMetadata} meta */
      const onFrame = (_now, meta) => {
        // WebKit may first present the chunk's opening key frame (appended, not yet seeked):
        // wait for the frame of the instant.
        if (meta.mediaTime < target - 0.5) { video.requestVideoFrameCallback(onFrame); return; }
        this.onSeekShown(meta);
        resolve(null);
      };
      video.requestVideoFrameCallback(onFrame);
      setTimeout(resolve, 1000);
    });
    video.currentTime = target;
    await shown;
    await video.play().catch(async () => {
      if (video.muted) return;
      // Sound needs a click on the page first (autoplay policy): play muted.
      this.soundWanted = false;
      this.applySound();
      await video.play().catch(() => {});
    });
  }

  /** Called with the frame a seek put on the screen, before playing on (tests read it).
   * @param {VideoFrameCallbackMetadata} _meta */
  onSeekShown(_meta) {}

  /** @param {number} t */
  isBuffered(t) {
    const b = this.video.buffered;
    const m = t - this.origin;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= m && m < b.end(i) - 0.1) return true;
    return false;
  }

  /** The start of the first buffered range that starts after ``t``, or null (wall times).
   * @param {number} t */
  rangeAfter(t) {
    const b = this.video.buffered;
    const m = t - this.origin;
    for (let i = 0; i < b.length; i++) if (b.start(i) > m) return this.origin + b.start(i);
    return null;
  }

  /** Where a jump to ``t`` lands: ``t``, or the start of the buffered range just after it
   * when ``t`` is not buffered (a file's audio starts a little after its first frame).
   * @param {number} t */
  landing(t) {
    const b = this.video.buffered;
    const m = t - this.origin;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= m && m < b.end(i)) return t;
    const after = this.rangeAfter(t);
    return after !== null && after - t < 0.5 ? after : t;
  }

  /** @param {string} camera @param {number} t @param {number} span @returns {Promise<Chunk | null>} */
  async fetchChunk(camera, t, span) {
    const q = new URLSearchParams({ start: num(t), span: String(span), audio: this.audio.join(",") });
    const r = await fetch(`/api/cameras/${camera}/playback?${q}`);
    if (r.status === 404) return null;
    if (!r.ok) throw new Error(`playback: ${r.status} ${await r.text()}`);
    const h = (/** @type {string} */ k) => r.headers.get(k);
    const next = h("X-Nvr-Next");
    return {
      data: await r.arrayBuffer(),
      codec: h("X-Nvr-Codec") ?? "",
      first: Number(h("X-Nvr-First")),
      mediaStart: Number(h("X-Nvr-Media-Start")),
      end: Number(h("X-Nvr-End")),
      next: next === null ? null : Number(next),
      live: h("X-Nvr-Live") === "1",
      frames: Number(h("X-Nvr-Frames")),
    };
  }

  /** @param {Chunk} chunk @param {number} session */
  async append(chunk, session) {
    const sb = this.sb;
    if (sb === null || session !== this.session) return;
    const hole = holeBefore(this.fetchedEnd || null, chunk.first);
    if (hole !== null) this.holes.push(hole);
    // Each chunk's tracks start afresh (MSE's "reset parser state"): else a chunk whose audio
    // begins a little before the previous one's last frame (a file that overlaps the one
    // before; G.711 encoded afresh for each chunk) counts as a discontinuity, which drops the
    // chunk's video up to its next key frame (its first audio frame may come after its first
    // video frame). Seen in Chromium: after a seek, only the key frames of such chunks.
    if (this.codec.includes(",")) sb.abort();
    sb.timestampOffset = chunk.first - this.origin - chunk.mediaStart;
    await new Promise((resolve, reject) => {
      sb.addEventListener("updateend", resolve, { once: true });
      sb.addEventListener("error", reject, { once: true });
      sb.appendBuffer(chunk.data);
    });
    this.fetchedEnd = Math.max(this.fetchedEnd, chunk.end);
    this.next = chunk.next;
    this.live = chunk.live;
    if (chunk.frames > 1) this.frameS = (chunk.end - chunk.first) / chunk.frames;
  }

  async tick() {
    if (this.sb === null || this.camera === null) return;
    const now = this.origin + this.video.currentTime;
    const video = this.video;
    if (video.paused || video.seeking || video.currentTime !== this.lastTime) this.stillSince = performance.now();
    this.lastTime = video.currentTime;
    const stuckS = (performance.now() - this.stillSince) / 1000;
    if (this.pending !== null) {
      const stuck = stuckS >= STUCK_S;
      if (switchNow({ now, fetchedEnd: this.fetchedEnd, stuck, paused: video.paused })) await this.switchTo(this.pending);
      return;
    }
    const step = playerStep({
      now, fetchedEnd: this.fetchedEnd, next: this.next, live: this.live,
      sinceFetchS: (performance.now() - this.fetchedAt) / 1000, fetching: this.fetching,
      holes: this.holes, stuck: stuckS >= STUCK_S,
    });
    const jumpTo = step.jumpTo ?? stuckJump({
      now, stuckS, rate: video.playbackRate, holes: this.holes, nextRange: this.rangeAfter(now),
    });
    if (jumpTo !== null) {
      const hole = this.holes.find((h) => h.to === jumpTo);
      video.currentTime = this.landing(jumpTo) - this.origin + 0.001;
      this.stillSince = performance.now();
      if (hole) this.setNote(`skipped ${durationText(hole.to - hole.from)} without footage (${clockText(hole.from, true)}–${clockText(hole.to, true)})`);
    }
    if (step.fetch !== null) {
      const session = this.session;
      this.fetching = true;
      this.fetchedAt = performance.now();
      try {
        const chunk = await this.fetchChunk(this.camera, step.fetch, NEXT_SPAN_S);
        if (chunk !== null && session === this.session && chunk.codec !== this.codec) this.pending = chunk;
        else if (chunk !== null) await this.append(chunk, session);
      } catch (e) {
        this.setNote(String(e));
      } finally {
        if (session === this.session) this.fetching = false;
      }
    }
    if (step.ended && !this.video.paused) this.setNote("end of the recording so far");
    this.trim(now);
  }

  /** Play on from ``chunk`` (whose tracks differ: the camera's audio came or went) in a fresh
   * MediaSource, at the same speed. @param {Chunk} chunk */
  async switchTo(chunk) {
    const session = this.session;
    const rate = this.video.playbackRate;
    const hole = holeBefore(this.fetchedEnd || null, chunk.first);
    this.pending = null;
    this.holes = [];
    this.fetchedEnd = 0;
    if (!await this.open(chunk, session)) return;
    this.video.playbackRate = rate;
    this.applySound();
    if (hole) this.setNote(`skipped ${durationText(hole.to - hole.from)} without footage (${clockText(hole.from, true)}–${clockText(hole.to, true)})`);
    await this.showThenPlay(chunk.first);
  }

  /** Drop what was played long ago: bounded memory over hours of playback. @param {number} now */
  trim(now) {
    const sb = this.sb;
    const b = this.video.buffered;
    if (sb === null || sb.updating || b.length === 0) return;
    const keepFrom = now - this.origin - 60;
    if (b.start(0) < keepFrom - 30) sb.remove(0, keepFrom);
  }

  /** Pause and show the frame ``frames`` away from the one on screen (into the middle of
   * its interval, so rounding cannot land on a neighbour). @param {number} frames */
  stepFrames(frames) {
    this.video.pause();
    const from = this.shown > 0 ? this.shown - this.origin : this.video.currentTime;
    this.video.currentTime = Math.max(0, from + (frames + 0.5) * this.frameS);
  }

  /** @param {string} text */
  setNote(text) {
    this.note = text;
    const el = $("#note");
    el.textContent = text;
    el.hidden = text === "";
  }
}

/** The motion event marker under the pointer, if any. @param {PointerEvent} e */
function eventAt(e) {
  const el = document.elementFromPoint(e.clientX, e.clientY);
  return /** @type {HTMLElement | null} */ (el?.closest(".event") ?? null);
}

/** @param {number} s */
function durationText(s) {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

class Page {
  constructor() {
    this.player = new Player(/** @type {HTMLVideoElement} */ ($("#player")));
    /** @type {{id: string, name: string}[]} */ this.cameras = [];
    /** @type {Map<string, ApiTimeline>} */ this.timelines = new Map();
    /** @type {Map<string, ApiEvent[]>} motion events per camera */ this.events = new Map();
    const today = dayText(new Date());
    const params = new URLSearchParams(location.search);
    this.day = params.get("day") ?? today;
    /** @type {Window} */ this.window = this.dayWindow();
    this.exportFrom = /** @type {number | null} */ (null);
    this.exportTo = /** @type {number | null} */ (null);
    /** @type {{cam: string, t: number} | null} */ this.wanted = null; // under the pointer
    /** @type {{cam: string, t: number} | null} */ this.shownPreview = null;
    this.previewing = false; // a preview request is on its way
    this.dragging = false;
    this.horizon = 0; // where the timeline stops: the end of the day, or now
  }

  dayWindow() {
    const start = dayStart(this.day);
    return { start, end: start + DAY_S };
  }

  async start() {
    const r = await fetch("/api/cameras");
    if (r.status === 401) { location.href = "/login"; return; }
    this.cameras = (await r.json()).map((/** @type {any} */ c) => ({ id: c.id, name: c.name }));
    this.bind();
    await this.load();
    const params = new URLSearchParams(location.search);
    const cam = params.get("camera");
    const at = params.get("at");
    if (cam && at) this.playAt(cam, Number(at));
    setInterval(() => { if (this.day === dayText(new Date())) this.load(); }, 10_000);
    setInterval(() => this.drawCursor(), 250);
  }

  bind() {
    const legend = $("#legend");
    for (const [kind, reason, words] of [["footage", "", "recorded"], ...Object.entries(GAP_WORDS).map(([r, w]) => ["gap", r, w])]) {
      const swatch = document.createElement("span");
      swatch.className = kind;
      if (reason) swatch.dataset.reason = reason;
      legend.append(swatch, ` ${words} `);
    }
    const dayInput = /** @type {HTMLInputElement} */ ($("#day"));
    dayInput.value = this.day;
    dayInput.addEventListener("change", () => this.setDay(dayInput.value));
    $("#prev-day").addEventListener("click", () => this.shiftDay(-1));
    $("#next-day").addEventListener("click", () => this.shiftDay(1));
    for (const b of document.querySelectorAll("#zooms button")) {
      b.addEventListener("click", () => {
        const width = Number(/** @type {HTMLElement} */ (b).dataset.window);
        const w = this.window;
        const at = this.player.camera ? this.player.shown : (w.start + w.end) / 2;
        this.window = zoom(w, width / (w.end - w.start), at, this.dayWindow());
        this.draw();
      });
    }
    const rows = $("#rows");
    rows.addEventListener("wheel", (e) => {
      e.preventDefault();
      const w = this.window;
      if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
        const by = (e.shiftKey ? e.deltaY : e.deltaX) / 1000 * (w.end - w.start);
        this.window = pan(w, by, this.dayWindow());
      } else {
        this.window = zoom(w, e.deltaY > 0 ? 1.25 : 0.8, this.timeAt(e), this.dayWindow());
      }
      this.draw();
    }, { passive: false });
    document.addEventListener("keydown", (e) => {
      if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
      const w = this.window;
      const step = (w.end - w.start) / 10;
      if (e.key === "ArrowLeft") this.window = pan(w, -step, this.dayWindow());
      else if (e.key === "ArrowRight") this.window = pan(w, step, this.dayWindow());
      else if (e.key === " ") { e.preventDefault(); $("#play").click(); return; }
      else return;
      this.draw();
    });
    rows.addEventListener("pointerdown", (e) => { this.dragging = true; this.scrub(e); });
    rows.addEventListener("pointermove", (e) => this.scrub(e));
    rows.addEventListener("pointerleave", () => { $("#preview").hidden = true; this.wanted = null; });
    rows.addEventListener("pointerup", (e) => {
      this.dragging = false;
      const cam = this.cameraAt(e);
      const ev = eventAt(e);
      // An event plays from a second before its first motion.
      if (cam) this.playAt(cam, ev ? Number(ev.dataset.start) - 1 : this.timeAt(e));
    });
    const video = this.player.video;
    $("#play").addEventListener("click", () => { if (video.paused) video.play(); else video.pause(); });
    video.addEventListener("play", () => { $("#play").textContent = "Pause"; });
    video.addEventListener("pause", () => { $("#play").textContent = "Play"; });
    const speed = /** @type {HTMLSelectElement} */ ($("#speed"));
    speed.addEventListener("change", () => { video.playbackRate = Number(speed.value); this.player.applySound(); });
    $("#sound").addEventListener("click", () => {
      this.player.soundWanted = !this.player.soundWanted;
      this.player.applySound();
    });
    $("#step-back").addEventListener("click", () => this.player.stepFrames(-1));
    $("#step-forward").addEventListener("click", () => this.player.stepFrames(1));
    $("#mark-in").addEventListener("click", () => { this.exportFrom = this.player.shown; this.showRange(); });
    $("#mark-out").addEventListener("click", () => { this.exportTo = this.player.shown; this.showRange(); });
    $("#export").addEventListener("click", () => this.exportRange());
  }

  /** @param {number} days */
  shiftDay(days) {
    const d = new Date((dayStart(this.day) + days * DAY_S + 3600 * 12) * 1000);
    this.setDay(dayText(d));
  }

  /** @param {string} day */
  setDay(day) {
    this.day = day;
    /** @type {HTMLInputElement} */ ($("#day")).value = day;
    this.window = this.dayWindow();
    this.load();
  }

  async load() {
    const day = this.day;
    const { start, end } = this.dayWindow();
    const q = new URLSearchParams({ start: num(start), end: num(end) });
    const [r, re] = await Promise.all([fetch(`/api/timeline/range?${q}`), fetch(`/api/events?${q}`)]);
    if (day !== this.day) return;
    if (!r.ok) { this.problem(`timeline: ${r.status} ${await r.text()}`); return; }
    const got = await r.json();
    this.horizon = got.horizon_utc;
    this.timelines = new Map(got.cameras.map((/** @type {any} */ c) => [c.camera, c]));
    /** @type {Map<string, ApiEvent[]>} */
    const events = new Map();
    for (const ev of re.ok ? /** @type {ApiEvent[]} */ ((await re.json()).events) : []) {
      events.set(ev.camera, [...(events.get(ev.camera) ?? []), ev]);
    }
    this.events = events;
    this.draw();
  }

  /** @param {string} text */
  problem(text) {
    const p = $("#problem");
    p.hidden = text === "";
    p.textContent = text;
  }

  draw() {
    const w = this.window;
    const offset = -new Date(w.start * 1000).getTimezoneOffset() * 60;
    const axis = $("#axis");
    axis.replaceChildren();
    const seconds = w.end - w.start <= 600;
    for (const t of ticks(w, 12, offset)) {
      const tick = document.createElement("span");
      tick.className = "tick";
      tick.style.left = `${fraction(w, t) * 100}%`;
      tick.textContent = clockText(t, seconds);
      axis.appendChild(tick);
    }
    const rows = $("#rows");
    rows.replaceChildren();
    for (const cam of this.cameras) {
      const row = document.createElement("div");
      row.className = "row";
      row.dataset.camera = cam.id;
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = cam.name;
      const track = document.createElement("div");
      track.className = "track";
      const tl = this.timelines.get(cam.id) ?? { footage: [], gaps: [] };
      for (const [spans, kind] of /** @type {[ApiSpan[], string][]} */ ([[tl.footage, "footage"], [tl.gaps, "gap"]])) {
        for (const s of spans) {
          const a = Math.max(fraction(w, s.start_utc), 0);
          const b = Math.min(fraction(w, s.end_utc), 1);
          if (b <= 0 || a >= 1 || b <= a) continue;
          const el = document.createElement("span");
          el.className = kind;
          if (s.reason) {
            el.dataset.reason = s.reason;
            el.title = `${gapWords(s.reason)}: ${clockText(s.start_utc, true)}–${clockText(s.end_utc, true)}`;
          }
          el.style.left = `${a * 100}%`;
          el.style.width = `${(b - a) * 100}%`;
          track.appendChild(el);
        }
      }
      for (const ev of this.events.get(cam.id) ?? []) {
        const end = ev.end_utc ?? this.horizon;
        const a = fraction(w, ev.start_utc);
        const b = fraction(w, end);
        if (b < 0 || a > 1) continue;
        const el = document.createElement("span");
        el.className = "event";
        el.dataset.start = num(ev.start_utc);
        el.dataset.id = String(ev.id);
        if (ev.thumbnail) el.dataset.thumb = ev.thumbnail;
        el.dataset.label = `motion ${clockText(ev.start_utc, true)}–${ev.end_utc ? clockText(ev.end_utc, true) : "now"}`;
        el.title = `${el.dataset.label} (${(ev.score * 100).toFixed(1)} % of the picture)`;
        el.style.left = `${Math.max(a, 0) * 100}%`;
        el.style.width = `max(3px, ${(Math.min(b, 1) - Math.max(a, 0)) * 100}%)`;
        track.appendChild(el);
      }
      const now = this.horizon;
      if (now < this.dayWindow().end && now > w.start && now < w.end) {
        const mark = document.createElement("span");
        mark.className = "now";
        mark.title = `now: ${clockText(now, true)}`;
        mark.style.left = `${fraction(w, now) * 100}%`;
        track.appendChild(mark);
      }
      row.append(label, track);
      rows.appendChild(row);
    }
    this.drawCursor();
  }

  drawCursor() {
    for (const track of document.querySelectorAll(".track")) {
      let head = /** @type {HTMLElement | null} */ (track.querySelector(".playhead"));
      const cam = /** @type {HTMLElement} */ (track.parentElement).dataset.camera;
      const on = cam === this.player.camera && this.player.shown > 0;
      if (!on) { head?.remove(); continue; }
      if (head === null) {
        head = document.createElement("span");
        head.className = "playhead";
        track.appendChild(head);
      }
      const f = fraction(this.window, this.player.shown);
      if ((f < 0 || f > 1) && !this.player.video.paused) {
        // Playing on past the window: the window follows (the same width).
        const w = this.window;
        this.window = pan(w, this.player.shown - (w.start + w.end) / 2, this.dayWindow());
        this.draw();
        return;
      }
      head.style.left = `${f * 100}%`;
    }
    const clock = $("#clock");
    if (this.player.shown > 0) {
      clock.textContent = `${clockText(this.player.shown, true)}.${String(Math.floor((this.player.shown % 1) * 1000)).padStart(3, "0")}`;
      clock.dataset.shown = num(this.player.shown);
    }
  }

  /** @param {PointerEvent | WheelEvent} e */
  timeAt(e) {
    const track = /** @type {HTMLElement} */ (document.querySelector(".track"));
    const box = track.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (e.clientX - box.left) / box.width));
    return this.window.start + f * (this.window.end - this.window.start);
  }

  /** @param {PointerEvent} e */
  cameraAt(e) {
    const row = /** @type {HTMLElement | null} */ (document.elementFromPoint(e.clientX, e.clientY)?.closest(".row") ?? null);
    return row?.dataset.camera ?? null;
  }

  /** A still of the moment under the pointer (the key frame at or before it). One request
   * at a time: whatever comes back is shown, then the newest position is asked for (asking
   * at every pointer move and dropping late answers showed nothing while dragging).
   * @param {PointerEvent} e */
  scrub(e) {
    const cam = this.cameraAt(e);
    const t = this.timeAt(e);
    const box = $("#preview");
    if (cam === null) { box.hidden = true; this.wanted = null; return; }
    const rowsBox = $("#rows").getBoundingClientRect();
    box.style.left = `${Math.min(rowsBox.width - 330, Math.max(0, e.clientX - rowsBox.left - 160))}px`;
    const ev = this.dragging ? null : eventAt(e);
    if (ev?.dataset.thumb) { // over a motion event: its peak frame
      this.wanted = null;
      const img = /** @type {HTMLImageElement} */ (box.querySelector("img"));
      if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
      img.src = ev.dataset.thumb;
      img.hidden = false;
      img.dataset.event = ev.dataset.id;
      /** @type {HTMLElement} */ (box.querySelector("span")).textContent = ev.dataset.label ?? "motion";
      box.hidden = false;
      return;
    }
    /** @type {HTMLElement} */ (box.querySelector("span")).textContent = clockText(t, true);
    this.wanted = { cam, t };
    if (!this.previewing) this.fetchPreviews();
  }

  async fetchPreviews() {
    this.previewing = true;
    try {
      while (this.wanted !== null && this.wanted !== this.shownPreview) {
        const want = this.wanted;
        const r = await fetch(`/api/cameras/${want.cam}/preview?at=${num(want.t)}`);
        this.showPreview(want, r.ok ? await r.blob() : null, r.headers.get("X-Nvr-Frame"));
      }
    } finally {
      this.previewing = false;
    }
  }

  /** @param {{cam: string, t: number}} want @param {Blob | null} jpeg @param {string | null} frame */
  showPreview(want, jpeg, frame) {
    this.shownPreview = want;
    const box = $("#preview");
    if (this.wanted === null) return; // the pointer left the timeline
    const img = /** @type {HTMLImageElement} */ (box.querySelector("img"));
    const label = /** @type {HTMLElement} */ (box.querySelector("span"));
    box.hidden = false;
    if (jpeg === null) {
      img.hidden = true;
      label.textContent = `${clockText(want.t, true)}: no footage`;
      return;
    }
    const old = img.src;
    img.src = URL.createObjectURL(jpeg);
    img.hidden = false;
    img.dataset.at = num(want.t);
    img.dataset.frame = frame ?? "";
    delete img.dataset.event;
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  }

  /** Play ``cam`` from ``t``; resolves once the frame of ``t`` is on the screen.
   * @param {string} cam @param {number} t */
  async playAt(cam, t) {
    const name = this.cameras.find((c) => c.id === cam)?.name ?? cam;
    $("#camera-name").textContent = name;
    await this.player.play(cam, t, dayStart(this.day)).catch((e) => this.player.setNote(String(e)));
  }

  showRange() {
    const from = this.exportFrom;
    const to = this.exportTo;
    $("#export-range").textContent = `${from ? clockText(from, true) : "…"} – ${to ? clockText(to, true) : "…"}`;
    /** @type {HTMLButtonElement} */ ($("#export")).disabled = !(from && to && to > from);
  }

  async exportRange() {
    const status = $("#export-status");
    if (!this.player.camera || !this.exportFrom || !this.exportTo) return;
    const body = {
      cameras: [this.player.camera],
      start: new Date(this.exportFrom * 1000).toISOString(),
      end: new Date(this.exportTo * 1000).toISOString(),
    };
    const r = await fetch("/api/exports", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    if (!r.ok) {
      const detail = (await r.json().catch(() => ({}))).detail;
      const why = typeof detail === "string" ? detail : detail?.message ?? JSON.stringify(detail ?? r.status);
      status.textContent = `export refused: ${why}`;
      return;
    }
    const job = await r.json();
    status.textContent = "exporting…";
    for (;;) {
      await new Promise((res) => setTimeout(res, 500));
      const s = await (await fetch(`/api/exports/${job.id}`)).json();
      if (s.state === "done") {
        status.replaceChildren();
        for (const f of s.files ?? []) {
          const a = document.createElement("a");
          a.href = f.url;
          a.textContent = f.name;
          a.title = `SHA-256 ${f.sha256}`;
          status.append(a, ` SHA-256 ${String(f.sha256).slice(0, 16)}… `);
        }
        return;
      }
      if (s.state === "failed" || s.state === "cancelled") { status.textContent = `export ${s.state}: ${s.error ?? ""}`; return; }
      status.textContent = `exporting… ${Math.round((s.progress ?? 0) * 100)} %`;
    }
  }
}

const page = new Page();
/** @type {any} */ (window).nvrRecordings = page;
page.start().catch((e) => { const p = $("#problem"); p.hidden = false; p.textContent = String(e); });
