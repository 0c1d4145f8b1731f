"""The RTSP side of the simulator: one mount per camera, fed by shared encoders, with faults.

Design
------
* **Encode once.** One :class:`~nvr_gstreamer.simulator.encoder.SharedEncoder` per distinct
  picture (codec, size, fps, ...). Each camera mount is a *shared* media factory whose media is
  ``appsrc ! rtph26Xpay name=pay0``; on ``media-configure`` the appsrc subscribes to its encoder,
  on ``unprepared`` it unsubscribes. A camera without clients costs nothing.
* **Capture-time stamps.** The appsrc stamps a frame when it arrives; a pad probe then puts it
  back at the encoder's capture cadence (:class:`~.capture_clock.CaptureClock`), so the RTP
  timestamps of consecutive frames are one frame interval apart even when load delays one, as
  a real camera's are.
* **One thread per RTSP connection.** The server's thread pool is unbounded, so every client
  connection has its own thread and main context. That lets a frozen camera leave its requests
  unanswered (the request handler blocks in that connection's thread) without delaying any other
  camera.
* **stop**: the camera's state becomes ``stopped``, the connections that used it are closed with
  ``client_filter`` (REMOVE), and every later request for it (OPTIONS, DESCRIBE, SETUP, PLAY, ...)
  is answered ``503 Service Unavailable`` from the ``pre-*-request`` client signals, before
  authentication. OPTIONS is the exception: it is answered normally, because gst-rtsp-server
  1.22 crashes after a refused OPTIONS (``handle_options_request`` frees its stack-allocated
  response); clients send DESCRIBE next and get the 503 there. The listening port stays open
  for the other cameras.
* **freeze**: the state becomes ``frozen``: the encoder stops feeding the camera's media (no RTP),
  a pad probe drops the media's RTCP sender reports, and requests for the camera block in their
  connection's thread until resume or stop, so they go unanswered. TCP connections stay
  ESTABLISHED.
* **resume**: the state becomes ``running``; blocked requests are answered, media restarts at the
  next key frame.
* **Scene cameras** (:mod:`.scene`) have an encoder each, since their object and brightness are
  commanded per camera; every client of the camera still shares it. The scene commands change
  properties of that encoder's pipeline (:class:`~.encoder.SceneControl`), nothing else.

What ``rtspsrc protocols=tcp`` posts (GStreamer 1.22, as measured)
------------------------------------------------------------------
* stop, while streaming: WARNING RESOURCE/READ (9) "Could not read from resource." (debug: "The
  server closed the connection."), then EOS, about 10 ms after the stop request. No ERROR.
* connecting to a stopped camera (OPTIONS 200, DESCRIBE 503): one ERROR RESOURCE/READ (9)
  "Unhandled error", debug "Service Unavailable (503)". For comparison a wrong path gives ERROR
  RESOURCE/NOT_FOUND (3) "Not found", debug "Not Found (404)".
* freeze: nothing at all for ~27 s, then the element message ``GstRTSPSrcTimeout`` and EOS, the
  same as a SIGSTOPped server. The TCP connection stays ESTABLISHED meanwhile. An NVR needs its
  own stall watchdog.
* connecting to a frozen camera: TCP connects, OPTIONS is never answered; after ``tcp-timeout``
  (default 20 s) two ERROR RESOURCE/READ (9) "Could not read from resource.", debug "Could not
  receive message. (Timeout while waiting for server response)".
* wrong or missing password: ERROR RESOURCE/NOT_AUTHORIZED (15) "Unauthorized", debug
  "Unauthorized (401)".

Audio and transport restriction
-------------------------------
* A camera with audio has a second stream ``pay1`` in the same media: ``audiotestsrc
  is-live=true ! queue leaky ! encoder ! payloader``. It runs on the media pipeline's clock and
  running time, like the video appsrc, so RTCP sender reports put both on one timeline (their
  NTP/RTP pairs match the send time of both streams within ~1 ms). The audio is gated until the
  media's first video frame (see :class:`_AudioGate`); without that the first ~0.9 s of audio
  came stale, in a burst, and a client received 1.4 s of audio per second at first.
* The media is forced non-seekable (publish-clock-mode ``clock-and-offset``; with the system
  clock the SDP does not change): audiotestsrc claims to be seekable, and PLAY with
  ``Range: npt=0-`` (ffprobe, rtspsrc) then failed with 503 "seek failed".
* ``transports`` sets the factory's protocols. The server answers a SETUP asking for another
  lower transport with ``461 Unsupported transport``. rtspsrc with ``protocols=tcp`` against a
  ``udp`` camera, or ``protocols=udp`` against a ``tcp`` camera: one ERROR from the rtspsrc
  element, STREAM/CODEC_NOT_FOUND (6) "No supported stream was found. You might need to allow more
  transport protocols or may otherwise be missing the right GStreamer RTSP extension plugin.",
  debug "../gst/rtsp/gstrtspsrc.c(7894): gst_rtspsrc_setup_streams_start (): ...", within
  ~0.2 s; no WARNING, no EOS, and "461" appears nowhere in the message. rtspsrc with its default
  protocols (udp-mcast+udp+tcp) falls back and streams; so does ffprobe.

Longer than ~300 lines: its docstring records measured rtspsrc behaviour for every fault (a
third of the file); the server itself is one class.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

from nvr_gstreamer.simulator.capture_clock import CaptureClock  # noqa: E402
from nvr_gstreamer.simulator.encoder import (  # noqa: E402
    EncoderError,
    EncoderSpec,
    SceneControl,
    SharedEncoder,
    Subscription,
)
from nvr_gstreamer.simulator.model import (  # noqa: E402
    AllowedTransports,
    AudioCodec,
    CameraAction,
    CameraSpec,
    CameraStatus,
    Codec,
    FaultMode,
    SimulatorConfig,
)
from nvr_gstreamer.simulator.scene import NotASceneCameraError, SceneStatus  # noqa: E402

logger = logging.getLogger(__name__)

_OBJECT_COMMANDS: dict[CameraAction, Callable[[SceneControl], SceneStatus]] = {
    CameraAction.OBJECT_START: SceneControl.start_object,
    CameraAction.OBJECT_STOP: SceneControl.stop_object,
    CameraAction.OBJECT_REMOVE: SceneControl.remove_object,
}

_ROLE = "camera-user"
_PAYLOADERS = {Codec.H264: "rtph264pay", Codec.H265: "rtph265pay"}
_GATED_REQUESTS = (
    "pre-options-request",
    "pre-describe-request",
    "pre-setup-request",
    "pre-play-request",
    "pre-pause-request",
    "pre-teardown-request",
    "pre-get-parameter-request",
    "pre-set-parameter-request",
)
_SESSION_CLEANUP_INTERVAL_S = 2
_LOWER_TRANSPORTS = {
    AllowedTransports.UDP: GstRtsp.RTSPLowerTrans.UDP,
    AllowedTransports.TCP: GstRtsp.RTSPLowerTrans.TCP,
}
"""Factory protocols per restriction; ``any`` keeps gst-rtsp-server's default (UDP, mcast, TCP)."""
_AAC_ENCODERS = ("avenc_aac", "voaacenc")  # Debian: gstreamer1.0-libav, gstreamer1.0-plugins-bad
_AUDIO_SOURCE = "asrc"


