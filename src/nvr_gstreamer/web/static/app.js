// @ts-check
// The live grid: every camera's video over a WebSocket into Media Source Extensions (fragmented
// MP4, never decoded on the server), its state badge and recording control kept current by the
// events WebSocket. Latency is kept steady: a little faster playback when behind, a seek only
// when far behind. Hidden tiles and background tabs stop their streams.

import { KEEP_S, TARGET_LAG_S, badge, latencyControl, storageNote } from "./logic.js";
import { connectWebRtc } from "./webrtc.js";

/** @typedef {import("./logic.js").Camera} Camera */

class Tile {
  /** @param {Camera} cam @param {HTMLElement} grid */
  constructor(cam, grid) {
    this.id = cam.id;
    this.el = document.createElement("div");
    this.el.className = "tile";
    this.el.dataset.camera = cam.id;
    this.el.innerHTML = `<video muted autoplay playsinline></video><span class="name"></span>
      <span class="dot" title="recording" hidden></span><span class="motion" title="motion" hidden>motion</span><span class="badge"></span>
      <button class="rec"></button><p class="message" hidden></p>`;
    this.video = /** @type {HTMLVideoElement} */ (this.el.querySelector("video"));
    this.badgeEl = /** @type {HTMLElement} */ (this.el.querySelector(".badge"));
    this.button = /** @type {HTMLButtonElement} */ (this.el.querySelector(".rec"));
    this.message = /** @type {HTMLElement} */ (this.el.querySelector(".message"));
    /** @type {Camera} */ this.cam = cam;
    this.receivedAt = performance.now();
    /** @type {WebSocket | null} */ this.ws = null;
    /** @type {MediaSource | null} */ this.ms = null;
    /** @type {SourceBuffer | null} */ this.sb = null;
    /** @type {ArrayBuffer[]} */ this.pending = [];
    this.dataAt = performance.now(); // when the socket last brought something
    this.lastTime = -1; // the playhead at the last tick, and when it last moved
    this.movedAt = performance.now();
    // WebRTC (single view): the session, and whether this tile should try it (MSE otherwise)
    /** @type {import("./webrtc.js").WebRtcView | null} */ this.rtc = null;
    this.preferWebRtc = false;
    this.button.addEventListener("click", () => this.toggleRecording());
    this.el.addEventListener("dblclick", () => single(this.id));
    grid.appendChild(this.el);
    this.update(cam);
  }

  /** @param {Camera} cam */
  update(cam) {
    this.cam = cam;
    this.receivedAt = performance.now();
    /** @type {HTMLElement} */ (this.el.querySelector(".name")).textContent = cam.name;
    /** @type {HTMLElement} */ (this.el.querySelector(".dot")).hidden = !cam.recording;
    /** @type {HTMLElement} */ (this.el.querySelector(".motion")).hidden = !cam.motion;
    this.button.textContent = cam.recording_wanted ? "Stop" : "Record";
    this.el.title = cam.codec ? `${cam.codec}` : "";
    this.render();
  }

  render() {
    const [text, tone] = badge(this.cam, (performance.now() - this.receivedAt) / 1000);
    const storage = storageNote(this.cam);
    this.badgeEl.textContent = storage ? `${text} · ${storage}` : text;
    this.badgeEl.dataset.tone = storage ? "bad" : tone;
  }

  async toggleRecording() {
    const action = this.cam.recording_wanted ? "stop" : "start";
    this.button.disabled = true;
    try {
      await fetch(`/api/cameras/${this.id}/recording/${action}`, { method: "POST" });
    } finally {
      this.button.disabled = false; // the button follows the engine (events), not the click
    }
  }

  start() {
    if (this.ws !== null || this.rtc !== null) return;
    if (this.preferWebRtc) { this.startWebRtc(); return; }
    this.el.dataset.transport = "mse";
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/ws/live/${this.id}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.dataAt = performance.now();
    ws.onmessage = (event) => {
      this.dataAt = performance.now();
      if (typeof event.data === "string") this.init(JSON.parse(event.data).codec);
      else { this.pending.push(event.data); this.pump(); }
    };
    ws.onclose = () => {
      if (this.ws === ws) { this.ws = null; setTimeout(() => this.visible && this.start(), 1000); }
    };
  }

