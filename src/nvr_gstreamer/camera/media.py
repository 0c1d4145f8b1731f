"""The seams between a camera's logic and its media: plain values and small protocols.

Pure (no ``gi``): the engine's runtime is written against these, the GStreamer adapters in
:mod:`nvr_gstreamer.gst` implement them, and unit tests give the runtime fakes that replay what
GStreamer reports (:mod:`nvr_gstreamer.testing.fake_media`). Threads are part of each
contract: *loop* means the one GStreamer loop thread, *worker* a teardown worker, *streaming*
any GStreamer streaming thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nvr_gstreamer.camera.errors import Fault
from nvr_gstreamer.storage.timeline import GapReason
from nvr_gstreamer.storage.volume import VolumeCheck

# ---- scheduling ---------------------------------------------------------------------------


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """The loop: calls and timers run on its one thread, in order."""

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """From any thread: run ``fn(*args)`` on the loop soon (the one way across)."""

    def timeout(self, delay_s: float, fn: Callable[[], Any]) -> Cancellable: ...

    def every(self, interval_s: float, fn: Callable[[], Any]) -> Cancellable: ...

    def in_loop(self) -> bool:
        """Whether the caller runs on the loop thread."""


# ---- plain values -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    camera_id: str
    url: str
    credentials: tuple[str, str] | None
    transport: str = "tcp"  # tcp | udp (the chooser decides for "auto")
    latency_ms: int = 200
    tcp_timeout_s: float = 5.0
    udp_timeout_s: float = 5.0  # no UDP packet this long: an error (a firewall drops them)
    # auto: over TCP, packets are stamped in place (nvrrtpstamp) instead of going through
    # rtpbin's jitterbuffer thread; always: the jitterbuffer on every transport.
    jitterbuffer: str = "auto"


@dataclass(frozen=True, slots=True)
class FragmentOpened:
    path: Path
    running_time_s: float  # of the file's first frame
    age_s: float  # how long ago that frame was live (splitmuxsink holds a GOP before writing)
    # When that frame was live on the monotonic clock (s), if the pipeline runs on it: with
    # the wall clock's offset from it, an exact start (no reading of two clocks apart).
    monotonic_s: float | None = None


@dataclass(frozen=True, slots=True)
class FragmentClosed:
    path: Path
    running_time_s: float


@dataclass(frozen=True, slots=True)
class LiveFrame:
    camera_id: str
    width: int
    height: int
    data: bytes  # in ``format``: packed RGB (rows may be padded), or I420 (Y plane first)
    format: str = "RGB"


FrameCallback = Callable[[LiveFrame], None]


@dataclass(frozen=True, slots=True)
class LiveFormat:
    width: int = 640
    height: int = 360
    fps: float = 10
    format: str = "RGB"  # or I420 (motion detection reads the Y plane)
    # width 0: the decoded size (nothing scaled)
    decoder_threads: int = 0  # 0: the decoder's choice; 1: no frame threads (cheapest)


# ---- what a pipeline reports, and what hangs off it ----------------------------------------


class Branch(Protocol):
    """What hangs off a camera pipeline's tees (recorder, live view)."""

    finish_timeout_s: float

    def link(self, pipeline: Any, tee: Any, audio_tees: Sequence[Any]) -> None:
        """Add to the GStreamer pipeline, linked to the tees (loop; via the pipeline)."""

    def owns(self, element: Any) -> bool: ...

    def handle_sync_message(self, message: Any) -> bool:
        """A message of this branch, on the posting thread (it must not block)."""

    def finish_blocking(self, timeout_s: float) -> bool:
        """Unlink from the tees and finalise the output (worker); True when done in time."""

    def dispose(self) -> None:
        """NULL and out of the pipeline (worker, the pipeline's state lock held)."""


BranchDone = Callable[[bool], None]


@dataclass(frozen=True, slots=True)
class PipelineHooks:
    """What a pipeline reports to its owner, on the loop, tagged with its generation."""

    on_first_frame: Callable[[int], None]
    on_fault: Callable[[int, Fault, Branch | None], None]  # the branch it came from, if any
    on_streams_known: Callable[[int], None]


class AudioInput(Protocol):
    codec: str
    tee: Any  # what a branch links to
    dead: bool  # stopped while video went on: not linked into new recordings

    def buffers(self) -> int: ...