def _audio_source(rate: int, samples_per_buffer: int) -> str:
    # A quiet live tone; a live source stamps buffers with the media pipeline's running time on
    # the same clock as the video appsrc (do-timestamp), so RTCP maps both to one timeline.
    # The leaky queue lets the source run on while the media holds its streams until PLAY:
    # without it audiotestsrc catches up afterwards and sends the missed audio in one burst.
    return (
        f"audiotestsrc name={_AUDIO_SOURCE} is-live=true wave=sine freq=440 volume=0.2 "
        f"samplesperbuffer={samples_per_buffer} ! audio/x-raw,rate={rate},channels=1 "
        "! queue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 "
        "! audioconvert"
    )


def audio_branch(audio: AudioCodec, aac_encoder: str = _AAC_ENCODERS[0]) -> str:
    """gst-launch description of a camera's audio stream ``pay1`` ('' without audio)."""
    if audio is AudioCodec.NONE:
        return ""
    if audio is AudioCodec.PCMA:  # 20 ms packets, static payload type 8
        return f"{_audio_source(8000, 160)} ! alawenc ! rtppcmapay name=pay1"
    if audio is AudioCodec.PCMU:  # static payload type 0
        return f"{_audio_source(8000, 160)} ! mulawenc ! rtppcmupay name=pay1"
    if audio is AudioCodec.AAC:  # one AAC frame (1024 samples) per buffer
        return (
            f"{_audio_source(16000, 1024)} ! {aac_encoder} bitrate=32000 "
            "! rtpmp4gpay name=pay1 pt=97"
        )
    return f"{_audio_source(48000, 960)} ! opusenc bitrate=32000 ! rtpopuspay name=pay1 pt=97"


