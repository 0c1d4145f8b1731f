// @ts-check
// The single-camera view over WebRTC: the camera's H.264 passed through by the server
// (webrtcbin), signalled over /api/ws/webrtc/{camera}. The server offers, this page answers,
// ICE candidates trickle both ways. Whatever goes wrong — the camera is not H.264
// ("unsupported"), no network path, no frame within the timeout, a later disconnect — ends
// the session once, through `onFail`, and the caller falls back to MSE.

/** How long the first frame may take (the camera's next keyframe, ICE, DTLS). */
export const FIRST_FRAME_TIMEOUT_MS = 3000;

/**
 * @typedef {{type: "offer", sdp: string}
 *   | {type: "ice", candidate: string, sdpMLineIndex: number}
 *   | {type: "unsupported", reason: string}
 *   | {type: "error", reason: string}} ServerMessage
 */

/** @typedef {{close: () => void}} WebRtcView */

/**
 * Play camera `cameraId` in `video` over WebRTC.
 * @param {HTMLVideoElement} video
 * @param {string} cameraId
 * @param {(reason: string) => void} onFail called at most once, after everything is closed
 * @param {number} [firstFrameTimeoutMs]
 * @returns {WebRtcView} `close()` ends the session without calling `onFail`
 */
export function connectWebRtc(video, cameraId, onFail, firstFrameTimeoutMs = FIRST_FRAME_TIMEOUT_MS) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/ws/webrtc/${encodeURIComponent(cameraId)}`);
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  let closed = false;
  let playing = false;
  /** @type {Promise<void>} */ let chain = Promise.resolve(); // server messages, in order

  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    ws.onclose = null;
    ws.close();
    pc.close();
    video.srcObject = null;
  };
  /** @param {string} reason */
  const fail = (reason) => {
    if (closed) return;
    close();
    onFail(reason);
  };
  const timer = setTimeout(() => fail(`no video within ${firstFrameTimeoutMs} ms`), firstFrameTimeoutMs);

  /** @param {object} message */
  const send = (message) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message)); };

  pc.ontrack = (event) => {
    video.srcObject = event.streams[0] ?? new MediaStream([event.track]);
    video.play().catch(() => {});
    const firstFrame = () => {
      if (closed) return;
      playing = true;
      clearTimeout(timer);
    };
    if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(firstFrame);
    else /** @type {HTMLVideoElement} */ (video).addEventListener("loadeddata", firstFrame, { once: true });
  };
  pc.onicecandidate = (event) => {
    if (event.candidate !== null && event.candidate.candidate !== "") {
      send({ type: "ice", candidate: event.candidate.candidate, sdpMLineIndex: event.candidate.sdpMLineIndex ?? 0 });
    }
  };
  pc.onconnectionstatechange = () => {
    const state = pc.connectionState;
    if (state === "failed" || state === "closed" || (state === "disconnected" && playing)) {
      fail(`connection ${state}`);
    }
  };

  /** @param {ServerMessage} message */
  const handle = async (message) => {
    if (message.type === "offer") {
      await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      send({ type: "answer", sdp: pc.localDescription?.sdp ?? answer.sdp });
    } else if (message.type === "ice") {
      await pc.addIceCandidate({ candidate: message.candidate, sdpMLineIndex: message.sdpMLineIndex });
    } else {
      fail(`${message.type}: ${message.reason}`);
    }
  };
  ws.onmessage = (event) => {
    const message = /** @type {ServerMessage} */ (JSON.parse(String(event.data)));
    chain = chain.then(() => (closed ? undefined : handle(message))).catch((e) => fail(String(e)));
  };
  ws.onclose = (event) => {
    // The signalling socket may go once connected; before that, it is a failure.
    if (!playing) fail(`signalling closed (${event.code} ${event.reason})`);
  };
  return { close };
}