  // ---- WebRTC (the single view); any failure falls back to MSE for this tile ----
  startWebRtc() {
    this.el.dataset.transport = "webrtc";
    this.rtc = connectWebRtc(this.video, this.id, (reason) => {
      console.info(`${this.id}: WebRTC failed (${reason}); using MSE`);
      this.rtc = null;
      this.preferWebRtc = false;
      if (this.visible) this.start();
    });
  }
  // ---- end WebRTC ----

  stop() {
    if (this.rtc !== null) { this.rtc.close(); this.rtc = null; }
    const ws = this.ws;
    this.ws = null;
    if (ws !== null) ws.close();
    this.sb = null;
    this.pending = [];
    if (this.ms !== null) { this.video.removeAttribute("src"); this.video.load(); this.ms = null; }
  }

  /** A new stream (first, or the camera reconnected): a fresh MediaSource.
   * @param {string} codec */
  init(codec) {
    const mime = `video/mp4; codecs="${codec}"`;
    this.sb = null;
    const Source = mediaSourceClass();
    if (Source === null || !Source.isTypeSupported(mime)) {
      this.message.hidden = false;
      this.message.textContent = codec.startsWith("hvc") || codec.startsWith("hev")
        ? "this browser cannot play H.265: give the camera an H.264 live_url"
        : `this browser cannot play ${codec}`;
      return;
    }
    this.message.hidden = true;
    const ms = new Source();
    this.ms = ms;
    // ManagedMediaSource (Safari on iPhone) plays only without AirPlay's remote playback.
    if (Source !== window.MediaSource) this.video.disableRemotePlayback = true;
    this.video.src = URL.createObjectURL(ms);
    this.pending = []; // the old stream's last fragments: they do not belong to this one
    ms.addEventListener("sourceopen", () => {
      if (this.ms !== ms) return;
      this.sb = ms.addSourceBuffer(mime);
      this.sb.mode = "segments";
      this.sb.addEventListener("updateend", () => { this.joinLive(); this.pump(); });
      this.pump();
    }, { once: true });
  }

  pump() {
    const sb = this.sb;
    if (sb === null || sb.updating || this.pending.length === 0) return;
    try { sb.appendBuffer(/** @type {ArrayBuffer} */ (this.pending.shift())); }
    catch { this.stop(); this.start(); } // a full or broken buffer: start over from a keyframe
  }

  /** The first video of a stream arrived (the current GOP, at once): show its newest frame
   * now rather than at the next tick. */
  joinLive() {
    const v = this.video;
    if (v.buffered.length === 0 || v.currentTime >= v.buffered.start(0)) return;
    const end = v.buffered.end(v.buffered.length - 1);
    v.currentTime = Math.max(v.buffered.start(0), end - TARGET_LAG_S);
    this.movedAt = performance.now();
    if (v.paused) v.play().catch(() => {});
  }

  tick() {
    this.render();
    // The camera streams but nothing came for a while (a lost socket, a broken buffer): again.
    if (this.ws !== null && this.cam.state === "streaming" && performance.now() - this.dataAt > 4000) {
      this.stop();
      this.start();
      return;
    }
    const v = this.video, sb = this.sb;
    if (sb === null || v.buffered.length === 0) return;
    const end = v.buffered.end(v.buffered.length - 1);
    const start = v.buffered.start(0);
    const now = performance.now();
    if (v.currentTime !== this.lastTime) { this.lastTime = v.currentTime; this.movedAt = now; }
    // Stuck before the data (a new stream starts later than 0) or in a gap: go to the newest.
    const stuck = now - this.movedAt > 1000 && end - v.currentTime > TARGET_LAG_S;
    if (v.currentTime < start || stuck) {
      v.currentTime = Math.max(start, end - TARGET_LAG_S);
      this.movedAt = now;
    }
    const { seekTo, rate } = latencyControl(end - v.currentTime);
    if (seekTo !== null) v.currentTime = end - seekTo;
    v.playbackRate = rate;
    if (v.paused) v.play().catch(() => {});
    if (!sb.updating && v.currentTime - start > 2 * KEEP_S) sb.remove(start, v.currentTime - KEEP_S);
  }