def _missing_audio_elements(audio: AudioCodec) -> tuple[str, ...]:
    needed: dict[AudioCodec, tuple[str, ...]] = {
        AudioCodec.NONE: (),
        AudioCodec.PCMA: ("alawenc", "rtppcmapay"),
        AudioCodec.PCMU: ("mulawenc", "rtppcmupay"),
        AudioCodec.AAC: ("rtpmp4gpay",),
        AudioCodec.OPUS: ("opusenc", "rtpopuspay"),
    }
    elements = ("audiotestsrc", "audioconvert", *needed[audio]) if needed[audio] else ()
    return tuple(e for e in elements if Gst.ElementFactory.find(e) is None)


class SimulatorError(RuntimeError):
    """The simulator could not start (port in use, encoder failure, ...)."""


class UnknownCameraError(SimulatorError, KeyError):
    """No camera of that name."""


class _Camera:
    """State of one camera, shared by the control thread, connection threads and the encoder.

    ``flowing`` is read on the encoder's streaming thread for every frame, so it is a plain
    attribute read; every change happens under the condition's lock.
    """

    def __init__(self, spec: CameraSpec, encoder_spec: EncoderSpec) -> None:
        self.spec = spec
        self.encoder_spec = encoder_spec
        self._cond = threading.Condition()
        self._state = FaultMode.RUNNING
        self._closing = False
        self._clients: set[Any] = set()  # GstRtspServer.RTSPClient wrappers
        self.flowing = True
        # rtp-jump: added to every timestamp this camera's media sends (RTP timestamps follow);
        # the probes that add it exist only once a jump was asked for.
        self.time_offset_ns = 0
        self.sources: list[Any] = []  # (weak refs to) the source pads of its media
        self.shifted: set[int] = set()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> FaultMode:
        return self._state

    def status(self) -> CameraStatus:
        with self._cond:
            return CameraStatus(
                self.name,
                self._state,
                self.spec.codec,
                len(self._clients),
                audio=self.spec.audio,
                transports=self.spec.transports,
            )

    def set_state(self, state: FaultMode) -> tuple[FaultMode, set[Any]]:
        """Change state; return the previous state and, for STOPPED, the clients to close."""
        with self._cond:
            previous = self._state
            self._state = state
            self.flowing = state is FaultMode.RUNNING
            to_close: set[Any] = set()
            if state is FaultMode.STOPPED:
                to_close, self._clients = self._clients, set()
            self._cond.notify_all()
        return previous, to_close

    def admit(self, client: Any, *, may_refuse: bool = True) -> GstRtsp.RTSPStatusCode:
        """Decide a request of ``client`` (on its connection thread): block while frozen.

        A stopped camera refuses with 503, unless ``may_refuse`` is false (then it lets the
        request through without registering the client).
        """
        with self._cond:
            while self._state is FaultMode.FROZEN and not self._closing:
                self._cond.wait()
            if self._state is FaultMode.STOPPED or self._closing:
                if may_refuse:
                    return GstRtsp.RTSPStatusCode.SERVICE_UNAVAILABLE
                return GstRtsp.RTSPStatusCode.OK
            self._clients.add(client)
            return GstRtsp.RTSPStatusCode.OK

    def has_client(self, client: Any) -> bool:
        with self._cond:
            return client in self._clients

    def forget(self, client: Any) -> None:
        with self._cond:
            self._clients.discard(client)

    def release(self) -> set[Any]:
        """Shutting down: wake blocked requests (they get 503); return the clients."""
        with self._cond:
            self._closing = True
            self.flowing = False
            clients, self._clients = self._clients, set()
            self._cond.notify_all()
        return clients


