"""Connect to a camera the way the recorder does and measure what it sends (``nvr probe``).

:func:`run_probe` blocks: each attempt (see :func:`~nvr_gstreamer.camera.probe_report.
next_attempt`) runs one pipeline on a private GLib main context and loop on the calling
thread, then takes it to NULL. The pipeline is the recorder's source, :func:`rtsp_source`
with one transport, followed per stream by its depayloader and parser (when the codec is one
we know; their caps give resolution, frame rate, profile, rate and channels) and a fakesink.
A buffer probe on rtspsrc's pad feeds each stream's RTP packets to a
:class:`~nvr_gstreamer.camera.probe_report.StreamMeter`: RTP timestamps are the camera's
clock, while the jitterbuffer's PTS bunch up when a camera sends a backlog at the start
(measured with the simulator's G.711 audio over TCP: 20 ms packets arrived at once and got
PTS ever closer together, then many identical ones; the audio rate came out 40 % high).
Unlike the recorder, every stream is set up, audio included.

Threading: ``select-stream``, ``pad-added`` and the buffer probes run on streaming threads.
They touch shared state under a lock and tell the loop what happened by posting an
application message on the pipeline's bus (its watch runs on the private context). Timers
are sources attached to that context. State changes happen on the calling thread only.

Longer than ~300 lines: one probe attempt's pipeline with its callbacks on streaming threads and
its loop, whose state they share.
"""

from __future__ import annotations

import errno
import itertools
import logging
import socket
import threading
import time
from dataclasses import replace
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtp", "1.0")
from gi.repository import GLib, Gst, GstRtp  # noqa: E402

from nvr_gstreamer.camera.errors import Fault, Origin, source_eos, source_timeout  # noqa: E402
from nvr_gstreamer.camera.media import PipelineSpec  # noqa: E402
from nvr_gstreamer.camera.probe_report import (  # noqa: E402
    BUSY_RETRY_S,
    KEYFRAMES_WANTED,
    RECORDABLE,
    AttemptPlan,
    AttemptResult,
    Codec,
    ConnectProblem,
    OfferedStream,
    ParsedFormat,
    ProbeReport,
    ProbeRequest,
    Stage,
    StreamMeter,
    StreamObservation,
    build_report,
    error_report,
    is_busy,
    needs_connect_check,
    next_attempt,
    rtp_keyframe,
)
from nvr_gstreamer.gst.faults import fault_from_error_message  # noqa: E402
from nvr_gstreamer.gst.loop import init_gstreamer  # noqa: E402
from nvr_gstreamer.gst.pipeline import AUDIO_CODECS, VIDEO_CODECS, rtsp_source  # noqa: E402
from nvr_gstreamer.gst.weak import weak_cb  # noqa: E402

logger = logging.getLogger(__name__)

# Depayloader and parser per RTP encoding name, as the recorder sets them up; the caps after
# the last one describe the stream.
_CHAINS: dict[str, tuple[str, ...]] = {
    encoding: tuple(e for e in (depay, parse) if e is not None)
    for encoding, (_codec, depay, parse) in (VIDEO_CODECS | AUDIO_CODECS).items()
}
_FIRST_MEDIA = "nvr-probe-first-media"
_MEASURED = "nvr-probe-measured"
_CONNECT_CHECK_MAX_S = 5.0
_SIGNAL_CHECK_S = 0.1


def run_probe(request: ProbeRequest) -> ProbeReport:
    """Probe the camera: one attempt per transport as planned, then the report."""
    init_gstreamer()
    missing = [name for name in ("rtspsrc", "fakesink") if Gst.ElementFactory.find(name) is None]
    if missing:
        return error_report(
            request, f"GStreamer element(s) {', '.join(missing)} missing (run scripts/setup)"
        )
    attempts: list[AttemptResult] = []
    while (plan := next_attempt(attempts)) is not None:
        result = ProbeAttempt(request, plan).run()
        if is_busy(result):
            logger.debug("camera busy over %s; asking again", plan.transport.value)
            time.sleep(BUSY_RETRY_S)
            result = ProbeAttempt(request, plan).run()
        if needs_connect_check(result):
            timeout_s = min(request.timeout_s, _CONNECT_CHECK_MAX_S)
            result = replace(
                result, connect_problem=check_connect(request.host, request.port, timeout_s)
            )
        logger.debug("attempt %s: stage %s, fault %s", plan, result.stage, result.fault)
        attempts.append(result)
    return build_report(request, attempts)