  get visible() { return !this.el.hidden && document.visibilityState === "visible"; }
}

/** MediaSource where the browser has it, else ManagedMediaSource (Safari on iPhone), else none.
 * @returns {typeof MediaSource | null} */
function mediaSourceClass() {
  const managed = /** @type {{ManagedMediaSource?: typeof MediaSource}} */ (/** @type {unknown} */ (window)).ManagedMediaSource;
  return window.MediaSource ?? managed ?? null;
}

/** @type {Map<string, Tile>} */
const tiles = new Map();
const grid = /** @type {HTMLElement} */ (document.getElementById("grid"));
let page = 0;
let singleId = /** @type {string | null} */ (null);

function layout() {
  const perPage = Number(grid.dataset.perPage || "4");
  const list = [...tiles.values()];
  const pages = Math.max(1, Math.ceil(list.length / perPage));
  page = Math.min(page, pages - 1);
  list.forEach((tile, i) => {
    const shown = singleId !== null ? tile.id === singleId : Math.floor(i / perPage) === page;
    tile.el.hidden = !shown;
    if (tile.visible) tile.start(); else tile.stop();
  });
  for (const b of document.querySelectorAll("#layouts button[data-per-page]")) {
    b.setAttribute("aria-pressed", String(/** @type {HTMLElement} */ (b).dataset.perPage === grid.dataset.perPage));
  }
}

/** @param {string} id */
function single(id) {
  singleId = singleId === id ? null : id;
  // The single view tries WebRTC first; the grid uses MSE. The chosen tile restarts (layout).
  for (const tile of tiles.values()) tile.preferWebRtc = tile.id === singleId;
  tiles.get(id)?.stop();
  grid.dataset.perPage = singleId !== null ? "1" : grid.dataset.lastPerPage || "4";
  layout();
}

function connectEvents() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/ws/events`);
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (!Array.isArray(message)) return; // {"type": "export", ...} and other kinds: not for the grid
    for (const cam of /** @type {Camera[]} */ (message)) tiles.get(cam.id)?.update(cam);
  };
  ws.onclose = () => setTimeout(connectEvents, 1000);
}

async function main() {
  const r = await fetch("/api/cameras");
  if (r.status === 401) { location.replace("/login"); return; }
  for (const cam of /** @type {Camera[]} */ (await r.json())) tiles.set(cam.id, new Tile(cam, grid));
  for (const b of document.querySelectorAll("#layouts button[data-per-page]")) {
    b.addEventListener("click", () => {
      singleId = null;
      grid.dataset.perPage = grid.dataset.lastPerPage = /** @type {HTMLElement} */ (b).dataset.perPage;
      layout();
    });
  }
  document.getElementById("prev")?.addEventListener("click", () => { page = Math.max(0, page - 1); layout(); });
  document.getElementById("next")?.addEventListener("click", () => { page += 1; layout(); });
  document.getElementById("fullscreen")?.addEventListener("click", () => document.documentElement.requestFullscreen());
  for (const [id, action] of [["record-all", "start"], ["stop-all", "stop"]]) {
    document.getElementById(id)?.addEventListener("click", () => {
      for (const tile of tiles.values()) fetch(`/api/cameras/${tile.id}/recording/${action}`, { method: "POST" });
    });
  }
  document.addEventListener("visibilitychange", layout);
  layout();
  connectEvents();
  setInterval(() => { for (const tile of tiles.values()) tile.tick(); }, 250);
}

main();
