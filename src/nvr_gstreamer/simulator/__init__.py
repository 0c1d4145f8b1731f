"""Camera simulator: many live RTSP cameras from one process, with per-camera faults.

Camera simulator
================

``nvr simulate`` (or ``python -m nvr_gstreamer.simulator``) serves ``rtsp://127.0.0.1:8554/cam1``
… ``camN``: live H.264 or H.265 video of a moving test picture (a clock is drawn if the pango
plugin from Debian's ``gstreamer1.0-x`` is installed), with key frames every ``--gop-seconds``.
It is cheap: the picture is encoded once per format and the encoded frames are shared by every
camera, so 16 cameras at 640x360 15 fps take less than a tenth of a core (see
``bench/bench_simulator.py``).

Options::

    --cameras N            number of cameras cam1..camN (default 4)
    --port P               RTSP port (default 8554; 0 = any free port)
    --control-port P       HTTP control port on 127.0.0.1 (default: port + 1; any free if --port 0)
    --address ADDR         RTSP listen address (default 127.0.0.1)
    --auth USER:PASS       require basic authentication on every camera
    --fps F                frames per second (default 15)
    --size WxH             frame size (default 640x360)
    --codec h264|h265      codec of every camera (default h264)
    --camera-codec NAME=C  codec of one camera, e.g. cam2=h265 (repeatable)
    --audio [NAME=]A       audio none (default), aac, pcma, pcmu or opus: a bare value for every
                           camera, NAME=A for one (repeatable; --camera-audio NAME=A is the same)
    --transports [NAME=]T  RTP transports accepted: any (default), udp or tcp; a bare value for
                           every camera, NAME=T for one (repeatable; also --camera-transports)
    --bitrate KBPS         encoder target bitrate (default 1000)
    --gop-seconds S        seconds between key frames (default 1)
    --pattern NAME         test picture: ball (default), smpte, snow, ...
    --scene [NAME]         a still scene for motion detection instead of the moving pattern:
                           bare for every camera, NAME for one (repeatable)
    --noise [NAME]         the scene with mild sensor noise (implies --scene; repeatable)
    --no-overlay           no clock overlay

When it serves, it prints exactly one machine-readable line to stdout, then human-readable URLs
(the password is never printed)::

    SIMULATOR READY {"port":8554,"control_port":8555,"pid":1234,"address":"127.0.0.1",
                     "auth_user":"admin","cameras":[{"name":"cam1","codec":"h264",
                     "audio":"none","transports":"any","url":"rtsp://127.0.0.1:8554/cam1"}, ...]}
      rtsp://admin:***@127.0.0.1:8554/cam1  (h264)
      rtsp://admin:***@127.0.0.1:8554/cam2  (h264 + pcma, udp only)

Audio (per camera): a quiet 440 Hz live tone in the same RTSP media as the video, as a second
stream ``stream=1``: ``aac`` (AAC-LC 16 kHz mono, RTP mpeg4-generic), ``pcma``/``pcmu`` (G.711,
8 kHz mono, 20 ms packets, payload types 8/0), ``opus`` (48 kHz mono; the SDP says ``/2`` as RFC
7587 requires). Audio is encoded per camera, not shared. It runs on the media's clock (audio
stamped at capture, video when the shared encoder delivers the frame, a few ms after capture)
and starts with the video's first key frame, so a client gets both from the same moment. Stopped
and frozen cameras send no audio either.

Transports (per camera): ``udp`` answers SETUP asking for RTP over TCP (interleaved) with
``461 Unsupported transport``, ``tcp`` does the same for UDP. rtspsrc with only the refused
protocol posts one ERROR STREAM/CODEC_NOT_FOUND (6) "No supported stream was found. ..." (see
:mod:`.server`); with its default protocols it falls back to the accepted one by itself.

It runs until SIGINT/SIGTERM (exit 0). Bad arguments exit with 2, a failure to serve (port in
use, encoder missing) with 1.

Control endpoint (HTTP on 127.0.0.1, JSON)::

    GET  /cameras                      {"cameras": [{"name": "cam1", "state": "running",
                                                     "codec": "h264", "audio": "none",
                                                     "transports": "any", "clients": 1}, ...]}
    GET  /cameras/cam1                 {"name": "cam1", "state": "running", ...}
    POST /cameras/cam1/stop            the camera's new status
    POST /cameras/cam1/freeze
    POST /cameras/cam1/resume
    POST /cameras/cam1/rtp-jump
    POST /cameras/cam1/object-start    scene cameras: the object moves across, bouncing
    POST /cameras/cam1/object-stop     ... stops where it is and stays
    POST /cameras/cam1/object-remove   ... disappears
    POST /cameras/cam1/brightness?level=-0.5   the whole picture, at once (-1..1, 0 as drawn)

    curl -X POST http://127.0.0.1:8555/cameras/cam2/freeze

Unknown camera: 404; unknown action or a bad level: 400; a scene command for a pattern camera:
409. ``clients`` counts open RTSP connections using it. ``scene`` is null for a pattern camera,
else ``{"object": "absent"|"moving"|"still", "brightness": 0.0, "noise": false,
"object_box": [x, y, w, h] or null}``.

Scene cameras (``--scene``, ``--noise``; :mod:`.scene`), for motion detection: a still picture
(75 % colour bars) that decodes to identical frames, every feature of a pattern camera kept
(codec, audio, transports, the frame stamp, the clock). ``--noise`` adds noise in blobs of a few
pixels: consecutive frames then differ by ~2.5 grey levels on average, a few dozen at most (640x360,
1 Mbit/s, H.264 or H.265). The object is a white square a tenth of the height tall, at 40 % of
the height; started, it moves a quarter of the width per second, bouncing off the sides, driven
by the encoder's running time (exact per frame). A detector should mask the clock (top left) and
the frame stamp (the bottom twelfth), which change every second and every frame. Each scene
camera is encoded on its own (its commands are its own). At 640x360 25 fps (measured, one
camera, no client) a scene took ~5 % of a core, ~10 % with noise, where the shared ball encoder
took ~8 %.

Camera states, each independent of the other cameras:

``stop``
    The camera's connections are closed (rtspsrc: WARNING "server closed the connection", EOS)
    and new requests for it are refused with ``503 Service Unavailable`` (rtspsrc: ERROR
    RESOURCE/READ), not 404, so a client sees a transient network fault rather than a
    misconfigured path. (OPTIONS is still answered; DESCRIBE gets the 503.) The port stays open
    for the other cameras.
``freeze``
    A hung camera: TCP connections stay ESTABLISHED, but no RTP or RTCP flows and its RTSP
    requests are not answered (new connections included). rtspsrc notices only after ~27 s.
``resume``
    Back to normal from stop or freeze; held requests are answered and the video restarts at
    the next key frame.

Whole-process faults: SIGKILL the simulator (every connection closes), SIGSTOP/SIGCONT it
(everything goes silent), start it again on the same ports (the camera came back).

:class:`nvr_gstreamer.simulator.process.SimulatorProcess` runs it as a child process (on free
ports unless told otherwise), with ``url()``, ``stop()/freeze()/resume()``, ``rtp_jump()``,
``object_start()/object_stop()/object_remove()``, ``brightness()``, ``status()``, ``kill()``,
``sigstop()``, ``sigcont()``, ``restart()`` and ``close()``.

Modules: :mod:`.model` and :mod:`.scene` (plain values, no GStreamer), :mod:`.encoder` (encoders),
:mod:`.server` (RTSP mounts and faults), :mod:`.control` (HTTP endpoint), :mod:`.cli`,
:mod:`.process` (the simulator as a child process, for the demos, tests and benchmarks).
"""
