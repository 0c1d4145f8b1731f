"""The WebRTC live branch: one browser's view of the camera's H.264, never decoded.

``tee → queue (leaky) → h264parse → rtph264pay → webrtcbin`` in a bin named ``webrtc-N`` (its
faults are live-view faults: they never touch the camera or its recording). Send-only; the
server offers once the payloader's caps are known (they carry the camera's own
``profile-level-id`` and ``packetization-mode=1``), the browser answers, ICE candidates trickle
both ways.

Threads: ``on-negotiation-needed``, ``on-ice-candidate``, the promise callbacks and the state
notifications run on GStreamer's threads; they only call ``send`` (thread-safe, never blocks).
:meth:`WebRtcBranch.set_answer` and :meth:`WebRtcBranch.add_ice` emit webrtcbin's action
signals, which queue the work on webrtcbin's own thread (callable from the loop).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import Gst, GstSdp, GstWebRTC  # noqa: E402

from nvr_gstreamer.camera.webrtc import Ended, IceCandidate, Offer, SendSignal  # noqa: E402
from nvr_gstreamer.gst.faults import WEB_BIN  # noqa: E402
from nvr_gstreamer.gst.live import BinBranch  # noqa: E402
from nvr_gstreamer.gst.weak import weak_cb  # noqa: E402

logger = logging.getLogger(__name__)

WEBRTC_BIN = f"{WEB_BIN}rtc"  # "webrtc-N": a live-view fault by its name (faults.origin_of)
PAYLOAD_TYPE = 96
_FAILED = (GstWebRTC.WebRTCICEConnectionState.FAILED, GstWebRTC.WebRTCICEConnectionState.CLOSED)


class WebRtcUnavailable(RuntimeError):
    """webrtcbin or libnice's elements are not installed (Debian: gstreamer1.0-nice)."""


class WebRtcBranch(BinBranch):
    _count = 0

    def __init__(self, send: SendSignal) -> None:
        missing = [n for n in ("webrtcbin", "nicesrc") if Gst.ElementFactory.find(n) is None]
        if missing:
            raise WebRtcUnavailable(f"no {', '.join(missing)} (install gstreamer1.0-nice)")
        WebRtcBranch._count += 1
        super().__init__(Gst.Bin.new(f"{WEBRTC_BIN}-{WebRtcBranch._count}"))
        self._send = send
        self._lock = threading.Lock()  # _negotiate, _offered (GStreamer threads)
        self._negotiate = False  # webrtcbin asked for an offer
        self._offered = False
        self._ended = False
        self._created_at = time.monotonic()
        queue = Gst.ElementFactory.make("queue", "webrtc-queue")
        queue.set_property("leaky", 2)  # a stuck peer drops old frames, never blocks the tee
        queue.set_property("max-size-buffers", 0)
        queue.set_property("max-size-bytes", 0)
        queue.set_property("max-size-time", Gst.SECOND)
        parse = Gst.ElementFactory.make("h264parse", "webrtc-parse")
        parse.set_property("config-interval", -1)
        pay = Gst.ElementFactory.make("rtph264pay", "webrtc-pay")
        pay.set_property("config-interval", -1)  # SPS/PPS before every keyframe
        Gst.util_set_object_arg(pay, "aggregate-mode", "zero-latency")
        pay.set_property("pt", PAYLOAD_TYPE)
        self._webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self._webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self._webrtc.set_property("latency", 0)
        for el in (queue, parse, pay, self._webrtc):
            self.bin.add(el)
        queue.link(parse)
        parse.link(pay)
        self._webrtc.connect("on-negotiation-needed", weak_cb(self._negotiation_needed_cb))
        self._webrtc.connect("on-ice-candidate", weak_cb(self._ice_candidate_cb))
        self._webrtc.connect("notify::ice-connection-state", weak_cb(self._ice_connection_state_cb))
        self._sink = self._webrtc.request_pad_simple("sink_%u")
        pay.get_static_pad("src").link(self._sink)
        transceiver = self._sink.get_property("transceiver")
        transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        # An offer made before the caps are known is NULL: offer once both are there.
        self._sink.connect("notify::caps", weak_cb(self._caps_cb))
        self.bin.add_pad(Gst.GhostPad.new("sink", queue.get_static_pad("sink")))

    # ---- from the loop thread (the browser's side) ------------------------------------------

    def set_answer(self, sdp_text: str) -> bool:
        """The browser's answer; False when it is not SDP."""
        ok, sdp = GstSdp.SDPMessage.new_from_text(sdp_text)
        if ok != GstSdp.SDPResult.OK:
            return False
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        self._webrtc.emit("set-remote-description", answer, None)
        return True

    def add_ice(self, candidate: IceCandidate) -> None:
        self._webrtc.emit("add-ice-candidate", candidate.mline, candidate.candidate)

    # ---- GStreamer threads ------------------------------------------------------------------

    def _negotiation_needed_cb(self, _webrtc: Any) -> None:
        with self._lock:
            self._negotiate = True
        self._maybe_offer()

    def _caps_cb(self, _pad: Any, _pspec: Any) -> None:
        self._maybe_offer()

    def _maybe_offer(self) -> None:
        with self._lock:
            if self._offered or not self._negotiate or self._sink.get_current_caps() is None:
                return
            self._offered = True
        promise = Gst.Promise.new_with_change_func(weak_cb(self._offer_created_cb), None)
        self._webrtc.emit("create-offer", None, promise)

    def _offer_created_cb(self, promise: Any, _data: Any) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            self._end("the server could not make an offer")
            return
        self._webrtc.emit("set-local-description", offer, None)
        self._send(Offer(offer.sdp.as_text()))
        logger.debug("webrtc offer sent after %.3f s", time.monotonic() - self._created_at)

    def _ice_candidate_cb(self, _webrtc: Any, mline: int, candidate: str) -> None:
        if not self._ended:
            self._send(IceCandidate(candidate, mline))

    def _ice_connection_state_cb(self, webrtc: Any, _pspec: Any) -> None:
        state = webrtc.get_property("ice-connection-state")
        logger.debug("webrtc ICE %s after %.3f s", state.value_nick,
                     time.monotonic() - self._created_at)  # fmt: skip
        if state in _FAILED:
            self._end("no network path to the browser (ICE failed)")

    def _end(self, reason: str) -> None:
        if not self._ended:
            self._ended = True
            self._send(Ended(reason))
