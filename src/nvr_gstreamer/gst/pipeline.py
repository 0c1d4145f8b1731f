"""One camera pipeline generation: rtspsrc → depay → parse → stats → tee, and per audio
stream rtspsrc → depay → (parse) → stats → audio tee.

:class:`CameraPipeline` owns its pipeline, bus watch and probes and frees them all in
:meth:`CameraPipeline.release`. It decides nothing: it reports the first frame and every
fault to its owner on the loop thread, tagged with its generation, and answers stats queries.

The depayloader and parser are chosen from the stream's caps (H.264 or H.265) when rtspsrc
adds its pad. Audio streams in a codec a segment can hold untouched (AAC, G.711 A-law/µ-law,
Opus) get their own chain and tee; any other audio is not set up (``select-stream``), is
noted once in :attr:`CameraPipeline.skipped`, and never leaves a pad unlinked. The tees have
``allow-not-linked``: with nobody recording or watching, nothing downstream of them exists and
nothing is decoded. When rtspsrc has added every pad (``no-more-pads``) the owner hears
``on_streams_known``: a recorder attached after that knows which audio streams there are.

The pipeline owns its branches (:class:`Branch`: the recorder, the live view, later the
browser's): :meth:`CameraPipeline.attach` links one to the tees, :meth:`CameraPipeline.detach`
finishes and removes it on a teardown worker, and :meth:`CameraPipeline.release` finishes every
attached branch before the pipeline's NULL. A branch's messages reach it from the sync bus
handler; its errors reach the owner with the branch they came from. Nobody outside touches the
GStreamer pipeline, the tees or the state lock.

Threading: ``pad-added``, ``select-stream`` and the probes run on streaming threads; they
only build links and hand events to the loop (:meth:`GstLoop.call`, the one way across).
State changes happen on the loop thread — except NULL transitions (the pipeline's, a
branch's), which run on a teardown worker so that a camera that hangs during teardown cannot
stall the loop that serves every other camera.

Longer than ~300 lines: the pipeline, its audio chains and its branches share one lock and one
bus; split, the threading rules would have to be read across files.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

from nvr_gstreamer.camera.errors import Fault, Origin, source_eos, source_timeout  # noqa: E402
from nvr_gstreamer.camera.media import (  # noqa: E402
    Branch,
    BranchDone,
    PipelineHooks,
    PipelineSpec,
)
from nvr_gstreamer.core.logsetup import camera_logger  # noqa: E402
from nvr_gstreamer.core.redact import redact, strip_credentials  # noqa: E402
from nvr_gstreamer.gst.faults import fault_from_error_message  # noqa: E402
from nvr_gstreamer.gst.loop import GstLoop  # noqa: E402
from nvr_gstreamer.gst.weak import weak_cb  # noqa: E402

logger = logging.getLogger(__name__)

# RTP encoding name → (codec, depayloader, parser). The one table of what is recorded.
VIDEO_CODECS: dict[str, tuple[str, str, str]] = {
    "H264": ("h264", "rtph264depay", "h264parse"),
    "H265": ("h265", "rtph265depay", "h265parse"),
}
# RTP encoding name → (codec, depayloader, parser or None). What Matroska holds untouched.
AUDIO_CODECS: dict[str, tuple[str, str, str | None]] = {
    "MPEG4-GENERIC": ("aac", "rtpmp4gdepay", "aacparse"),
    "MP4A-LATM": ("aac", "rtpmp4adepay", "aacparse"),
    "PCMA": ("pcma", "rtppcmadepay", None),
    "PCMU": ("pcmu", "rtppcmudepay", None),
    "OPUS": ("opus", "rtpopusdepay", "opusparse"),
}

# nvrrtspsrc's video caps → (codec, parser).
_NATIVE_VIDEO: dict[str, tuple[str, str]] = {
    "video/x-h264": ("h264", "h264parse"),
    "video/x-h265": ("h265", "h265parse"),
}
# What the tee carries on every path: the depayloaders' own output form. nvrrtspsrc gives
# byte-stream, which the parser turns into this; a tee fixed on byte-stream would refuse the
# recorder's muxer (NOFORMAT when a branch links later).
_TEE_CAPS = {
    "h264": "video/x-h264,stream-format=avc,alignment=au",
    "h265": "video/x-h265,stream-format=hvc1,alignment=au",
}


@dataclass
class AudioStream:
    """One audio stream of the camera, up to its tee (branches link to ``tee``)."""

    codec: str
    caps: str
    tee: Any
    stats: Any  # identity: buffers counted without a Python call per buffer
    dead: bool = False  # stopped while video went on: not linked into new recordings
    hold: int | None = None  # a block on the tee until the branches have linked (open_audio)

    def buffers(self) -> int:
        return int(self.stats.get_property("stats").get_value("num-buffers"))


@dataclass(slots=True)
class _Attached:
    done: BranchDone | None = None  # to call once the branch is finished
    detaching: bool = False  # a worker is finishing it now


NATIVE_SOURCE = "nvrrtspsrc"  # native/nvrrtspsrc.c, built by scripts/setup
STAMPER = "nvrrtpstamp"  # native/nvrrtpstamp.c, built by scripts/setup
NATIVE = "native"  # nvrrtspsrc: RTSP, read and depayloaded on one thread (TCP)
STAMP = "stamp"  # rtspsrc, packets stamped in place instead of the jitterbuffer (TCP)
JITTERBUFFER = "jitterbuffer"  # rtspsrc with rtpbin's rtpjitterbuffer, a thread per stream
_missing_noted: set[str] = set()


def _built(element: str, instead: str) -> bool:
    if Gst.ElementFactory.find(element) is not None:
        return True
    if element not in _missing_noted:
        _missing_noted.add(element)
        logger.warning(
            "the %s element is not built (run scripts/setup): TCP cameras use %s, which costs "
            "more CPU",
            element,
            instead,
        )
    return False


def receive_path(spec: PipelineSpec) -> str:
    """How a camera is received. Over TCP (in order, nothing lost): by nvrrtspsrc (auto, for
    rtsp:// URLs) or by rtspsrc with packets stamped in place (stamp, and rtsps://); otherwise,
    and over UDP, by rtspsrc through rtpbin's jitterbuffer. A missing build falls back one step,
    with a warning."""
    if spec.transport != "tcp" or spec.jitterbuffer == "always":
        return JITTERBUFFER
    # nvrrtspsrc reads the plain socket: rtsps:// (TLS) and tunnelled URLs stay with rtspsrc.
    plain = spec.url.lower().startswith("rtsp://")
    if spec.jitterbuffer == "auto" and plain and _built(NATIVE_SOURCE, f"rtspsrc and {STAMPER}"):
        return NATIVE
    if _built(STAMPER, "rtpbin's jitterbuffer"):
        return STAMP
    return JITTERBUFFER


def rtsp_source(spec: PipelineSpec, name: str) -> Any:
    """An rtspsrc for ``spec``: credentials go through properties, never in the location."""
    src = Gst.ElementFactory.make("rtspsrc", name)
    src.set_property("location", strip_credentials(spec.url))
    if spec.credentials:
        src.set_property("user-id", spec.credentials[0])
        src.set_property("user-pw", spec.credentials[1])
    Gst.util_set_object_arg(src, "protocols", spec.transport)
    src.set_property("latency", spec.latency_ms)
    src.set_property("tcp-timeout", int(spec.tcp_timeout_s * 1_000_000))
    # Over UDP only, rtspsrc errors out after this long without packets ("No other protocols
    # to try"); the chooser then tries TCP (transport: auto).
    src.set_property("timeout", int(spec.udp_timeout_s * 1_000_000))
    src.set_property("teardown-timeout", 100 * Gst.MSECOND)
    return src


def native_source(spec: PipelineSpec, name: str) -> Any:
    """An nvrrtspsrc for ``spec`` (TCP): credentials through properties, as for rtspsrc; the
    audio it sets up is what a segment can hold."""
    src = Gst.ElementFactory.make(NATIVE_SOURCE, name)
    src.set_property("location", strip_credentials(spec.url))
    if spec.credentials:
        src.set_property("user-id", spec.credentials[0])
        src.set_property("user-pw", spec.credentials[1])
    src.set_property("latency", spec.latency_ms)
    src.set_property("tcp-timeout", int(spec.tcp_timeout_s * 1_000_000))
    src.set_property("audio-encodings", ",".join(AUDIO_CODECS))
    return src


class CameraPipeline:
    def __init__(
        self,
        loop: GstLoop,
        spec: PipelineSpec,
        generation: int,
        hooks: PipelineHooks,
        teardown: Executor,
    ) -> None:
        self._loop = loop
        self._spec = spec
        self.generation = generation
        self._hooks = hooks
        self._teardown = teardown
        self._log = camera_logger(logger, spec.camera_id)
        self._released = False
        self._lock = threading.Lock()  # _released, _branches (read on the posting thread)
        # Held around every NULL transition of this pipeline or of a branch leaving it: two
        # threads taking the same pads down at once deadlock inside GStreamer.
        self._state_lock = threading.Lock()
        # Attached branches, and those being detached (their messages still matter); with
        # the callback for each that waits for it to finish.
        self._branches: dict[Branch, _Attached] = {}
        # What counts the video (num-buffers, num-bytes in its "stats"), once its pad is linked:
        # the identity after the parser, or nvrrtspsrc itself (an element less per frame).
        self._stats: Any = None
        self.codec: str | None = None
        self.caps: str | None = None
        self.audio: list[AudioStream] = []
        self.skipped: list[str] = []  # streams not set up, in words ("audio G726-32")
        self.streams_known = False
        self._jitterbuffers: list[Any] = []  # rtpbin's, one per stream: packet loss counters
        self.receive_path = receive_path(spec)
        self._audio_sessions: set[int] = set()  # rtpbin sessions (stream indexes) of audio

        self.pipeline = Gst.Pipeline.new(f"cam-{spec.camera_id}-g{generation}")
        native = self.receive_path == NATIVE
        src = native_source(spec, "source") if native else rtsp_source(spec, "source")
        self.tee = Gst.ElementFactory.make("tee", "tee")
        self.tee.set_property("allow-not-linked", True)
        self.pipeline.add(src)
        self.pipeline.add(self.tee)
        self._source = src
        self._handlers = [
            src.connect("pad-added", weak_cb(self._pad_added_cb)),
            src.connect("no-more-pads", weak_cb(self._no_more_pads_cb)),
        ]
        if not native:
            self._handlers += [
                src.connect("select-stream", weak_cb(self._select_stream_cb, False)),
                src.connect("new-manager", weak_cb(self._new_manager_cb)),
            ]
        self._watching = False
        self.pipeline.get_bus().set_sync_handler(weak_cb(self._sync_cb, Gst.BusSyncReply.PASS))

    # ---- control (loop thread) ------------------------------------------------------------

    def start(self) -> None:
        # add_watch attaches to the thread-default context: the loop's own, on its thread.
        self.pipeline.get_bus().add_watch(GLib.PRIORITY_DEFAULT, weak_cb(self._bus_cb, False))
        self._watching = True
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            # rtspsrc posts the reason on the bus; this is the backstop.
            self._report(
                Fault(Origin.OTHER, self.pipeline.get_name(), "", 0, "could not start pipeline")
            )

    def stats(self) -> tuple[int, int]:
        """(buffers, bytes) of video in this generation: after the parser, or as nvrrtspsrc
        pushed them (access units before the parser; the same frames)."""
        ident = self._stats
        if ident is None:
            return 0, 0
        st = ident.get_property("stats")
        return int(st.get_value("num-buffers")), int(st.get_value("num-bytes"))

    def rtp_stats(self) -> tuple[int, int]:
        """(packets lost, packets that came too late to use) of this generation, from rtpbin's
        jitterbuffers (non-zero over UDP; over TCP nothing is lost)."""
        lost = late = 0
        for jb in list(self._jitterbuffers):
            st = jb.get_property("stats")
            lost += int(st.get_value("num-lost"))
            late += int(st.get_value("num-late"))
        return lost, late

    def _new_manager_cb(self, _src: Any, manager: Any) -> None:
        if manager.find_property("latency") is not None and self.receive_path == STAMP:
            # Once per stream, on a streaming thread: the stamper takes the jitterbuffer's place.
            manager.connect("request-jitterbuffer", weak_cb(self._request_jitterbuffer_cb))
        if manager.find_property("latency") is not None:  # rtpbin
            manager.connect("new-jitterbuffer", weak_cb(self._new_jitterbuffer_cb))

    def _request_jitterbuffer_cb(self, _manager: Any, session: int) -> Any:
        # Audio keeps rtpbin's jitterbuffer: its own thread (cheap at audio's packet rate), so
        # that the audio hold (open_audio) can never stop the one thread that reads the camera.
        if session in self._audio_sessions:
            return None
        return Gst.ElementFactory.make(STAMPER, None)

    def _new_jitterbuffer_cb(
        self, _manager: Any, jitterbuffer: Any, _session: int, _ssrc: int
    ) -> None:
        self._jitterbuffers.append(jitterbuffer)

    # ---- branches ---------------------------------------------------------------------------

    def live_audio(self) -> list[AudioStream]:
        """The audio streams a new branch links to: known, and not stopped."""
        return [a for a in self.audio if not a.dead] if self.streams_known else []

    def attach(self, branch: Branch, audio: Sequence[AudioStream] = ()) -> None:
        """Link ``branch`` to the video tee and to the tees of ``audio`` (loop thread)."""
        with self._lock:
            if self._released:
                raise RuntimeError(f"{self!r} is released")
            self._branches[branch] = _Attached()
        branch.link(self.pipeline, self.tee, [a.tee for a in audio])

    def detach(
        self, branch: Branch, done: BranchDone | None = None, with_release: bool = False
    ) -> None:
        """Finish ``branch`` and remove it, on a teardown worker; ``done(ok)`` then runs on
        the loop thread. ``with_release``: the pipeline is about to be released; the branch
        is finished then, just before the pipeline's NULL (loop thread)."""
        with self._lock:
            entry = self._branches.get(branch)
            if entry is None:
                # Gone already, with a released pipeline: its owner must still hear of it.
                if done is not None:
                    self._loop.call(done, True)
                return
            if entry.detaching:
                return
            entry.done = done
            if with_release or self._released:
                return  # release() finishes it
            entry.detaching = True
        state_lock, loop = self._state_lock, self._loop

        def work() -> None:
            ok = branch.finish_blocking(branch.finish_timeout_s)
            with state_lock:  # never alongside the pipeline's own teardown
                branch.dispose()
            with self._lock:
                self._branches.pop(branch, None)
            if done is not None:
                loop.call(done, ok)

        self._teardown.submit(work)

    def _branch_of(self, element: Any) -> Branch | None:
        with self._lock:
            branches = list(self._branches)
        return next((b for b in branches if b.owns(element)), None)

    def _sync_cb(self, _bus: Any, message: Any) -> Any:
        branch = self._branch_of(message.src)
        if branch is not None:
            branch.handle_sync_message(message)
        # Never DROP from Python: with PyGObject 3.42 a dropped message is never freed, and
        # it holds a reference to the element that posted it. Dropping the recorder's
        # fragment and GstBinForwarded messages kept every recording branch (splitmuxsink,
        # muxer, queues: ~50 kB) alive after its session. The bus watch ignores them.
        return Gst.BusSyncReply.PASS

    def release(self) -> None:
        """Stop reporting, then on a teardown worker finish every branch still attached
        (recordings are finalised) and take the pipeline to NULL. Idempotent."""
        with self._lock:
            if self._released:
                return
            self._released = True
            # Those already being detached finish on their own worker.
            branches = [b for b, entry in self._branches.items() if not entry.detaching]
        if self._watching:
            self.pipeline.get_bus().remove_watch()
            self._watching = False
        pipeline, source, handlers = self.pipeline, self._source, self._handlers
        self._handlers = []
        log, loop = self._log, self._loop
        keep_alive = self  # the sync handler (a weak callback) must work until NULL
        state_lock = self._state_lock

        def _to_null() -> None:
            assert keep_alive is not None
            finished: dict[Branch, bool] = {}
            for branch in branches:
                try:
                    finished[branch] = branch.finish_blocking(branch.finish_timeout_s)
                except Exception:
                    log.exception("finishing a branch before teardown failed")
                    finished[branch] = False
            with state_lock:
                ret = pipeline.set_state(Gst.State.NULL)
            if ret == Gst.StateChangeReturn.FAILURE:
                log.warning("pipeline %s did not stop cleanly", pipeline.get_name())
            for h in handlers:
                source.disconnect(h)
            pipeline.get_bus().set_sync_handler(None)
            with keep_alive._lock:
                dones = [(keep_alive._branches[b].done, ok) for b, ok in finished.items()]
                for b in finished:
                    keep_alive._branches.pop(b, None)
            for done, ok in dones:
                if done is not None:
                    loop.call(done, ok)

        self._teardown.submit(_to_null)
        self._stats = None
        self._jitterbuffers = []

    # ---- streaming-thread callbacks -------------------------------------------------------

    def _report(self, fault: Fault) -> None:
        if not self._released:
            self._loop.call(self._deliver_fault, fault, None)

    def _deliver_fault(self, fault: Fault, branch: Branch | None) -> None:
        if not self._released:
            self._hooks.on_fault(self.generation, fault, branch)

    def _deliver_first_frame(self) -> None:
        if not self._released:
            self._hooks.on_first_frame(self.generation)

    @property
    def audio_codec(self) -> str | None:
        """The recorded audio codecs ("aac", "pcma", "aac+pcmu"), None without audio."""
        return "+".join(a.codec for a in self.audio) or None

    def open_audio(self) -> None:
        """Let audio flow into its tees (loop thread, once branches have linked)."""
        for stream in self.audio:
            hold, stream.hold = stream.hold, None
            if hold is not None:
                stream.tee.get_static_pad("sink").remove_probe(hold)

    def _select_stream_cb(self, _src: Any, num: int, caps: Any) -> bool:
        s = caps.get_structure(0)
        media = s.get_string("media")
        if media == "video":
            return True
        encoding = (s.get_string("encoding-name") or "?").upper()
        if media == "audio" and encoding in AUDIO_CODECS:
            self._audio_sessions.add(num)
            return True
        self.skipped.append(f"{media} {encoding}")
        return False

    def _no_more_pads_cb(self, src: Any) -> None:
        if self.receive_path == NATIVE:
            # nvrrtspsrc chose the streams itself (audio-encodings); it names the others.
            self.skipped += [s for s in (src.get_property("skipped") or "").split(",") if s]
        if not self._released:
            self._loop.call(self._deliver_streams_known)

    def _deliver_streams_known(self) -> None:
        self.mark_streams_known()

    def mark_streams_known(self) -> None:
        """Every stream is set up (rtspsrc said so, or the owner stopped waiting)."""
        if self.streams_known:
            return
        self.streams_known = True
        if not self._released:
            self._hooks.on_streams_known(self.generation)

    def _add_audio(self, pad: Any, caps: Any, encoding: str) -> None:
        """depay → (parse) → stats → tee for one audio stream. A stream that cannot be set up
        is left out with a note; it never disturbs the video."""
        codec, depay_name, parse_name = AUDIO_CODECS[encoding]
        n = len(self.audio)
        chain = [Gst.ElementFactory.make(depay_name, f"audio{n}-depay")]
        if self.receive_path == NATIVE:
            # A thread of its own (cheap at audio's packet rate), as rtpbin's jitterbuffer
            # gives it on the other paths: the audio hold (open_audio) must never stop the
            # one thread that reads the camera.
            queue = Gst.ElementFactory.make("queue", f"audio{n}-queue")
            chain.insert(0, queue)
        if parse_name is not None:
            chain.append(Gst.ElementFactory.make(parse_name, f"audio{n}-parse"))
        ident = Gst.ElementFactory.make("identity", f"audio{n}-stats")
        ident.set_property("silent", True)
        tee = Gst.ElementFactory.make("tee", f"audio{n}-tee")
        tee.set_property("allow-not-linked", True)
        chain += [ident, tee]
        for el in chain:
            self.pipeline.add(el)
        ok = all(a.link(b) for a, b in pairwise(chain))
        if not ok or pad.link(chain[0].get_static_pad("sink")) != Gst.PadLinkReturn.OK:
            self.skipped.append(f"audio {encoding} (could not be linked)")
            for el in chain:
                el.set_state(Gst.State.NULL)
                self.pipeline.remove(el)
            return
        for el in chain:
            el.sync_state_with_parent()
        # Nothing passes until the owner has linked its branches (open_audio): a recording
        # that joins then still has the audio from the first video frame on.
        hold = tee.get_static_pad("sink").add_probe(
            Gst.PadProbeType.BLOCK_DOWNSTREAM, lambda _pad, _info: Gst.PadProbeReturn.OK
        )
        self.audio.append(AudioStream(codec, caps.to_string(), tee, ident, hold=hold))

    def _pad_added_cb(self, _src: Any, pad: Any) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        parsed = _NATIVE_VIDEO.get(s.get_name())
        if parsed is not None:  # nvrrtspsrc's video: access units, depayloaded already
            self._add_video(pad, caps, parsed, None)
            return
        if s.get_string("media") == "audio":
            encoding = (s.get_string("encoding-name") or "").upper()
            if encoding in AUDIO_CODECS:
                self._add_audio(pad, caps, encoding)
            return
        if s.get_string("media") != "video":
            return
        encoding = (s.get_string("encoding-name") or "").upper()
        choice = VIDEO_CODECS.get(encoding)
        if choice is None:
            self._report(
                Fault(Origin.SOURCE, "source", "", 0, f"unsupported video encoding {encoding!r}")
            )
            return
        codec, depay_name, parse_name = choice
        self._add_video(pad, caps, (codec, parse_name), depay_name)

    def _add_video(
        self, pad: Any, caps: Any, parsed: tuple[str, str], depay_name: str | None
    ) -> None:
        """(depay →) parse → stats → tee for the video stream (streaming thread)."""
        codec, parse_name = parsed
        if self._stats is not None:
            return  # one video stream is recorded; a second one is ignored
        parse = Gst.ElementFactory.make(parse_name, "parse")
        parse.set_property("config-interval", -1)  # parameter sets before every keyframe
        if depay_name is not None:
            counter = Gst.ElementFactory.make("identity", "stats")
            counter.set_property("silent", True)
            chain = [Gst.ElementFactory.make(depay_name, "depay"), parse, counter]
        else:  # nvrrtspsrc: it counts, and gives byte-stream, made into the tee's form here
            counter = self._source
            form = Gst.ElementFactory.make("capsfilter", "form")
            form.set_property("caps", Gst.Caps.from_string(_TEE_CAPS[codec]))
            chain = [parse, form]
        for el in chain:
            self.pipeline.add(el)
        ok = all(a.link(b) for a, b in pairwise([*chain, self.tee]))
        if not ok or pad.link(chain[0].get_static_pad("sink")) != Gst.PadLinkReturn.OK:
            self._report(Fault(Origin.SOURCE, "source", "", 0, "could not link the video stream"))
            return
        for el in chain:
            el.sync_state_with_parent()
        out = chain[-1].get_static_pad("src")
        gone = Gst.PadProbeReturn.REMOVE
        out.add_probe(Gst.PadProbeType.BUFFER, weak_cb(self._first_buffer_cb, gone))
        out.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, weak_cb(self._eos_cb, gone))
        self.codec = codec
        self.caps = caps.to_string()
        self._stats = counter

    def _first_buffer_cb(self, _pad: Any, _info: Any) -> Any:
        if not self._released:
            self._loop.call(self._deliver_first_frame)
        return Gst.PadProbeReturn.REMOVE

    def _eos_cb(self, _pad: Any, info: Any) -> Any:
        event = info.get_event()
        if event is not None and event.type == Gst.EventType.EOS:
            self._report(source_eos())
        return Gst.PadProbeReturn.OK

    # ---- bus (loop thread) ----------------------------------------------------------------

    def _bus_cb(self, _bus: Any, message: Any) -> bool:
        if self._released:
            return False
        t = message.type
        if t == Gst.MessageType.ERROR:
            self._deliver_fault(fault_from_error_message(message), self._branch_of(message.src))
        elif t == Gst.MessageType.WARNING:
            warning = fault_from_error_message(message)
            self._log.debug("warning: %s", warning.describe())
        # No EOS *message* handling: the pipeline posts one when all its sinks are EOS, which
        # also happens when a recording session ends while nobody watches. The camera's own
        # EOS is caught by the probe after the parser.
        elif t == Gst.MessageType.ELEMENT:
            s = message.get_structure()
            if s is not None and s.get_name() == "GstRTSPSrcTimeout":
                self._deliver_fault(source_timeout(), None)
        elif t == Gst.MessageType.LATENCY:
            self.pipeline.recalculate_latency()
        return True

    def __repr__(self) -> str:
        return redact(f"<CameraPipeline {self._spec.camera_id} g{self.generation}>")