def check_connect(host: str, port: int, timeout_s: float) -> ConnectProblem:
    """A plain TCP connect: why rtspsrc could not connect (it says "Failed to connect" for
    DNS, refused and unroutable alike)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return ConnectProblem.DNS
    problem = ConnectProblem.OTHER
    for family, kind, proto, _name, address in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout_s)
                sock.connect(address)
            return ConnectProblem.CONNECTS
        except ConnectionRefusedError:
            problem = ConnectProblem.REFUSED
        except TimeoutError:
            problem = ConnectProblem.TIMEOUT
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                problem = ConnectProblem.NO_ROUTE
    return problem


def _int_field(structure: Any, name: str) -> int | None:
    ok, value = structure.get_int(name)
    return int(value) if ok else None


def _number_in_string(structure: Any, name: str) -> float | None:
    text = structure.get_string(name)
    try:
        return float(text) if text else None
    except ValueError:
        return None


def offered_stream(index: int, caps: Any) -> OfferedStream:
    """What the SDP says about one stream (rtspsrc's caps for ``select-stream``)."""
    s = caps.get_structure(0)
    channels = _number_in_string(s, "encoding-params")
    return OfferedStream(
        index=index,
        media=s.get_string("media") or "unknown",
        encoding=(s.get_string("encoding-name") or "").upper(),
        payload_type=_int_field(s, "payload"),
        clock_rate=_int_field(s, "clock-rate"),
        channels=int(channels) if channels else None,
        framerate=_number_in_string(s, "a-framerate"),
        mode=s.get_string("mode") or "",
    )


def parsed_format(caps: Any) -> ParsedFormat | None:
    """Width, height, frame rate, profile, rate and channels from a parser's caps."""
    if caps is None or caps.get_size() == 0:
        return None
    s = caps.get_structure(0)
    fps: float | None = None
    ok, num, den = s.get_fraction("framerate")
    if ok and num > 0 and den > 0:
        fps = num / den
    return ParsedFormat(
        width=_int_field(s, "width"),
        height=_int_field(s, "height"),
        fps=fps,
        profile=s.get_string("profile"),
        sample_rate=_int_field(s, "rate"),
        channels=_int_field(s, "channels"),
    )


class ProbeAttempt:
    """One connection over one transport; :meth:`run` blocks until it is over."""

    def __init__(self, request: ProbeRequest, plan: AttemptPlan) -> None:
        self._request = request
        self._plan = plan
        self._context = GLib.MainContext.new()
        self._loop = GLib.MainLoop.new(self._context, False)
        self._lock = threading.Lock()  # everything below that streaming threads touch
        self._stage = Stage.CONNECTING
        self._offered: dict[int, OfferedStream] = {}
        self._meters: dict[int, StreamMeter] = {}
        self._outputs: dict[int, Any] = {}  # index → the pad whose caps describe the stream
        self._jitterbuffers: dict[int, Any] = {}  # index (RTP session) → its jitterbuffer
        self._closed = False  # no more counting: the window is over
        self._first_media_posted = False
        self._measured_posted = False
        self._fault: Fault | None = None
        self._deadline_hit = False
        self._start_us = 0
        self._first_media_us: int | None = None
        self._end_us: int | None = None
        self._timers: list[Any] = []
        self._pipeline: Any = None

    # ---- the calling thread ---------------------------------------------------------------

    def run(self) -> AttemptResult:
        request, plan = self._request, self._plan
        self._context.push_thread_default()
        pipeline = Gst.Pipeline.new(f"probe-{plan.transport.value}")
        self._pipeline = pipeline
        spec = PipelineSpec(
            camera_id="probe",
            url=request.url,
            credentials=request.credentials,
            transport=plan.transport.value,
            tcp_timeout_s=request.timeout_s,
            udp_timeout_s=request.timeout_s,
        )
        src = rtsp_source(spec, "source")
        pipeline.add(src)
        src.connect("select-stream", weak_cb(self._select_stream_cb, True))
        src.connect("pad-added", weak_cb(self._pad_added_cb))
        src.connect("new-manager", weak_cb(self._new_manager_cb))
        bus = pipeline.get_bus()
        bus.add_watch(GLib.PRIORITY_DEFAULT, weak_cb(self._bus_cb, False))
        formats: dict[int, ParsedFormat | None] = {}
        lost: dict[int, int] = {}
        try:
            self._start_us = GLib.get_monotonic_time()
            self._after(request.timeout_s, self._deadline_cb)
            # Python runs signal handlers only between its own bytecodes, and PyGObject wakes
            # only the default context for them: without a Python callback now and then,
            # Ctrl-C would wait for the attempt to end.
            self._after(_SIGNAL_CHECK_S, lambda: True, repeat=True)
            if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
                self._fault = self._fault or Fault(
                    Origin.OTHER, pipeline.get_name(), "", 0, "could not start the pipeline"
                )
            else:
                self._loop.run()
            with self._lock:
                self._closed = True
                outputs = dict(self._outputs)
                jitterbuffers = dict(self._jitterbuffers)
            formats = {
                i: parsed_format(pad.get_current_caps())
                for i, pad in outputs.items()
                if pad is not None
            }
            lost = {
                i: int(jb.get_property("stats").get_value("num-lost"))
                for i, jb in jitterbuffers.items()
            }
        finally:
            for timer in self._timers:
                timer.destroy()
            self._timers = []
            bus.remove_watch()
            pipeline.set_state(Gst.State.NULL)
            self._context.pop_thread_default()
            self._pipeline = None
        return self._result(formats, lost)

    def _result(
        self, formats: dict[int, ParsedFormat | None], lost: dict[int, int]
    ) -> AttemptResult:
        with self._lock:
            streams = tuple(
                StreamObservation(
                    offered=offered,
                    format=formats.get(index),
                    measurement=self._meters[index].snapshot() if index in self._meters else None,
                    packets_lost=lost.get(index),
                )
                for index, offered in sorted(self._offered.items())
            )
            stage = self._stage
        first_ms = window_s = None
        if self._first_media_us is not None:
            first_ms = (self._first_media_us - self._start_us) / 1000
            end_us = self._end_us if self._end_us is not None else GLib.get_monotonic_time()
            window_s = (end_us - self._first_media_us) / 1_000_000
        return AttemptResult(
            transport=self._plan.transport,
            measured=self._plan.measure,
            stage=stage,
            fault=self._fault,
            deadline_hit=self._deadline_hit,
            streams=streams,
            first_media_ms=first_ms,
            window_s=window_s if self._plan.measure else None,
        )

    # ---- the loop (calling thread, inside run) -------------------------------------------

    def _after(self, seconds: float, fn: Any, repeat: bool = False) -> None:
        source = GLib.timeout_source_new(max(1, round(seconds * 1000)))
        source.set_callback(lambda *_args: bool(fn()) and repeat)
        source.attach(self._context)
        self._timers.append(source)

    def _finish(self) -> None:
        with self._lock:
            self._closed = True
        if self._end_us is None:
            self._end_us = GLib.get_monotonic_time()
        self._loop.quit()

    def _deadline_cb(self) -> bool:
        if self._first_media_us is None:
            self._deadline_hit = True
            self._finish()
        return False

    def _window_cb(self) -> bool:
        self._finish()
        return False

    def _bus_cb(self, _bus: Any, message: Any) -> bool:
        t = message.type
        if t == Gst.MessageType.ERROR:
            if self._fault is None:
                self._fault = fault_from_error_message(message)
            self._finish()
        elif t == Gst.MessageType.WARNING:
            logger.debug("warning: %s", fault_from_error_message(message).describe())
        elif t == Gst.MessageType.EOS:
            self._fault = self._fault or source_eos()
            self._finish()
        elif t == Gst.MessageType.PROGRESS:
            kind, code, _text = message.parse_progress()
            if kind == Gst.ProgressType.COMPLETE and code == "request":  # "Sent PLAY request"
                with self._lock:
                    self._stage = max(self._stage, Stage.SET_UP)
        elif t == Gst.MessageType.APPLICATION:
            name = message.get_structure().get_name()
            if name == _FIRST_MEDIA and self._first_media_us is None:
                self._first_media_us = GLib.get_monotonic_time()
                with self._lock:
                    self._stage = Stage.STREAMING
                if self._plan.measure:
                    self._after(self._request.window_s, self._window_cb)
                else:
                    self._finish()
            elif name == _MEASURED:
                self._finish()
        elif t == Gst.MessageType.ELEMENT:
            s = message.get_structure()
            if s is not None and s.get_name() == "GstRTSPSrcTimeout":
                self._fault = self._fault or source_timeout()
                self._finish()
        elif t == Gst.MessageType.LATENCY and self._pipeline is not None:
            self._pipeline.recalculate_latency()
        return True

    # ---- streaming threads ----------------------------------------------------------------

    def _post(self, name: str) -> None:
        pipeline = self._pipeline
        if pipeline is not None:
            message = Gst.Message.new_application(pipeline, Gst.Structure.new_empty(name))
            pipeline.post_message(message)

    def _select_stream_cb(self, _src: Any, index: int, caps: Any) -> bool:
        with self._lock:
            self._offered[index] = offered_stream(index, caps)
            self._stage = max(self._stage, Stage.DESCRIBED)
        return True  # every stream, audio too

    def _new_manager_cb(self, _src: Any, manager: Any) -> None:
        if manager.find_property("latency") is not None:  # rtpbin
            manager.connect("new-jitterbuffer", weak_cb(self._new_jitterbuffer_cb))

    def _new_jitterbuffer_cb(
        self, _manager: Any, jitterbuffer: Any, session: int, _ssrc: int
    ) -> None:
        with self._lock:
            self._jitterbuffers.setdefault(session, jitterbuffer)

    def _pad_added_cb(self, _src: Any, pad: Any) -> None:
        index = self._stream_index(pad)
        with self._lock:
            offered = self._offered.get(index) if index is not None else None
        if index is None or offered is None or self._pipeline is None:
            return
        with self._lock:
            measured_already = index in self._meters
        names = _CHAINS.get(offered.encoding, ()) if offered.codec is not Codec.OTHER else ()
        elements = [] if measured_already else [Gst.ElementFactory.make(n) for n in names]
        if any(e is None for e in elements):
            logger.debug("stream %d: no %s, measuring its RTP packets", index, names)
            elements = []
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        chain = [*elements, sink]
        for element in chain:
            self._pipeline.add(element)
        for upstream, downstream in itertools.pairwise(chain):
            upstream.link(downstream)
        for element in chain:
            element.sync_state_with_parent()
        if not measured_already:  # a second SSRC on the same stream is not measured
            # Measured on the RTP packets (their timestamps are the camera's clock); the
            # parser's caps tell the format. The probe goes in before the link, so that the
            # first packet counts too.
            video = offered.media == "video"
            with self._lock:
                self._meters[index] = StreamMeter(offered.clock_rate, video=video)
                self._outputs[index] = elements[-1].get_static_pad("src") if elements else None
            probe_types = Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST
            done = Gst.PadProbeReturn.REMOVE
            pad.add_probe(probe_types, weak_cb(self._packet_cb, done), index, offered.codec)
        if pad.link(chain[0].get_static_pad("sink")) != Gst.PadLinkReturn.OK:
            logger.debug("stream %d: could not link %s", index, pad.get_name())

    def _stream_index(self, pad: Any) -> int | None:
        # recv_rtp_src_<stream>_<ssrc>_<payload type>
        parts = pad.get_name().split("_")
        if len(parts) >= 4 and parts[3].isdigit():
            return int(parts[3])
        return None

    def _packet_cb(self, _pad: Any, info: Any, index: int, codec: Codec) -> Any:
        if info.type & Gst.PadProbeType.BUFFER_LIST:
            blist = info.get_buffer_list()
            buffers = [blist.get(i) for i in range(blist.length())]
        else:
            buffers = [info.get_buffer()]
        packets: list[tuple[int, int, bool]] = []
        keyframes = codec in RECORDABLE
        for buf in buffers:
            ok, rtp = GstRtp.RTPBuffer.map(buf, Gst.MapFlags.READ)
            if not ok:
                continue
            try:
                key = keyframes and rtp_keyframe(codec, rtp.get_payload().get_data())
                packets.append((rtp.get_timestamp(), rtp.get_payload_len(), key))
            finally:
                rtp.unmap()
        first = measured = False
        with self._lock:
            if self._closed:
                return Gst.PadProbeReturn.OK
            meter = self._meters[index]
            for timestamp, size, key in packets:
                meter.add(timestamp, size, key)
            if packets and not self._first_media_posted:
                self._first_media_posted = first = True
            if self._plan.measure and not self._measured_posted and self._all_gops_seen():
                self._measured_posted = measured = True
        if first:
            self._post(_FIRST_MEDIA)
        if measured:
            self._post(_MEASURED)
        return Gst.PadProbeReturn.OK

    def _all_gops_seen(self) -> bool:
        """Every recordable video stream has shown two keyframes (under the lock)."""
        wanted = [
            i for i, o in self._offered.items() if o.media == "video" and o.codec in RECORDABLE
        ]
        if not wanted:
            return False
        return all(
            i in self._meters and self._meters[i].keyframes >= KEYFRAMES_WANTED for i in wanted
        )