class CameraPipelineLike(Protocol):
    generation: int
    receive_path: str  # "stamp" (TCP, in place) or "jitterbuffer"
    codec: str | None
    streams_known: bool
    skipped: list[str]

    @property
    def audio_codec(self) -> str | None: ...

    def start(self) -> None: ...

    def release(self) -> None: ...

    def stats(self) -> tuple[int, int]: ...

    def rtp_stats(self) -> tuple[int, int]: ...

    def live_audio(self) -> Sequence[AudioInput]: ...

    def attach(self, branch: Any, audio: Sequence[Any] = ()) -> None: ...

    def detach(self, branch: Any, done: BranchDone | None = None) -> None: ...

    def open_audio(self) -> None: ...

    def mark_streams_known(self) -> None: ...


class RecorderLike(Branch, Protocol):
    armed: bool
    pre_record_s: float
    current: Path | None
    audio_ended: list[bool]

    @property
    def holding(self) -> bool: ...

    @property
    def gate_passed(self) -> bool: ...

    def start(self) -> None: ...

    def open_streams(self, audio_tees: Sequence[Any]) -> None: ...

    def end_audio(self, index: int) -> None: ...

    def bytes_written(self) -> int: ...


class WebSinkLike(Protocol):
    """Serves a camera's browser live view to viewers' sockets (``nvrlivesink``)."""

    def add_client(self, fd: int) -> None:
        """A viewer's socket; the sink owns ``fd`` from now on (any thread)."""

    def remove_client(self, fd: int) -> None:
        """The viewer left; ``fd`` is closed when this returns (any thread)."""


class WebStreamLike(WebSinkLike, Protocol):
    def start(self) -> None: ...

    def release(self) -> None: ...

    @property
    def frames(self) -> int:
        """Frames that reached the sink so far (the sub-stream's watchdog reads it)."""
        ...


class LiveStreamLike(Protocol):
    def start(self) -> None: ...

    def release(self) -> None: ...


class Media(Protocol):
    """Makes a camera's pipelines and branches (GStreamer in the product, fakes in tests)."""

    def pipeline(
        self, spec: PipelineSpec, generation: int, hooks: PipelineHooks
    ) -> CameraPipelineLike: ...

    def recorder(
        self,
        segment_s: float,
        location_for: Callable[[int], Path | None],
        on_opened: Callable[[Any, FragmentOpened], None],
        on_closed: Callable[[Any, FragmentClosed], None],
        *,
        armed: bool,
        pre_record_s: float,
        hold: bool,
    ) -> Any: ...

    def live_branch(self, camera_id: str, fmt: LiveFormat, deliver: FrameCallback) -> Any: ...

    def live_stream(
        self,
        spec: PipelineSpec,
        fmt: LiveFormat,
        deliver: FrameCallback,
        on_failed: Callable[[str], None],
    ) -> LiveStreamLike: ...

    def web_branch(self) -> WebSinkLike:
        """The browser live branch for the camera's tee: serves its viewers' sockets."""
        ...

    def web_stream(self, spec: PipelineSpec, on_failed: Callable[[str], None]) -> WebStreamLike:
        """The browser live view from ``spec``'s URL (a sub-stream)."""
        ...

    def webrtc_branch(self, send: Callable[[Any], None]) -> Any:
        """One browser's WebRTC branch (H.264): its signalling to ``send`` (any thread)."""


# ---- storage, as a camera uses it ---------------------------------------------------------


class RecordingStorage(Protocol):
    root: Path

    @property
    def segment_seconds(self) -> float: ...

    @property
    def pre_record_seconds(self) -> float: ...

    @property
    def state(self) -> VolumeCheck: ...

    def new_segment_path(self, camera_id: str) -> Path | None:
        """Streaming thread; must be quick."""

    def segment_opened(self, camera_id: str, path: Path, start_utc: float) -> None: ...

    def segment_closed(
        self, camera_id: str, path: Path, start_utc: float, duration_s: float
    ) -> None: ...

    def interruption(
        self, camera_id: str, reason: GapReason | None, at_utc: float | None = None
    ) -> None: ...

    def check_now(self, then: Callable[[VolumeCheck], None] | None = None) -> None: ...

    def report_disk_full(self, then: Callable[[VolumeCheck], None] | None = None) -> None: ...

    def new_event_id(self) -> int:
        """A motion event's id, unique in this storage (any thread)."""

    def event_started(
        self,
        event_id: int,
        camera_id: str,
        start_utc: float,
        score: float,
        boxes: Sequence[tuple[float, float, float, float]],
    ) -> None: ...

    def event_ended(
        self,
        event_id: int,
        end_utc: float,
        score: float,
        peak_utc: float,
        boxes: Sequence[tuple[float, float, float, float]],
        reason: str,
        thumbnail: bytes | None,
    ) -> None: ...