class _AudioGate:
    """Whether one media's audio may flow; read on its audio source's streaming thread.

    Audio waits for the media's first video frame (a key frame, up to a GOP after the media
    started). gst-rtsp-server holds each stream's first packet until PLAY, and the video's comes
    only with that key frame: audio taken earlier would start the stream stale, up to a GOP before
    the video, followed by a jump in its timestamps. Stopped or frozen: no audio either (the
    encoder sees a gap, as after a dropout).
    """

    __slots__ = ("camera", "video_started")

    def __init__(self, camera: _Camera) -> None:
        self.camera = camera
        self.video_started = False


class Simulator:
    """Serves ``rtsp://ADDRESS:PORT/<camera>`` for every camera of a :class:`SimulatorConfig`.

    Call :meth:`start` from the thread that runs (or will run) the GLib main context given to it;
    the control methods (:meth:`apply`, :meth:`status`, ...) are thread-safe.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._cameras: dict[str, _Camera] = {}
        self._encoders: dict[EncoderSpec, SharedEncoder] = {}
        self._server: GstRtspServer.RTSPServer | None = None
        self._context: GLib.MainContext | None = None
        self._sources: list[GLib.Source] = []
        self._on_fatal: Callable[[str], None] | None = None
        self._fatal_reported = False
        self._aac_encoder = _AAC_ENCODERS[0]
        for spec in config.cameras:
            encoder_spec = EncoderSpec(
                codec=spec.codec,
                size=config.size,
                fps=config.fps,
                bitrate_kbps=config.bitrate_kbps,
                key_int_frames=config.key_int_frames,
                pattern=config.pattern,
                overlay=config.overlay,
                picture=spec.picture,
                camera=spec.name if spec.picture.is_scene else "",
            )
            self._cameras[spec.name] = _Camera(spec, encoder_spec)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(
        self,
        context: GLib.MainContext | None = None,
        on_fatal: Callable[[str], None] | None = None,
        ready_timeout_s: float = 10.0,
    ) -> None:
        """Start encoders, wait for their first frame, then listen. Raise SimulatorError.

        ``on_fatal`` is called on ``context`` if an encoder fails later.
        """
        self._context = context if context is not None else GLib.MainContext.default()
        self._on_fatal = on_fatal
        self._check_audio_elements()
        try:
            for camera in self._cameras.values():
                if camera.encoder_spec not in self._encoders:
                    encoder = SharedEncoder(camera.encoder_spec, on_error=self._encoder_error)
                    self._encoders[camera.encoder_spec] = encoder
                    encoder.start()
            for encoder in self._encoders.values():
                if not encoder.wait_ready(ready_timeout_s):
                    raise SimulatorError(
                        f"encoder {encoder.spec} produced no frame in {ready_timeout_s:g} s"
                    )
        except EncoderError as exc:
            self.close()
            raise SimulatorError(str(exc)) from exc
        except SimulatorError:
            self.close()
            raise
        self._server = self._build_server()
        if self._server.attach(self._context) == 0:
            self._server = None
            self.close()
            raise SimulatorError(
                f"cannot listen on {self.config.address}:{self.config.port} (in use?)"
            )
        cleanup = GLib.timeout_source_new_seconds(_SESSION_CLEANUP_INTERVAL_S)
        cleanup.set_callback(self._session_cleanup_cb)
        cleanup.attach(self._context)
        self._sources.append(cleanup)
        logger.info(
            "serving %d camera(s) on rtsp://%s:%d/ with %d encoder(s)",
            len(self._cameras),
            self.config.address,
            self.port,
            len(self._encoders),
        )

    def close(self) -> None:
        """Close every connection, stop listening and encoding. Idempotent."""
        clients: set[Any] = set()
        for camera in self._cameras.values():
            clients |= camera.release()
        for source in self._sources:
            source.destroy()
        self._sources.clear()
        if self._server is not None:
            self._server.client_filter(self._remove_all_cb)
            self._server = None
        for encoder in self._encoders.values():
            encoder.stop()
        self._encoders.clear()

    @property
    def port(self) -> int:
        """The bound RTSP port (resolves port 0)."""
        if self._server is None:
            return self.config.port
        return int(self._server.get_bound_port())

    # -- control ---------------------------------------------------------------------------------

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(self._cameras)

    def status(self) -> list[CameraStatus]:
        return [self._status(camera) for camera in self._cameras.values()]

    def camera_status(self, name: str) -> CameraStatus:
        return self._status(self._camera(name))

    def apply(self, name: str, action: CameraAction) -> CameraStatus:
        """Stop, freeze or resume camera ``name`` (idempotent), make its RTP timestamps jump,
        or start, stop or remove a scene camera's object (idempotent).

        Raise UnknownCameraError, NotASceneCameraError for an object action on a pattern
        camera, ValueError for BRIGHTNESS (see :meth:`set_brightness`)."""
        camera = self._camera(name)
        if action is CameraAction.RTP_JUMP:
            self._rtp_jump(camera)
            return self._status(camera)
        if action is CameraAction.BRIGHTNESS:
            raise ValueError("brightness needs a level: use set_brightness")
        object_command = _OBJECT_COMMANDS.get(action)
        if object_command is not None:
            scene_status = object_command(self._scene(camera))
            return dataclasses.replace(camera.status(), scene=scene_status)
        target = {
            CameraAction.STOP: FaultMode.STOPPED,
            CameraAction.FREEZE: FaultMode.FROZEN,
            CameraAction.RESUME: FaultMode.RUNNING,
        }[action]
        previous, to_close = camera.set_state(target)
        if previous is not target:
            logger.info("camera %s: %s -> %s", name, previous.value, target.value)
        if to_close and self._server is not None:
            logger.info("camera %s: closing %d connection(s)", name, len(to_close))
            self._server.client_filter(self._client_filter_cb(to_close))
        return self._status(camera)

    def set_brightness(self, name: str, level: float) -> CameraStatus:
        """Step scene camera ``name``'s brightness to ``level`` (-1..1) at once.

        Raise UnknownCameraError, NotASceneCameraError, ValueError for a level out of range."""
        camera = self._camera(name)
        scene_status = self._scene(camera).set_brightness(level)
        return dataclasses.replace(camera.status(), scene=scene_status)

    def _scene(self, camera: _Camera) -> SceneControl:
        encoder = self._encoders.get(camera.encoder_spec)
        scene = encoder.scene if encoder is not None else None
        if scene is None:
            if camera.spec.picture.is_scene:
                raise SimulatorError(f"camera {camera.name}: not serving")
            raise NotASceneCameraError(
                f"camera {camera.name} shows the test pattern, not a scene (see --scene)"
            )
        return scene

    def _status(self, camera: _Camera) -> CameraStatus:
        encoder = self._encoders.get(camera.encoder_spec)
        scene = encoder.scene if encoder is not None else None
        status = camera.status()
        return status if scene is None else dataclasses.replace(status, scene=scene.status())

    def _rtp_jump(self, camera: _Camera) -> None:
        """As if the camera's encoder restarted with a new RTP base, the connection kept."""
        jump = 0 if camera.time_offset_ns else random.randint(100, 3000) * Gst.SECOND
        camera.time_offset_ns = jump
        for ref in list(camera.sources):
            pad = ref()
            if pad is not None and id(pad) not in camera.shifted:
                camera.shifted.add(id(pad))
                pad.add_probe(Gst.PadProbeType.BUFFER, self._shift_probe_cb, camera)
        logger.info("camera %s: RTP timestamps shifted by %d s", camera.name, jump // Gst.SECOND)

    @staticmethod
    def _shift_probe_cb(
        pad: Gst.Pad, info: Gst.PadProbeInfo, camera: _Camera
    ) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        if buf is not None and buf.pts != Gst.CLOCK_TIME_NONE:
            buf.pts += camera.time_offset_ns
            if buf.dts != Gst.CLOCK_TIME_NONE:
                buf.dts += camera.time_offset_ns
        return Gst.PadProbeReturn.OK

    def _check_audio_elements(self) -> None:
        """Pick the AAC encoder; raise SimulatorError if an audio camera lacks an element."""
        audios = {camera.spec.audio for camera in self._cameras.values()}
        if AudioCodec.AAC in audios:
            found = [e for e in _AAC_ENCODERS if Gst.ElementFactory.find(e) is not None]
            if not found:
                names = ", ".join(_AAC_ENCODERS)
                raise SimulatorError(f"aac audio needs one of {names} (Debian: gstreamer1.0-libav)")
            self._aac_encoder = found[0]
        for audio in sorted(audios):
            missing = _missing_audio_elements(audio)
            if missing:
                raise SimulatorError(f"{audio.value} audio needs GStreamer element(s) {missing}")

    def _camera(self, name: str) -> _Camera:
        try:
            return self._cameras[name]
        except KeyError:
            raise UnknownCameraError(name) from None

    # -- server construction ---------------------------------------------------------------------

    def _build_server(self) -> GstRtspServer.RTSPServer:
        server = GstRtspServer.RTSPServer()
        server.set_address(self.config.address)
        server.set_service(str(self.config.port))
        # One thread (and main context) per connection, so a frozen camera can block its own
        # connections' request handling without touching anyone else's.
        server.get_thread_pool().set_max_threads(-1)
        permissions = None
        if self.config.auth is not None:
            auth = GstRtspServer.RTSPAuth()
            token = GstRtspServer.RTSPToken()
            token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, _ROLE)
            basic = GstRtspServer.RTSPAuth.make_basic(
                self.config.auth.user, self.config.auth.password
            )
            if self.config.auth_digest:
                # Digest only, as many cameras ship (PyGObject takes one method, not a mask).
                auth.add_digest(self.config.auth.user, self.config.auth.password, token)
                auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            else:
                auth.add_basic(basic, token)
            server.set_auth(auth)
            permissions = GstRtspServer.RTSPPermissions()
            for permission in (
                GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS,
                GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
            ):
                permissions.add_permission_for_role(_ROLE, permission, True)
        mounts = server.get_mount_points()
        for camera in self._cameras.values():
            factory = GstRtspServer.RTSPMediaFactory()
            audio = audio_branch(camera.spec.audio, self._aac_encoder)
            factory.set_launch(
                "( appsrc name=src is-live=true format=time do-timestamp=true "
                f"! {_PAYLOADERS[camera.spec.codec]} name=pay0 pt=96 {audio} )"
            )
            factory.set_shared(True)
            if camera.spec.audio is not AudioCodec.NONE:
                # audiotestsrc answers the SEEKING query with "seekable", which makes the media
                # seekable, and PLAY with "Range: npt=0-" (ffprobe, rtspsrc) then fails with 503
                # ("seek failed": the video appsrc cannot seek). With this mode gst-rtsp-server
                # treats the media as not seekable; with the system clock the SDP is unchanged.
                factory.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)
            protocols = _LOWER_TRANSPORTS.get(camera.spec.transports)
            if protocols is not None:
                # SETUP asking for another lower transport gets 461 Unsupported transport.
                factory.set_protocols(protocols)
            if permissions is not None:
                factory.set_permissions(permissions)
            factory.connect("media-configure", self._media_configure_cb, camera)
            mounts.add_factory(f"/{camera.name}", factory)
        server.connect("client-connected", self._client_connected_cb)
        return server

    # -- GLib / GStreamer callbacks --------------------------------------------------------------

    def _client_connected_cb(
        self, server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient
    ) -> None:
        for signal in _GATED_REQUESTS:
            client.connect(signal, self._pre_request_cb, signal != "pre-options-request")
        client.connect("closed", self._client_closed_cb)

    def _pre_request_cb(
        self,
        client: GstRtspServer.RTSPClient,
        ctx: GstRtspServer.RTSPContext,
        may_refuse: bool,
    ) -> GstRtsp.RTSPStatusCode:
        # Runs on the connection's own thread: blocking here delays only this connection.
        # OPTIONS is never refused: gst-rtsp-server 1.22 frees the (stack-allocated) response
        # after a failed pre-options-request and aborts (munmap_chunk(): invalid pointer).
        # A stopped camera therefore answers OPTIONS and refuses DESCRIBE and later requests.
        camera = self._camera_for_request(client, ctx)
        if camera is None:
            return GstRtsp.RTSPStatusCode.OK
        return camera.admit(client, may_refuse=may_refuse)

    def _camera_for_request(
        self, client: GstRtspServer.RTSPClient, ctx: GstRtspServer.RTSPContext
    ) -> _Camera | None:
        uri = ctx.uri
        path = uri.abspath if uri is not None else None
        if path:
            camera = self._cameras.get(path.strip("/").split("/", 1)[0])
            if camera is not None:
                return camera
        # "OPTIONS *" or a session-level request: the camera this connection already uses.
        return next((c for c in self._cameras.values() if c.has_client(client)), None)

    def _client_closed_cb(self, client: GstRtspServer.RTSPClient) -> None:
        for camera in self._cameras.values():
            camera.forget(client)

    def _media_configure_cb(
        self,
        factory: GstRtspServer.RTSPMediaFactory,
        media: GstRtspServer.RTSPMedia,
        camera: _Camera,
    ) -> None:
        encoder = self._encoders.get(camera.encoder_spec)
        if encoder is None:  # shutting down
            return
        element = media.get_element()
        appsrc = element.get_by_name("src")
        appsrc.set_property("caps", encoder.caps)
        subscription = encoder.subscribe(appsrc, camera, camera.name)
        appsrc.get_static_pad("src").add_probe(
            Gst.PadProbeType.BUFFER, self._capture_time_probe_cb, CaptureClock()
        )
        audio_source = element.get_by_name(_AUDIO_SOURCE)
        camera.sources = [r for r in camera.sources if r() is not None]
        for source in (appsrc, audio_source):
            if source is not None:
                camera.sources.append(weakref.ref(source.get_static_pad("src")))
        if audio_source is not None:
            gate = _AudioGate(camera)
            appsrc.get_static_pad("src").add_probe(
                Gst.PadProbeType.BUFFER, self._video_started_probe_cb, gate
            )
            audio_source.get_static_pad("src").add_probe(
                Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, self._audio_probe_cb, gate
            )
        media.connect("prepared", self._media_prepared_cb, camera)
        media.connect("unprepared", self._media_unprepared_cb, encoder, subscription)
        logger.debug(
            "camera %s: media configured (%d on encoder)", camera.name, encoder.subscriptions
        )

    def _media_prepared_cb(self, media: GstRtspServer.RTSPMedia, camera: _Camera) -> None:
        element = media.get_element()
        for pay_name in ("pay0", "pay1"):
            pay = element.get_by_name(pay_name)
            peer = _element_peer(pay.get_static_pad("src")) if pay is not None else None
            rtpbin = peer.get_parent_element() if peer is not None else None
            if peer is None or rtpbin is None:
                logger.debug("camera %s: no rtpbin found behind %s", camera.name, pay_name)
                continue
            # A frozen camera sends no RTCP either: drop sender reports while it does not flow.
            rtcp_name = peer.get_name().replace("send_rtp_sink", "send_rtcp_src")
            rtcp_pad = rtpbin.get_static_pad(rtcp_name)
            if rtcp_pad is None:
                logger.debug("camera %s: no pad %s, RTCP keeps flowing", camera.name, rtcp_name)
            else:
                rtcp_pad.add_probe(
                    Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST,
                    self._flow_probe_cb,
                    camera,
                )

    @staticmethod
    def _capture_time_probe_cb(
        pad: Gst.Pad, info: Gst.PadProbeInfo, clock: CaptureClock
    ) -> Gst.PadProbeReturn:
        buffer = info.get_buffer()
        # The appsrc made this buffer (Subscription.offer's copy) and passes it on alone.
        if buffer.pts != Gst.CLOCK_TIME_NONE and buffer.offset != Gst.BUFFER_OFFSET_NONE:
            buffer.pts = buffer.dts = clock.stamp(buffer.pts, buffer.offset)
        return Gst.PadProbeReturn.OK

    @staticmethod
    def _video_started_probe_cb(
        pad: Gst.Pad, info: Gst.PadProbeInfo, gate: _AudioGate
    ) -> Gst.PadProbeReturn:
        gate.video_started = True
        return Gst.PadProbeReturn.REMOVE

    @staticmethod
    def _audio_probe_cb(
        pad: Gst.Pad, info: Gst.PadProbeInfo, gate: _AudioGate
    ) -> Gst.PadProbeReturn:
        flows = gate.video_started and gate.camera.flowing
        return Gst.PadProbeReturn.OK if flows else Gst.PadProbeReturn.DROP

    @staticmethod
    def _flow_probe_cb(pad: Gst.Pad, info: Gst.PadProbeInfo, camera: _Camera) -> Gst.PadProbeReturn:
        return Gst.PadProbeReturn.OK if camera.flowing else Gst.PadProbeReturn.DROP

    def _media_unprepared_cb(
        self,
        media: GstRtspServer.RTSPMedia,
        encoder: SharedEncoder,
        subscription: Subscription,
    ) -> None:
        encoder.unsubscribe(subscription)
        logger.debug(
            "media unprepared (%d left on encoder %s)", encoder.subscriptions, encoder.spec
        )

    def _session_cleanup_cb(self, *_args: Any) -> bool:
        if self._server is not None:
            self._server.get_session_pool().cleanup()
        return GLib.SOURCE_CONTINUE

    @staticmethod
    def _remove_all_cb(
        server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient
    ) -> GstRtspServer.RTSPFilterResult:
        return GstRtspServer.RTSPFilterResult.REMOVE

    @staticmethod
    def _client_filter_cb(
        clients: set[Any],
    ) -> Callable[[GstRtspServer.RTSPServer, GstRtspServer.RTSPClient], Any]:
        def filter_cb(
            server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient
        ) -> GstRtspServer.RTSPFilterResult:
            if client in clients:
                return GstRtspServer.RTSPFilterResult.REMOVE
            return GstRtspServer.RTSPFilterResult.KEEP

        return filter_cb

    def _encoder_error(self, text: str) -> None:
        # On a streaming thread: hand over to the main context once.
        if self._fatal_reported or self._on_fatal is None or self._context is None:
            return
        self._fatal_reported = True
        on_fatal = self._on_fatal

        def report_cb(*_args: Any) -> bool:
            on_fatal(text)
            return GLib.SOURCE_REMOVE

        source = GLib.idle_source_new()
        source.set_callback(report_cb)
        source.attach(self._context)


def _element_peer(pad: Gst.Pad) -> Gst.Pad | None:
    """The pad of the next element downstream of ``pad``, looking through ghost pads."""
    peer = pad.get_peer()
    for _ in range(8):  # bins nest only a few levels deep
        if peer is None or peer.get_parent_element() is not None:
            return peer
        # The internal pad of a ghost pad: continue from the ghost pad itself.
        ghost = peer.get_internal() if isinstance(peer, Gst.ProxyPad) else None
        peer = ghost.get_peer() if ghost is not None else None
    return None


def iter_camera_urls(
    address: str, port: int, names: tuple[str, ...], user: str | None
) -> Iterator[str]:
    """Human-readable URLs, the password masked as ``***``."""
    credentials = f"{user}:***@" if user else ""
    for name in names:
        yield f"rtsp://{credentials}{address}:{port}/{name}"
