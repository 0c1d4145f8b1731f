"""The camera simulator, driven through its subprocess API and read by real rtspsrc clients."""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import gi
import psutil
import pytest

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtp", "1.0")
from gi.repository import Gst, GstApp, GstRtp  # noqa: E402

from nvr_gstreamer.simulator.model import (  # noqa: E402
    AllowedTransports,
    AudioCodec,
    Codec,
    FaultMode,
)
from nvr_gstreamer.simulator.process import SimulatorProcess  # noqa: E402

pytestmark = pytest.mark.integration

Gst.init(None)

USER = "admin"
PASSWORD = "pw-7f3e-secret"
GOP_FRAMES = 15  # 15 fps, 1 s GOP
CONNECT_TIMEOUT_S = 6.0


@dataclass(frozen=True, slots=True)
class Frame:
    arrived_s: float
    keyframe: bool
    size_bytes: int


@dataclass(frozen=True, slots=True)
class BusEvent:
    kind: Gst.MessageType
    domain: str = ""
    code: int = 0
    text: str = ""
    debug: str = ""
    source: str = ""
    """Name of the element that posted the message."""


def _bus_event(message: Gst.Message) -> BusEvent | None:
    source = message.src.get_name() if message.src is not None else ""
    if message.type == Gst.MessageType.ERROR:
        error, debug = message.parse_error()
        return BusEvent(message.type, error.domain, error.code, error.message, debug or "", source)
    if message.type == Gst.MessageType.WARNING:
        warning, debug = message.parse_warning()
        return BusEvent(
            message.type, warning.domain, warning.code, warning.message, debug or "", source
        )
    if message.type == Gst.MessageType.EOS:
        return BusEvent(message.type, source=source)
    if message.type == Gst.MessageType.ELEMENT and message.get_structure() is not None:
        return BusEvent(message.type, text=message.get_structure().get_name(), source=source)
    return None


