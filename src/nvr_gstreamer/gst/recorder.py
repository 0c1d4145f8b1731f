"""The recording branch of one camera pipeline: one recording session, one splitmuxsink.

``tee → [bin "recorder-N": queue → valve → (keyframe gate) → splitmuxsink(matroskamux)]``
``audio tee → [same bin: queue → valve → (gate) → splitmuxsink audio_%u]`` per audio stream

* A fresh bin and splitmuxsink per recording session, never reused (a reused splitmuxsink
  reopened and truncated its previous file).
* The keyframe gate drops delta frames until the first keyframe, so every file starts with a
  keyframe; splitmuxsink cuts later segments at keyframes on its own. Until that first
  keyframe nothing reaches splitmuxsink and no file exists, so stopping early never leaves a
  header-only file.
* Matroska survives ``kill -9`` (frames up to the crash stay readable; duration and index are
  restored by a copy-remux at start-up).
* :meth:`close_valve` is safe from any thread (sync bus handler included): at the first storage
  error the valve drops everything so the tee, and with it the live view and other branches,
  never blocks on a dead disk.
* Audio goes into the same file untouched. Its gate drops audio older than the file's first
  keyframe, so audio and video start together. splitmuxsink cuts files only once *every*
  input has reached the cut: an audio stream that stops while video goes on would stall the
  recording (and lose the video). :meth:`end_audio` ends such an input (valve closed, EOS on
  its own), and the recording goes on with video alone.
* :meth:`finish` ends the session properly: EOS into the branch, the file is finalised
  (``splitmuxsink-fragment-closed``), then the bin is removed. It is bounded by a timeout,
  after which the bin is dropped anyway (the file is then repaired at the next start-up).

Longer than ~300 lines: one splitmuxsink session with its pre-record ring, gates and audio
inputs; the probes share its state and locks.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from nvr_gstreamer.camera.media import FragmentClosed, FragmentOpened  # noqa: E402
from nvr_gstreamer.gst.faults import RECORDER_BIN, inside  # noqa: E402
from nvr_gstreamer.gst.hold import answer_serialized_query, keep_blocked  # noqa: E402
from nvr_gstreamer.gst.weak import weak_cb  # noqa: E402

logger = logging.getLogger(__name__)

SPLITMUX_NAME = "splitmux"


class RecorderBranch:
    _count = 0

    def __init__(
        self,
        segment_s: float,
        location_for: Callable[[int], Path | None],
        on_opened: Callable[[RecorderBranch, FragmentOpened], None],
        on_closed: Callable[[RecorderBranch, FragmentClosed], None],
        armed: bool = False,
        pre_record_s: float = 0.0,
        hold: bool = False,
    ) -> None:
        """``location_for(fragment_index)`` names each new file and creates its folder; it
        runs on a streaming thread and must be quick. None refuses (recording then stops
        with an error, handled as a storage fault). ``on_opened``/``on_closed`` run on the
        thread that posted splitmuxsink's message (see :meth:`handle_sync_message`).

        ``armed``: waiting for :meth:`start` with the valve closed, so that with
        ``pre_record_s`` the delay line is already full when recording starts.
        ``hold``: the camera's streams are not known yet; frames wait in the queue (nothing
        reaches splitmuxsink) until :meth:`open_streams` adds the audio inputs."""
        self._location_for = location_for
        self._on_opened = on_opened
        self._on_closed = on_closed
        RecorderBranch._count += 1
        self.bin = Gst.Bin.new(f"{RECORDER_BIN}-{RecorderBranch._count}")
        # Forward the branch's own EOS (wrapped as "GstBinForwarded"): it tells us the last
        # file is final, even when other branches keep the pipeline running.
        self.bin.set_property("message-forward", True)
        # The branch prerolls on its own: a sink added to a running pipeline otherwise makes
        # the whole pipeline wait for its preroll. After an earlier branch failed (disk
        # full), that wait never ended and every new recording stalled with a 0-byte file.
        self.bin.set_property("async-handling", True)
        self.valve = Gst.ElementFactory.make("valve", "recording_valve")
        queue = self._queue_for(pre_record_s, "record-queue")
        mux = Gst.ElementFactory.make("matroskamux", "muxer")
        mux.set_property("offset-to-zero", True)
        mux.set_property("writing-app", "nvr_gstreamer")
        filesink = Gst.ElementFactory.make("filesink", "sink")
        filesink.set_property("async", False)
        # Unbuffered: every muxed block goes to the kernel at once, so kill -9 loses only
        # what the muxer holds (a frame or so), not filesink's 64 KiB buffer — which is
        # several seconds at a low bitrate. A few small writes per frame cost little.
        Gst.util_set_object_arg(filesink, "buffer-mode", "unbuffered")
        split = Gst.ElementFactory.make("splitmuxsink", SPLITMUX_NAME)
        # muxer and sink must be set before anything links to splitmuxsink.
        split.set_property("muxer", mux)
        split.set_property("sink", filesink)
        split.set_property("max-size-time", int(segment_s * Gst.SECOND))
        split.set_property("send-keyframe-requests", False)
        split.connect("format-location-full", weak_cb(self._format_location_cb))
        for el in (queue, self.valve, split):
            self.bin.add(el)
        queue.link(self.valve)
        self.valve.link(split)
        self.bin.add_pad(Gst.GhostPad.new("sink", queue.get_static_pad("sink")))
        self._queue = queue
        self.armed = armed
        self.pre_record_s = pre_record_s
        self.finish_timeout_s = 3.0 + pre_record_s  # the kept seconds are written first
        self._filesink = filesink
        self._key_pts: int | None = None  # PTS of the file's first keyframe: audio starts there
        # Per audio input: its queue and valve, and whether it was ended (end_audio).
        self._split = split
        self._audio: list[tuple[Any, Any]] = []
        self.audio_ended: list[bool] = []
        # Pre-record: while armed, a probe keeps the last seconds (from a keyframe) in
        # memory and lets nothing through; start() replays them ahead of the live frames.
        self._ring: deque[tuple[int, bool, Any]] = deque()
        self._audio_rings: list[deque[tuple[int, Any]]] = []
        self._replay = threading.Event()
        if armed:
            queue.get_static_pad("src").add_probe(
                Gst.PadProbeType.BUFFER, weak_cb(self._ring_cb, Gst.PadProbeReturn.REMOVE)
            )
        self._hold_probe: int | None = None
        self._hold_queries: int | None = None
        if hold:
            self._hold_probe = self.valve.get_static_pad("src").add_probe(
                Gst.PadProbeType.BLOCK_DOWNSTREAM, keep_blocked
            )
            # A serialized query (allocation, drain) waits in the queue until the held frames
            # move on. Upstream of it is the thread that reads the camera — over TCP without a
            # jitterbuffer, the one thread of every stream, whose audio must get through for
            # the hold to end. While holding, such queries are answered here.
            self._hold_queries = queue.get_static_pad("sink").add_probe(
                Gst.PadProbeType.QUERY_DOWNSTREAM, answer_serialized_query
            )
        # The keyframe gate sits after the valve: it sees only what is meant for the file.
        self.valve.get_static_pad("src").add_probe(
            Gst.PadProbeType.BUFFER, weak_cb(self._keyframe_gate_cb, Gst.PadProbeReturn.REMOVE)
        )
        # Links from the tees: "video", or an audio input's index → (tee pad, our sink pad).
        self._tee_pads: dict[str | int, tuple[Any, Any]] = {}
        self._pipeline: Any = None
        self._gate_passed = threading.Event()  # data reached splitmuxsink: a file will exist
        self._eos_done = threading.Event()  # the branch has finished its EOS: files final
        # The EOS finished or an element failed: either way a finish waits no longer.
        self._settled = threading.Event()
        self._lock = threading.Lock()
        self.failed = False  # an element of the branch posted an error: it cannot finalise
        self.current: Path | None = None

    @staticmethod
    def _queue_for(pre_record_s: float, name: str) -> Any:
        queue = Gst.ElementFactory.make("queue", name)
        # Bounded and leaky: a slow or dead disk drops old frames here instead of blocking
        # the tee (which would freeze the live view and starve the camera connection).
        queue.set_property("max-size-time", int((pre_record_s + 10.0) * Gst.SECOND))
        queue.set_property("max-size-buffers", 0)
        queue.set_property("max-size-bytes", 64 * 1024 * 1024)
        queue.set_property("leaky", 2)
        return queue

    # ---- wiring (loop thread) -------------------------------------------------------------

    def link(self, pipeline: Any, tee: Any, audio_tees: Sequence[Any] = ()) -> None:
        """Add to ``pipeline``, linked to the video tee and to each audio tee (through
        :meth:`CameraPipeline.attach <nvr_gstreamer.gst.pipeline.CameraPipeline.attach>`)."""
        self._pipeline = pipeline
        pipeline.add(self.bin)
        # Running before linked (see gst/faults.attach_branch): a tee pad linked to a branch
        # still in NULL gets FLUSHING back and stops the camera's source without an error.
        self.bin.sync_state_with_parent()
        for audio_tee in audio_tees:
            self._add_audio_input(audio_tee, running=True)
        tee_pad = tee.request_pad_simple("src_%u")
        tee_pad.link(self.bin.get_static_pad("sink"))
        with self._lock:
            self._tee_pads["video"] = (tee_pad, self.bin.get_static_pad("sink"))

    @property
    def holding(self) -> bool:
        return self._hold_probe is not None

    def open_streams(self, audio_tees: Sequence[Any]) -> None:
        """The camera's streams are known: add its audio, then let the held frames through
        (loop thread; nothing has reached splitmuxsink yet)."""
        for audio_tee in audio_tees:
            self._add_audio_input(audio_tee, running=True)
        queries, self._hold_queries = self._hold_queries, None
        if queries is not None:
            self._queue.get_static_pad("sink").remove_probe(queries)
        probe, self._hold_probe = self._hold_probe, None
        if probe is not None:
            self.valve.get_static_pad("src").remove_probe(probe)

    def _add_audio_input(self, audio_tee: Any, running: bool) -> None:
        """queue → valve → (gate) → splitmuxsink audio_%u, fed by ``audio_tee``."""
        i = len(self._audio)
        aq = self._queue_for(self.pre_record_s, f"audio{i}-queue")
        av = Gst.ElementFactory.make("valve", f"audio{i}-valve")
        self.bin.add(aq)
        self.bin.add(av)
        aq.link(av)
        av.get_static_pad("src").link(self._split.request_pad_simple("audio_%u"))
        ghost = Gst.GhostPad.new(f"audio{i}", aq.get_static_pad("sink"))
        if running:
            ghost.set_active(True)
        self.bin.add_pad(ghost)
        av.get_static_pad("src").add_probe(
            Gst.PadProbeType.BUFFER, weak_cb(self._audio_gate_cb, Gst.PadProbeReturn.REMOVE)
        )
        self._audio.append((aq, av))
        self.audio_ended.append(False)
        self._audio_rings.append(deque())
        if self.armed:
            aq.get_static_pad("src").add_probe(
                Gst.PadProbeType.BUFFER,
                weak_cb(self._audio_ring_cb, Gst.PadProbeReturn.REMOVE),
                i,
            )
        if running:
            aq.sync_state_with_parent()
            av.sync_state_with_parent()
        tee_pad = audio_tee.request_pad_simple("src_%u")
        tee_pad.link(ghost)
        with self._lock:
            self._tee_pads[i] = (tee_pad, ghost)

    def start(self) -> None:
        """Armed branch: from the next frame on, write — the kept seconds first."""
        self.armed = False
        ring = self._ring
        if ring:
            self._key_pts = ring[0][0]  # the kept seconds start at a keyframe
        self._replay.set()

    def close_valve(self) -> None:
        """Drop everything from now on. Safe from any thread."""
        self.valve.set_property("drop", True)
        for _aq, av in self._audio:
            av.set_property("drop", True)

    def end_audio(self, index: int) -> None:
        """An audio input stopped while video goes on: end it alone (unlinked from its tee,
        then EOS through its own queue into splitmuxsink), so the recording goes on with
        video. Never from a streaming thread."""
        if index >= len(self._audio) or self.audio_ended[index]:
            return
        self.audio_ended[index] = True
        self._unlink(index)
        aq, _av = self._audio[index]
        aq.get_static_pad("sink").send_event(Gst.Event.new_eos())

    @property
    def gate_passed(self) -> bool:
        return self._gate_passed.is_set()

    def bytes_written(self) -> int:
        """Bytes written to the current file so far (an element query, no file-system call:
        safe on the loop thread); -1 when unknown."""
        ok, position = self._filesink.query_position(Gst.Format.BYTES)
        return int(position) if ok else -1

    # ---- messages (the posting thread, via the pipeline's sync bus handler) ----------------

    def owns(self, element: Any) -> bool:
        return inside(element, self.bin)

    def handle_sync_message(self, message: Any) -> bool:
        """Handle a message of this branch; True when it was a fragment message."""
        if message.type == Gst.MessageType.ERROR:
            self.close_valve()  # at once, from this thread: the tee must never block
            self.failed = True
            self._settled.set()  # an EOS already on its way never completes now
            return False
        structure = message.get_structure()
        if message.type != Gst.MessageType.ELEMENT or structure is None:
            return False
        name = structure.get_name()
        if name == "GstBinForwarded":
            inner = structure.get_value("message")
            if inner is not None and inner.type == Gst.MessageType.EOS:
                self._eos_done.set()
                self._settled.set()
            return True
        if name not in ("splitmuxsink-fragment-opened", "splitmuxsink-fragment-closed"):
            return False
        path = Path(structure.get_string("location"))
        ok, rt = structure.get_uint64("running-time")
        running_s = rt / Gst.SECOND if ok else 0.0
        if name == "splitmuxsink-fragment-opened":
            self.current = path
            now_rt = self.bin.get_current_running_time()
            age = (now_rt / Gst.SECOND - running_s) if now_rt != Gst.CLOCK_TIME_NONE else 0.0
            opened = FragmentOpened(path, running_s, max(0.0, age), self._monotonic_s(rt))
            self._on_opened(self, opened)
        else:
            if self.current == path:
                self.current = None
            self._on_closed(self, FragmentClosed(path, running_s))
        return True

    def _monotonic_s(self, running_time: int) -> float | None:
        """The monotonic clock's time (s) at ``running_time``, when the pipeline's clock is
        the system's monotonic clock (as Python's ``time.monotonic``); None otherwise."""
        clock = self.bin.get_clock()
        if not isinstance(clock, Gst.SystemClock):
            return None
        if clock.get_property("clock-type") != Gst.ClockType.MONOTONIC:
            return None
        return (self.bin.get_base_time() + running_time) / Gst.SECOND

    # ---- ending a session -----------------------------------------------------------------

    def finish_blocking(self, timeout_s: float) -> bool:
        """End the session from a worker thread (never the loop or a streaming thread):
        unlink from the tee, push EOS through the branch, wait until splitmuxsink has
        finalised its file. True when the file was closed properly."""
        self._unlink_from_tee()
        if not self._gate_passed.is_set():
            return True  # no keyframe passed: nothing was written, no file exists
        if self.failed:
            # A failed splitmuxsink cannot take EOS any more; its file keeps every frame it
            # wrote (Matroska) and gets its index back at the next start-up recovery.
            return False
        if not self._eos_done.is_set():  # (the camera's own EOS may have done it already)
            # splitmuxsink finalises once every input has ended; each EOS goes through its
            # input's own queue (pushed straight into splitmuxsink it could wait there for a
            # streaming thread that waits for it).
            for i in range(len(self._audio)):
                self.end_audio(i)
            self._queue.get_static_pad("sink").send_event(Gst.Event.new_eos())
        # An element that fails meanwhile (the disk filled as the file was being closed)
        # ends the wait at once: the EOS would never reach the end of the branch.
        self._settled.wait(timeout_s)
        return self._eos_done.is_set()

    def dispose(self) -> None:
        """Take the bin to NULL and out of its pipeline (a worker thread, after finish)."""
        self.bin.set_state(Gst.State.NULL)
        pipeline = self._pipeline
        if pipeline is not None and self.bin.get_parent() is pipeline:
            pipeline.remove(self.bin)
        self._pipeline = None

    def _unlink_from_tee(self) -> None:
        with self._lock:
            keys = list(self._tee_pads)
        for key in keys:
            self._unlink(key)

    def _unlink(self, key: str | int) -> None:
        """Unlink one input from its tee once the tee pad is idle (bounded wait)."""
        with self._lock:
            pads = self._tee_pads.pop(key, None)
        if pads is None:
            return
        pad, sink = pads
        unlinked = threading.Event()

        def idle_cb(tee_pad: Any, _info: Any) -> Any:
            tee_pad.unlink(sink)
            unlinked.set()
            return Gst.PadProbeReturn.REMOVE

        pad.add_probe(Gst.PadProbeType.IDLE, idle_cb)
        unlinked.wait(2.0)
        tee = pad.get_parent_element()
        if tee is not None:
            tee.release_request_pad(pad)

    # ---- streaming threads ----------------------------------------------------------------

    def _ring_cb(self, pad: Any, info: Any) -> Any:
        buf = info.get_buffer()
        if buf is None:
            return Gst.PadProbeReturn.OK
        if self._replay.is_set():
            # Recording starts: the kept frames go first, on this same streaming thread (the
            # pad's stream lock is recursive), then this frame, then the live stream.
            ring, self._ring = self._ring, deque()
            for _pts, _key, kept in ring:
                pad.push(kept)
            return Gst.PadProbeReturn.REMOVE
        pts = buf.pts if buf.pts != Gst.CLOCK_TIME_NONE else 0
        key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        self._ring.append((pts, key, buf.copy()))
        # Trim from the front to the latest keyframe that still leaves pre_record_s behind.
        keep_from = pts - int(self.pre_record_s * Gst.SECOND)
        while len(self._ring) > 1:
            later_key = next(
                (i for i, (p, k, _b) in enumerate(self._ring) if i > 0 and k and p <= keep_from),
                None,
            )
            if later_key is None:
                break
            for _ in range(later_key):
                self._ring.popleft()
        return Gst.PadProbeReturn.DROP

    def _audio_ring_cb(self, pad: Any, info: Any, index: int) -> Any:
        """The pre-record delay line of an audio input (as :meth:`_ring_cb` for video)."""
        buf = info.get_buffer()
        if buf is None:
            return Gst.PadProbeReturn.OK
        ring = self._audio_rings[index]
        if self._replay.is_set():
            self._audio_rings[index] = deque()
            for _pts, kept in ring:
                pad.push(kept)
            return Gst.PadProbeReturn.REMOVE
        pts = buf.pts if buf.pts != Gst.CLOCK_TIME_NONE else 0
        ring.append((pts, buf.copy()))
        # Audio frames are all "key": keep a GOP's slack beyond the video's seconds, the gate
        # trims to the first kept keyframe.
        keep_from = pts - int((self.pre_record_s + 10.0) * Gst.SECOND)
        while ring and ring[0][0] < keep_from:
            ring.popleft()
        return Gst.PadProbeReturn.DROP

    def _keyframe_gate_cb(self, _pad: Any, info: Any) -> Any:
        buf = info.get_buffer()
        if buf is not None and buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
            return Gst.PadProbeReturn.DROP
        # First keyframe: from here on splitmuxsink cuts at keyframes itself.
        if buf is not None and self._key_pts is None and buf.pts != Gst.CLOCK_TIME_NONE:
            self._key_pts = buf.pts
        self._gate_passed.set()
        return Gst.PadProbeReturn.REMOVE

    def _audio_gate_cb(self, _pad: Any, info: Any) -> Any:
        """Audio waits for the file's first keyframe and starts with it."""
        buf = info.get_buffer()
        key = self._key_pts
        if buf is None or key is None:
            return Gst.PadProbeReturn.DROP if buf is not None else Gst.PadProbeReturn.OK
        if buf.pts != Gst.CLOCK_TIME_NONE:
            end = buf.pts + (buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else 0)
            if end <= key:  # over before the first keyframe: the next may overlap it
                return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.REMOVE

    def _format_location_cb(self, _split: Any, fragment_id: int, _sample: Any) -> str | None:
        path = self._location_for(fragment_id)
        return None if path is None else str(path)