class RtspReader:
    """``rtspsrc protocols=tcp ! depay ! parse ! appsink`` (and optionally a decoder branch).

    Everything it sees is recorded from streaming threads (appsink signals, a sync bus handler that
    never changes state) and awaited with bounded condition waits.
    """

    def __init__(
        self, url: str, codec: Codec = Codec.H264, *, decode: bool = False, protocols: str = "tcp"
    ) -> None:
        name = codec.value
        tail = f"video/x-{name},stream-format=byte-stream,alignment=au"
        description = (
            f"rtspsrc name=src protocols={protocols} latency=100 tcp-timeout=3000000 ! rtp{name}depay "
            f"! {name}parse ! {tail} ! tee name=t ! queue ! appsink name=sink emit-signals=true "
            "sync=false"
        )
        if decode:
            description += (
                f" t. ! queue ! avdec_{name} ! videoconvert ! video/x-raw,format=GRAY8 "
                "! appsink name=raw emit-signals=true sync=false"
            )
        self.pipeline = Gst.parse_launch(description)
        self.pipeline.get_by_name("src").set_property("location", url)
        self._cond = threading.Condition()
        self.frames: list[Frame] = []
        self.events: list[BusEvent] = []
        self.caps: str | None = None
        self.picture_hashes: list[str] = []
        self.pipeline.get_by_name("sink").connect("new-sample", self._sample_cb)
        if decode:
            self.pipeline.get_by_name("raw").connect("new-sample", self._raw_cb)
        self.pipeline.get_bus().set_sync_handler(self._bus_cb)

    def start(self) -> RtspReader:
        self.pipeline.set_state(Gst.State.PLAYING)
        return self

    def close(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)

    def _sample_cb(self, sink: GstApp.AppSink) -> Gst.FlowReturn:
        sample = sink.pull_sample()
        buffer = sample.get_buffer()
        frame = Frame(
            time.monotonic(),
            not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT),
            buffer.get_size(),
        )
        with self._cond:
            if self.caps is None:
                self.caps = sample.get_caps().to_string()
            self.frames.append(frame)
            self._cond.notify_all()
        return Gst.FlowReturn.OK

    def _raw_cb(self, sink: GstApp.AppSink) -> Gst.FlowReturn:
        buffer = sink.pull_sample().get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if ok:
            digest = hashlib.sha1(bytes(info.data)).hexdigest()
            buffer.unmap(info)
            with self._cond:
                self.picture_hashes.append(digest)
                self._cond.notify_all()
        return Gst.FlowReturn.OK

    def _bus_cb(self, bus: Gst.Bus, message: Gst.Message) -> Gst.BusSyncReply:
        event = _bus_event(message)
        if event is not None:
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        return Gst.BusSyncReply.DROP

    # -- bounded waits ---------------------------------------------------------------------------

    def _wait(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout_s)

    def frame_count(self) -> int:
        with self._cond:
            return len(self.frames)

    def wait_frames(self, count: int, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
        """Wait until ``count`` frames in total have arrived."""
        return self._wait(lambda: len(self.frames) >= count, timeout_s)

    def wait_more_frames(self, more: int, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
        start = self.frame_count()
        return self.wait_frames(start + more, timeout_s)

    def wait_event(
        self, predicate: Callable[[BusEvent], bool], timeout_s: float = CONNECT_TIMEOUT_S
    ) -> BusEvent | None:
        def found() -> bool:
            return any(predicate(e) for e in self.events)

        if not self._wait(found, timeout_s):
            return None
        with self._cond:
            return next(e for e in self.events if predicate(e))

    def wait_pictures(self, count: int, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
        return self._wait(lambda: len(self.picture_hashes) >= count, timeout_s)

    def wait_silence(self, silence_s: float, within_s: float) -> bool:
        """Wait for a gap of ``silence_s`` without frames that starts within ``within_s``."""
        start = time.monotonic()
        deadline = start + within_s + silence_s
        with self._cond:
            while True:
                seen = len(self.frames)
                quiet_since = self.frames[-1].arrived_s if self.frames else start
                remaining = quiet_since + silence_s - time.monotonic()
                if remaining <= 0:
                    return True
                if time.monotonic() + remaining > deadline:
                    return False
                self._cond.wait_for(lambda n=seen: len(self.frames) > n, remaining)


def _is_error(domain: str, code: int) -> Callable[[BusEvent], bool]:
    return lambda e: e.kind == Gst.MessageType.ERROR and e.domain == domain and e.code == code


def _ended(event: BusEvent) -> bool:
    return event.kind in (Gst.MessageType.EOS, Gst.MessageType.ERROR)


RESOURCE = "gst-resource-error-quark"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(
        cameras=4,
        camera_codecs={"cam4": Codec.H265},
        auth=(USER, PASSWORD),
        gop_seconds=1.0,
    ) as simulator:
        yield simulator
        for name in simulator.camera_names:
            simulator.resume(name)
        assert simulator.close() == 0, simulator.output()


@pytest.fixture
def readers(sim: SimulatorProcess) -> Iterator[Callable[..., RtspReader]]:
    """Open readers on the module simulator; close them and resume every camera afterwards."""
    opened: list[RtspReader] = []

    def open_reader(camera: str, codec: Codec = Codec.H264, **kwargs: object) -> RtspReader:
        url = kwargs.pop("url", None) or sim.url(camera)
        reader = RtspReader(str(url), codec, **kwargs)  # type: ignore[arg-type]
        opened.append(reader)
        return reader.start()

    yield open_reader
    for name in sim.camera_names:
        sim.resume(name)
    for reader in opened:
        reader.close()


def _raw_rtsp(port: int, path: str, timeout_s: float) -> tuple[socket.socket, bytes | None]:
    """Send DESCRIBE for ``path``; return the socket and the reply head (None if none came)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    request = f"DESCRIBE rtsp://127.0.0.1:{port}/{path} RTSP/1.0\r\nCSeq: 1\r\n\r\n"
    sock.sendall(request.encode())
    try:
        return sock, sock.recv(4096)
    except TimeoutError:
        return sock, None


def _client_ports(server_port: int) -> set[int]:
    """Local ports of this process's established TCP connections to ``server_port``."""
    return {
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == server_port and c.status == psutil.CONN_ESTABLISHED
    }


# -- streaming -----------------------------------------------------------------------------------


def test_four_cameras_stream_moving_pictures_with_regular_keyframes(
    sim: SimulatorProcess, readers: Callable[..., RtspReader]
) -> None:
    codecs = {"cam1": Codec.H264, "cam2": Codec.H264, "cam3": Codec.H264, "cam4": Codec.H265}
    opened = {name: readers(name, codec, decode=True) for name, codec in codecs.items()}
    for name, reader in opened.items():
        # Three full GOPs after the first key frame.
        assert reader.wait_frames(3 * GOP_FRAMES + 1, 10.0), f"{name}: {reader.events}"
        assert reader.wait_pictures(10), name
    for name, reader in opened.items():
        frames = list(reader.frames)
        assert frames[0].keyframe, f"{name}: stream must start at a key frame"
        keys = [i for i, f in enumerate(frames) if f.keyframe]
        assert len(keys) >= 3, name
        assert {b - a for a, b in itertools.pairwise(keys)} == {GOP_FRAMES}, name
        assert len(set(reader.picture_hashes[:10])) > 1, f"{name}: picture does not move"
        assert not [e for e in reader.events if e.kind == Gst.MessageType.ERROR], name
    status = sim.status()
    assert all(s.state is FaultMode.RUNNING and s.clients == 1 for s in status.values())


def test_h265_camera_sends_h265(sim: SimulatorProcess, readers: Callable[..., RtspReader]) -> None:
    reader = readers("cam4", Codec.H265)
    assert reader.wait_frames(GOP_FRAMES + 1)
    assert reader.caps is not None and reader.caps.startswith("video/x-h265")
    assert reader.frames[0].keyframe
    assert sim.status()["cam4"].codec is Codec.H265


# -- per-camera faults ---------------------------------------------------------------------------


def test_stop_closes_that_camera_only_and_refuses_with_503(
    sim: SimulatorProcess, readers: Callable[..., RtspReader]
) -> None:
    cam1, cam2 = readers("cam1"), readers("cam2")
    assert cam1.wait_frames(1) and cam2.wait_frames(1)

    started = time.monotonic()
    assert sim.stop("cam1").state is FaultMode.STOPPED
    # rtspsrc over TCP: WARNING RESOURCE/READ "server closed the connection", then EOS.
    assert cam1.wait_event(_ended, 3.0) is not None, cam1.events
    assert time.monotonic() - started < 3.0
    assert cam1.wait_event(lambda e: e.kind == Gst.MessageType.EOS, 1.0) is not None
    assert cam2.wait_more_frames(GOP_FRAMES, 3.0), "other cameras must keep streaming"
    assert sim.status()["cam1"].clients == 0

    # A new connection is refused at RTSP level: 503, which rtspsrc posts as RESOURCE/READ.
    refused = readers("cam1")
    error = refused.wait_event(lambda e: e.kind == Gst.MessageType.ERROR)
    assert error is not None
    assert (error.domain, error.code) == (RESOURCE, Gst.ResourceError.READ), error
    assert "503" in error.debug, error
    sock, reply = _raw_rtsp(sim.port, "cam1", 3.0)
    sock.close()
    assert reply is not None and reply.startswith(b"RTSP/1.0 503 Service Unavailable"), reply

    assert sim.resume("cam1").state is FaultMode.RUNNING
    again = readers("cam1")
    assert again.wait_frames(GOP_FRAMES), again.events
    assert again.frames[0].keyframe


def test_freeze_keeps_connection_but_sends_nothing(
    sim: SimulatorProcess, readers: Callable[..., RtspReader]
) -> None:
    cam3 = readers("cam3")
    assert cam3.wait_frames(1)
    before = _client_ports(sim.port)
    cam2 = readers("cam2")
    assert cam2.wait_frames(1)
    (cam2_port,) = _client_ports(sim.port) - before

    sim.freeze("cam2")
    cam3_before = cam3.frame_count()
    assert cam2.wait_silence(2.0, within_s=1.0), "frozen camera must send no frames for 2 s"
    assert cam3.frame_count() - cam3_before >= 2 * 15 - 5, "other cameras must keep streaming"
    server_side = [
        c
        for c in psutil.Process(sim.pid).net_connections(kind="tcp")
        if c.laddr.port == sim.port and c.raddr and c.raddr.port == cam2_port
    ]
    assert [c.status for c in server_side] == [psutil.CONN_ESTABLISHED]
    assert not [e for e in cam2.events if _ended(e)], cam2.events
    assert sim.status()["cam2"].state is FaultMode.FROZEN

    # RTSP requests for the frozen camera go unanswered; other cameras still answer.
    frozen_sock, frozen_reply = _raw_rtsp(sim.port, "cam2", 1.0)
    other_sock, other_reply = _raw_rtsp(sim.port, "cam3", 3.0)
    other_sock.close()
    assert frozen_reply is None
    assert other_reply is not None and other_reply.startswith(b"RTSP/1.0 "), other_reply

    sim.resume("cam2")
    count = cam2.frame_count()
    assert cam2.wait_frames(count + GOP_FRAMES, 4.0), "frames must flow again after resume"
    assert cam2.frames[count].keyframe, "media must restart at a key frame"
    frozen_sock.settimeout(3.0)
    late_reply = frozen_sock.recv(4096)  # the held request is answered now
    frozen_sock.close()
    assert late_reply.startswith(b"RTSP/1.0 "), late_reply


def test_stop_while_frozen_closes_and_refuses(
    sim: SimulatorProcess, readers: Callable[..., RtspReader]
) -> None:
    cam3 = readers("cam3")
    assert cam3.wait_frames(1)
    sim.freeze("cam3")
    held_sock, held_reply = _raw_rtsp(sim.port, "cam3", 0.5)
    assert held_reply is None
    sim.stop("cam3")
    assert cam3.wait_event(_ended, 3.0) is not None, cam3.events
    held_sock.settimeout(3.0)
    assert held_sock.recv(4096).startswith(b"RTSP/1.0 503")
    held_sock.close()


# -- authentication ------------------------------------------------------------------------------


def test_auth_wrong_or_missing_password_is_not_authorized(
    sim: SimulatorProcess, readers: Callable[..., RtspReader]
) -> None:
    right = readers("cam1")
    wrong = readers("cam1", url=f"rtsp://{USER}:wrong@127.0.0.1:{sim.port}/cam1")
    missing = readers("cam1", url=sim.url("cam1", with_auth=False))
    not_authorized = _is_error(RESOURCE, Gst.ResourceError.NOT_AUTHORIZED)
    assert wrong.wait_event(not_authorized) is not None, wrong.events
    assert missing.wait_event(not_authorized) is not None, missing.events
    assert right.wait_frames(1), right.events
    assert not wrong.frames and not missing.frames
    assert PASSWORD not in sim.output()
    assert f"{USER}:***@" in sim.output()


# -- audio and transport restriction ------------------------------------------------------------

MEDIA = ("video", "audio")


@dataclass(frozen=True, slots=True)
class Packet:
    arrived_s: float
    rtp_time: int
    """The RTP timestamp, in units of the stream's clock rate."""


class StreamReader:
    """``rtspsrc`` with every stream it offers linked to its own appsink, ``video`` or ``audio``.

    Records the RTP packets of each stream as they leave rtpbin, the caps of each stream and the
    bus messages. The appsinks exist before the pipeline starts;
    ``pad-added`` only links, it changes no state.
    """

    def __init__(self, url: str, protocols: str = "tcp") -> None:
        self.pipeline = Gst.Pipeline.new("reader")
        src = Gst.ElementFactory.make("rtspsrc", "src")
        src.set_property("location", url)
        Gst.util_set_object_arg(src, "protocols", protocols)
        src.set_property("latency", 100)
        src.set_property("tcp-timeout", 3_000_000)
        src.connect("pad-added", self._pad_added_cb)
        self.pipeline.add(src)
        for media in MEDIA:
            sink = Gst.ElementFactory.make("appsink", media)
            for name, value in (("emit-signals", True), ("sync", False), ("async", False)):
                sink.set_property(name, value)
            sink.connect("new-sample", self._sample_cb, media)
            self.pipeline.add(sink)
        self._cond = threading.Condition()
        self.packets: dict[str, list[Packet]] = {media: [] for media in MEDIA}
        self.caps: dict[str, str] = {}
        self.clock_rates: dict[str, int] = {}
        self.events: list[BusEvent] = []
        self.pipeline.get_bus().set_sync_handler(self._bus_cb)

    def start(self) -> StreamReader:
        self.pipeline.set_state(Gst.State.PLAYING)
        return self

    def close(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)

    def _pad_added_cb(self, src: Gst.Element, pad: Gst.Pad) -> None:
        structure = pad.get_current_caps().get_structure(0)
        media = structure.get_string("media")
        with self._cond:
            self.caps[media] = structure.to_string()
            self.clock_rates[media] = structure.get_int("clock-rate")[1]
        sink = self.pipeline.get_by_name(media) if media in MEDIA else None
        if sink is not None and not sink.get_static_pad("sink").is_linked():
            pad.link(sink.get_static_pad("sink"))

    def _sample_cb(self, sink: GstApp.AppSink, media: str) -> Gst.FlowReturn:
        buffer = sink.pull_sample().get_buffer()
        ok, rtp = GstRtp.RTPBuffer.map(buffer, Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.OK
        packet = Packet(time.monotonic(), rtp.get_timestamp())
        rtp.unmap()
        with self._cond:
            self.packets[media].append(packet)
            self._cond.notify_all()
        return Gst.FlowReturn.OK

    def _bus_cb(self, bus: Gst.Bus, message: Gst.Message) -> Gst.BusSyncReply:
        event = _bus_event(message)
        if event is not None:
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        return Gst.BusSyncReply.DROP

    def count(self, media: str) -> int:
        with self._cond:
            return len(self.packets[media])

    def wait_packets(self, media: str, count: int, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
        """Wait until ``count`` packets of ``media`` in total have arrived."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.packets[media]) >= count, timeout_s)

    def wait_span(self, media: str, span_s: float, timeout_s: float) -> bool:
        """Wait until packets of ``media`` have arrived over at least ``span_s`` seconds."""

        def spanned() -> bool:
            packets = self.packets[media]
            return bool(packets) and packets[-1].arrived_s - packets[0].arrived_s >= span_s

        with self._cond:
            return self._cond.wait_for(spanned, timeout_s)

    def media_seconds_per_second(self, media: str) -> float:
        """Seconds of media (RTP time) received per second of arrival time."""
        with self._cond:
            first, last = self.packets[media][0], self.packets[media][-1]
            rate = self.clock_rates[media]
        rtp_ticks = (last.rtp_time - first.rtp_time) % 2**32
        return rtp_ticks / rate / (last.arrived_s - first.arrived_s)

    def wait_events(
        self, predicate: Callable[[BusEvent], bool], count: int, timeout_s: float
    ) -> list[BusEvent]:
        """Wait for ``count`` matching bus events; return those seen (fewer on timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: sum(map(predicate, self.events)) >= count, timeout_s)
            return [e for e in self.events if predicate(e)]

    def wait_silence(self, silence_s: float, within_s: float) -> bool:
        """Wait for a gap of ``silence_s`` without packets of any stream, starting within
        ``within_s``."""
        start = time.monotonic()
        deadline = start + within_s + silence_s
        with self._cond:
            while True:
                arrivals = [p[-1].arrived_s for p in self.packets.values() if p]
                quiet_since = max(arrivals, default=start)
                remaining = quiet_since + silence_s - time.monotonic()
                if remaining <= 0:
                    return True
                if time.monotonic() + remaining > deadline:
                    return False
                total = sum(map(len, self.packets.values()))
                self._cond.wait_for(
                    lambda n=total: sum(map(len, self.packets.values())) > n, remaining
                )


@pytest.fixture(scope="module")
def av_sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(
        cameras=6,
        camera_audio={
            "cam1": AudioCodec.PCMA,
            "cam2": AudioCodec.PCMU,
            "cam3": AudioCodec.AAC,
            "cam4": AudioCodec.OPUS,
        },
        camera_transports={"cam5": AllowedTransports.UDP, "cam6": AllowedTransports.TCP},
    ) as simulator:
        yield simulator
        for name in simulator.camera_names:
            simulator.resume(name)
        assert simulator.close() == 0, simulator.output()


@pytest.fixture
def stream_readers(av_sim: SimulatorProcess) -> Iterator[Callable[..., StreamReader]]:
    opened: list[StreamReader] = []

    def open_reader(camera: str, protocols: str = "tcp") -> StreamReader:
        reader = StreamReader(av_sim.url(camera), protocols)
        opened.append(reader)
        return reader.start()

    yield open_reader
    for name in av_sim.camera_names:
        av_sim.resume(name)
    for reader in opened:
        reader.close()


def _ffprobe_streams(url: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [
            "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-analyzeduration", "500000",
            "-show_entries", "stream=codec_type,codec_name,sample_rate,channels",
            "-of", "json", url,
        ],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    streams: list[dict[str, object]] = json.loads(result.stdout)["streams"]
    return streams


def _rtsp_setup(port: int, path: str, transport: str) -> bytes:
    """Send a bare SETUP asking for ``transport``; return the reply head."""
    with socket.create_connection(("127.0.0.1", port), timeout=3.0) as sock:
        request = (
            f"SETUP rtsp://127.0.0.1:{port}/{path} RTSP/1.0\r\nCSeq: 1\r\n"
            f"Transport: {transport}\r\n\r\n"
        )
        sock.sendall(request.encode())
        return sock.recv(4096)


@pytest.mark.parametrize(
    ("camera", "audio", "codec_name", "sample_rate", "channels"),
    [
        ("cam1", AudioCodec.PCMA, "pcm_alaw", "8000", 1),
        ("cam2", AudioCodec.PCMU, "pcm_mulaw", "8000", 1),
        ("cam3", AudioCodec.AAC, "aac", "16000", 1),
        # The tone is mono, but an Opus SDP always says opus/48000/2 (RFC 7587).
        ("cam4", AudioCodec.OPUS, "opus", "48000", 2),
    ],
)
def test_audio_camera_offers_video_and_audio_stream(
    av_sim: SimulatorProcess,
    camera: str,
    audio: AudioCodec,
    codec_name: str,
    sample_rate: str,
    channels: int,
) -> None:
    streams = _ffprobe_streams(av_sim.url(camera))
    assert [(s["codec_type"], s["codec_name"]) for s in streams] == [
        ("video", "h264"),
        ("audio", codec_name),
    ], streams
    assert (streams[1]["sample_rate"], streams[1]["channels"]) == (sample_rate, channels)
    assert av_sim.camera(camera).audio is audio
    assert av_sim.status()[camera].audio is audio


def test_camera_without_audio_offers_video_only(av_sim: SimulatorProcess) -> None:
    streams = _ffprobe_streams(av_sim.url("cam6"))
    assert [s["codec_type"] for s in streams] == ["video"]
    assert av_sim.status()["cam6"].audio is AudioCodec.NONE


@pytest.mark.parametrize(
    ("camera", "protocols", "encoding"),
    [("cam1", "udp", "PCMA"), ("cam3", "tcp", "MPEG4-GENERIC"), ("cam4", "tcp", "OPUS")],
)
def test_rtspsrc_receives_live_audio_and_video(
    stream_readers: Callable[..., StreamReader], camera: str, protocols: str, encoding: str
) -> None:
    reader = stream_readers(camera, protocols)
    for media in MEDIA:
        assert reader.wait_span(media, 2.0, 8.0), (media, reader.events)
    assert f"encoding-name=(string){encoding}" in reader.caps["audio"], reader.caps
    # They start together, and both are live: each second brings one second of media; no
    # stale audio from before the video's first key frame comes in a burst.
    first_audio, first_video = reader.packets["audio"][0], reader.packets["video"][0]
    assert abs(first_audio.arrived_s - first_video.arrived_s) < 0.5
    for media in MEDIA:
        assert 0.85 < reader.media_seconds_per_second(media) < 1.15, media
    assert not [e for e in reader.events if e.kind == Gst.MessageType.ERROR], reader.events


def test_frozen_camera_sends_no_audio_either(
    av_sim: SimulatorProcess, stream_readers: Callable[..., StreamReader]
) -> None:
    reader = stream_readers("cam2")
    assert reader.wait_packets("audio", 1) and reader.wait_packets("video", 1), reader.events
    av_sim.freeze("cam2")
    assert reader.wait_silence(1.5, within_s=1.0), "a frozen camera sends neither audio nor video"
    av_sim.resume("cam2")
    audio, video = reader.count("audio"), reader.count("video")
    assert reader.wait_packets("audio", audio + 10, 4.0), reader.events
    assert reader.wait_packets("video", video + 10, 4.0), reader.events


@pytest.mark.parametrize(
    ("camera", "refused", "accepted", "refused_transport"),
    [
        ("cam5", "tcp", "udp", "RTP/AVP/TCP;unicast;interleaved=0-1"),
        ("cam6", "udp", "tcp", "RTP/AVP;unicast;client_port=41000-41001"),
    ],
)
def test_transport_restriction_refuses_the_other_transport(
    av_sim: SimulatorProcess,
    stream_readers: Callable[..., StreamReader],
    camera: str,
    refused: str,
    accepted: str,
    refused_transport: str,
) -> None:
    assert av_sim.camera(camera).transports is AllowedTransports(accepted)
    assert av_sim.status()[camera].transports is AllowedTransports(accepted)
    reply = _rtsp_setup(av_sim.port, f"{camera}/stream=0", refused_transport)
    assert reply.startswith(b"RTSP/1.0 461 Unsupported transport"), reply

    # rtspsrc limited to the refused transport gives up with one ERROR (and no 461 in it).
    refused_reader = stream_readers(camera, refused)
    errors = refused_reader.wait_events(lambda e: e.kind == Gst.MessageType.ERROR, 1, 6.0)
    assert errors, refused_reader.events
    error = errors[0]
    assert (error.source, error.domain, error.code) == (
        "src",
        "gst-stream-error-quark",
        Gst.StreamError.CODEC_NOT_FOUND,
    ), error
    assert error.text.startswith("No supported stream was found."), error

    accepted_reader = stream_readers(camera, accepted)
    assert accepted_reader.wait_packets("video", 30), accepted_reader.events
    assert not accepted_reader.count("audio")
    assert not refused_reader.count("video")


# -- control endpoint and CLI --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "code"), [("/cameras/nope/stop", 404), ("/cameras/cam1/explode", 400)]
)
def test_control_rejects_unknown_camera_and_action(
    sim: SimulatorProcess, path: str, code: int
) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{sim.control_port}{path}", method="POST", data=b""
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == code


@pytest.mark.parametrize(
    "args",
    [
        ["--size", "foo"],
        ["--codec", "vp8"],
        ["--cameras", "2", "--camera-codec", "cam9=h265"],
        ["--audio", "mp3"],
        ["--cameras", "2", "--transports", "cam9=udp"],
    ],
)
def test_cli_rejects_bad_arguments_with_exit_2(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nvr_gstreamer.simulator", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result
    assert "error" in result.stderr and result.stdout == ""


# -- whole-process faults ------------------------------------------------------------------------


def test_kill_then_restart_on_same_port_and_sigstop() -> None:
    with SimulatorProcess(cameras=1) as simulator:
        port, control_port, pid = simulator.port, simulator.control_port, simulator.pid
        reader = RtspReader(simulator.url("cam1")).start()
        try:
            assert reader.wait_frames(1), reader.events
            simulator.kill()
            assert reader.wait_event(lambda e: e.kind == Gst.MessageType.EOS, 3.0) is not None
        finally:
            reader.close()

        simulator.restart()
        assert (simulator.port, simulator.control_port) == (port, control_port)
        assert simulator.pid != pid
        reader = RtspReader(simulator.url("cam1")).start()
        try:
            assert reader.wait_frames(1), reader.events
            simulator.sigstop()
            assert psutil.Process(simulator.pid).status() == psutil.STATUS_STOPPED
            assert reader.wait_silence(1.0, within_s=1.0)
            simulator.sigcont()
            assert reader.wait_more_frames(5, 3.0)
        finally:
            reader.close()
        assert simulator.close() == 0, simulator.output()
    assert not psutil.pid_exists(simulator.pid) or (
        psutil.Process(simulator.pid).status() == psutil.STATUS_ZOMBIE
    )


def test_simulator_dies_with_its_parent(tmp_path: object) -> None:
    # A parent that is SIGKILLed must not leave the simulator behind (PR_SET_PDEATHSIG).
    script = (
        "import sys\n"
        "from nvr_gstreamer.simulator.process import SimulatorProcess\n"
        "sim = SimulatorProcess(cameras=1).start()\n"
        "print(sim.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        parent.kill()
        parent.wait()
        child.wait(timeout=5)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert not psutil.pid_exists(child.pid) or child.status() == psutil.STATUS_ZOMBIE
