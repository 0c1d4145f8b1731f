"""Motion detection end to end: the simulator's scene cameras (a still picture, an object that
moves on command, sensor noise, a brightness step), the real service with its catalog, API
and MQTT bridge, and a real Mosquitto."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nvr_gstreamer.api.server import ApiServer
from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.media import LiveFrame
from nvr_gstreamer.config import MqttConfig, NvrConfig
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.simulator.scene import OVERLAY_MASKS, Picture, SceneGeometry
from nvr_gstreamer.testing.engine import EngineWatch, engine_config, wait_until
from nvr_gstreamer.testing.frame_stamp import age_ms, band_row, read_stamp
from nvr_gstreamer.testing.mosquitto import MosquittoBroker, MqttObserver

pytestmark = pytest.mark.integration

OFF_DELAY_S = 1.5
POST_RECORD_S = 1.0
LATE_S = 2.0  # an event begins this soon after the object moves, even under load
_OBJECT_LUMA = 210  # the white object is 235; the brightest 75 % bar about 180
# The simulator's clock and frame stamp change in every frame, as a real camera's overlay does:
# masked, as a user masks a camera's overlay.
OVERLAYS = [[list(p) for p in m] for m in OVERLAY_MASKS]


@dataclass
class Scene:
    app: NvrApp
    url: str
    http: httpx.Client
    sim: SimulatorProcess
    watch: EngineWatch
    broker: MosquittoBroker


def _config(sim: SimulatorProcess, root: Path, broker_port: int) -> NvrConfig:
    motion = {"enabled": True, "off_delay_seconds": OFF_DELAY_S, "masks": OVERLAYS}
    config = engine_config(
        {n: sim.url(n) for n in sim.camera_names},
        storage=root,
        storage_options={"segment_seconds": 2, "pre_record_seconds": 2},
        camera_options={
            "cam1": {"motion": motion},
            # Noise on the picture, and recording only around events.
            "cam2": {
                "motion": {**motion, "post_record_seconds": POST_RECORD_S},
                "record_mode": "events",
            },
            # Motion from the sub-stream (here the same picture over a second connection).
            "cam3": {"motion": motion, "live_url": sim.url("cam3"), "record": False},
        },
    )
    api = config.api.model_copy(update={"port": 0})
    mqtt = MqttConfig(host="127.0.0.1", port=broker_port)
    return config.model_copy(update={"api": api, "mqtt": mqtt})


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    pictures = {"cam1": Picture.SCENE, "cam2": Picture.NOISY_SCENE, "cam3": Picture.SCENE}
    root = tmp_path_factory.mktemp("motion") / "rec"
    with (
        MosquittoBroker() as broker,
        SimulatorProcess(cameras=3, camera_pictures=pictures, gop_seconds=1.0) as sim,
    ):
        app = NvrApp(_config(sim, root, broker.port))
        api = ApiServer(app)
        watch = EngineWatch(app.engine)
        app.start()
        api.start()
        try:
            with httpx.Client(base_url=api.url, timeout=20) as http:
                s = Scene(app, api.url, http, sim, watch, broker)
                for cam in ("cam1", "cam2", "cam3"):
                    _looked_at(s, cam, 10)  # the detector has its average picture
                yield s
        finally:
            api.stop()
            app.stop()


def _looked_at(s: Scene, camera: str, frames: int) -> None:
    """Wait until the detector has seen ``frames`` more frames of the camera."""
    watch = s.app.engine.runtimes[camera].motion
    assert watch is not None
    first = watch.frames
    wait_until(lambda: watch.frames >= first + frames, 20, f"{frames} frames of {camera}")


def _events(s: Scene, camera: str) -> list[dict[str, object]]:
    now = time.time()
    r = s.http.get("/api/events", params={"camera": camera, "start": now - 3600, "end": now + 60})
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


def test_a_moving_object_is_an_event_within_a_second_with_its_thumbnail(scene: Scene) -> None:
    s = scene
    before = len(_events(s, "cam1"))
    moved = time.monotonic()
    s.sim.object_start("cam1")
    heard, started = s.watch.wait_motion("cam1", True, 5, after=moved)
    print(f"event began {heard - moved:.2f} s after the object started moving")
    # How soon is measured by bench_motion.py (p50 0.20 s idle); here, under the whole suite's
    # load on two cores, the test asserts the behaviour: the event begins within seconds.
    assert heard - moved <= LATE_S
    assert s.http.get("/api/cameras/cam1").json()["motion"] is True
    s.sim.object_stop("cam1")
    stopped = time.monotonic()
    heard, ended = s.watch.wait_motion("cam1", False, OFF_DELAY_S + 5, after=stopped)
    assert ended.event_id == started.event_id
    assert OFF_DELAY_S - 0.5 <= heard - stopped <= OFF_DELAY_S + 2.0
    assert s.http.get("/api/cameras/cam1").json()["motion"] is False
    # The catalog has it, with where it moved and the peak frame.
    wait_until(lambda: len(_events(s, "cam1")) > before, 5, "the event in the catalog")
    event = _events(s, "cam1")[-1]
    assert event["id"] == started.event_id and event["end_reason"] == "motion_stopped"
    assert 0 < float(event["score"]) < 0.5  # type: ignore[arg-type]
    assert event["boxes"] and event["thumbnail"] == f"/api/events/{event['id']}/thumbnail"
    jpeg = s.http.get(str(event["thumbnail"]))
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
    assert jpeg.content[:2] == b"\xff\xd8" and len(jpeg.content) > 1000


def test_the_recordings_page_marks_events_and_shows_their_picture(
    scene: Scene, browser: Any
) -> None:
    s = scene
    events = [e for e in _events(s, "cam1") if e["end"] is not None]
    if not events:  # on its own, this test makes its event
        moved = time.monotonic()
        s.sim.object_start("cam1")
        s.watch.wait_motion("cam1", True, 5, after=moved)
        s.sim.object_stop("cam1")
        s.watch.wait_motion("cam1", False, OFF_DELAY_S + 5, after=moved)
        wait_until(lambda: bool(_events(s, "cam1")), 5, "the event in the catalog")
        events = _events(s, "cam1")
    event = events[-1]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{s.url}/recordings")
    marker = f".row[data-camera=cam1] .event[data-id='{event['id']}']"
    page.wait_for_selector(marker, state="attached")
    # Zoomed in around the event, the marker sits where the event is on the axis.
    start = float(event["start_utc"])  # type: ignore[arg-type]
    page.evaluate(
        "([a, b]) => { const p = window.nvrRecordings; p.window = {start: a, end: b}; p.draw(); }",
        [start - 30, start + 30],
    )
    box = page.locator(marker).bounding_box()
    track = page.locator(".row[data-camera=cam1] .track").bounding_box()
    assert abs((box["x"] - track["x"]) / track["width"] - 0.5) < 0.01
    assert "motion" in (page.locator(marker).get_attribute("title") or "")
    # Hovering shows the event's peak frame, a real JPEG the page has decoded.
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "(id) => { const img = document.querySelector('#preview img');"
        " return img.dataset.event === id && img.complete && img.naturalWidth > 0; }",
        arg=str(event["id"]),
    )
    assert page.locator("#preview").is_visible()
    page.close()


class _SeenFrames:
    """What a motion view delivers (its streaming thread): each frame's age by the simulator's
    frame stamp, and whether the scene's white object is in it (luma above any bar's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames: list[tuple[float, int | None, bool]] = []  # (arrived, age ms, object)
        self.where: list[int] = []  # the object's left edge in each frame, -1 if not in it

    def frame(self, frame: LiveFrame) -> None:
        w, h = frame.width, frame.height
        stride = (w + 3) & ~3
        luma = frame.data[: stride * h]
        row = band_row(h)
        stamp = read_stamp(luma[row * stride : row * stride + w], w)
        now = time.time()
        age = None if stamp is None else age_ms(stamp, now * 1000)
        geometry = SceneGeometry.for_size(w, h)
        middle = (geometry.top + geometry.box // 2) * stride
        line = luma[middle : middle + w]
        peak = max(line)
        white = peak > _OBJECT_LUMA
        with self._lock:
            self.frames.append((time.monotonic(), age, white))
            self.where.append(line.index(peak) if white else -1)

    def first_object_made(self) -> float | None:
        """When the camera made the first frame with the object (monotonic, by its stamp)."""
        with self._lock:
            for arrived, age, white in self.frames:
                if white:
                    return arrived - (age or 0) / 1000
        return None

    def summary(self, since: float = -1.0) -> str:
        with self._lock:
            kept = [(f, x) for f, x in zip(self.frames, self.where, strict=True) if f[0] > since]
        frames = [f for f, _ in kept]
        places = " ".join(f"{f[0] - since:+.2f}:{x}" for f, x in kept[:30])
        ages = sorted(a for _, a, _ in frames if a is not None)
        with_object = sum(1 for _, _, white in frames if white)
        span = f"{frames[-1][0] - frames[0][0]:.1f} s" if frames else "-"
        if not ages:
            return (
                f"{len(frames)} in {span}, no stamp read, {with_object} with the object "
                f"(arrival:left edge, -1 absent: {places})"
            )
        return (
            f"{len(frames)} in {span}, age {ages[0]}..{ages[len(ages) // 2]}..{ages[-1]} ms "
            f"(min..median..max), {with_object} with the object (arrival:left edge, -1 "
            f"absent: {places})"
        )


def test_motion_is_looked_for_on_the_sub_stream(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # a failure shows the camera's log lines with it
    s = scene
    view = s.app.engine.runtimes["cam3"].motion_view
    detector = s.app.engine.runtimes["cam3"].motion
    assert view is not None and view.source == "live_url" and detector is not None
    seen = _SeenFrames()
    token = s.app.engine.loop.call_sync(lambda: view.add_viewer(seen.frame))
    _looked_at(s, "cam3", 2)  # the view flows now, whatever the tests before did
    frames = detector.frames
    moved = time.monotonic()
    scene_status = s.sim.object_start("cam3")
    answered = time.monotonic() - moved
    try:
        # Measured from the first frame the camera made with the object: the NVR cannot see
        # what the camera has not shown (the simulator, when a controller moved the object,
        # once showed it only seconds after the command).
        heard, started = s.watch.wait_motion("cam3", True, 10, after=moved)
        wait_until(lambda: seen.first_object_made() is not None, 2, "the object in a frame")
    except AssertionError as e:  # rare in a full run: say what the detector was shown
        status = s.app.engine.status("cam3")
        raise AssertionError(
            f"{e}: {detector.frames - frames} frames looked at since the object moved "
            f"(an event {'in progress' if detector.active else 'not begun'} there), "
            f"motion from {view.source}, camera {status.state.value}; "
            f"loops last turned {s.app.heartbeats.ages()} s ago; simulator: {scene_status} "
            f"(answered after {answered:.2f} s); frames delivered since: {seen.summary(moved)}; "
            f"events of cam3 in the catalog ({time.time():.2f} now): {_events(s, 'cam3')}"
        ) from None
    finally:
        s.app.engine.loop.call_sync(lambda: view.remove_viewer(token))
    made = seen.first_object_made()
    assert made is not None
    print(
        f"event began {heard - made:.2f} s after the camera made the first frame with the "
        f"object ({made - moved:.2f} s after the command, answered after {answered:.2f} s); "
        f"{seen.summary(moved)}"
    )
    assert heard - made <= LATE_S
    s.sim.object_remove("cam3")
    _heard, ended = s.watch.wait_motion("cam3", False, OFF_DELAY_S + 5, after=moved)
    assert ended.event_id == started.event_id and ended.thumbnail is not None
    # Recording is off on this camera: the event is kept all the same.
    assert s.app.engine.status("cam3").recording is False
    wait_until(lambda: bool(_events(s, "cam3")), 5, "the event in the catalog")


def test_noise_and_brightness_steps_make_no_event(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    s = scene
    detector = s.app.engine.runtimes["cam2"].motion
    assert detector is not None
    relearnt_before = detector.recalibrations
    start = time.monotonic()
    for level in (-0.4, 0.0, 0.35, 0.0):
        s.sim.brightness("cam2", level)
        _looked_at(s, "cam2", 10)  # 2 s at 5 fps: an event begins with its first motion frame
    ours = [e for at, e in s.watch.motion_events if e.camera_id == "cam2" and at > start]
    assert ours == []
    # The steps were learnt anew, and the log says so once a minute at most, not once a step
    # (a line in the minute before the test may stand for these).
    assert detector.recalibrations > relearnt_before
    relearnt = [
        r
        for r in caplog.records
        if getattr(r, "camera", None) == "cam2" and "the whole picture changed" in r.getMessage()
    ]
    assert len(relearnt) <= 1, caplog.messages


def test_events_mode_records_only_around_motion_and_says_no_motion_between(
    scene: Scene,
) -> None:
    s = scene
    status = s.http.get("/api/cameras/cam2").json()
    assert status["recording_wanted"] is True and status["recording"] is False
    moved = time.monotonic()
    s.sim.object_start("cam2")
    _heard, started = s.watch.wait_motion("cam2", True, 5, after=moved)
    s.watch.wait_recording("cam2", True, 5, after=moved)
    _looked_at(s, "cam2", 10)
    s.sim.object_remove("cam2")
    removed = time.monotonic()
    _heard, ended = s.watch.wait_motion("cam2", False, OFF_DELAY_S + 5, after=removed)
    s.watch.wait_recording("cam2", False, POST_RECORD_S + 10, after=removed)
    assert ended.end_utc is not None
    # The footage covers the event, from the pre-record seconds before it.
    rows = s.http.get("/api/recordings", params={"camera": "cam2"}).json()
    assert rows, "nothing recorded around the event"
    first = min(r["start_utc"] if "start_utc" in r else _t(r["start"]) for r in rows)
    assert first <= started.start_utc - 1.0

    def no_motion_after() -> bool:
        now = time.time()
        timeline = s.http.get(
            "/api/timeline/range", params={"camera": "cam2", "start": now - 600, "end": now}
        ).json()["cameras"][0]
        reasons = {g["reason"] for g in timeline["gaps"]}
        assert "camera_down" not in reasons, timeline
        after = [g for g in timeline["gaps"] if g["start_utc"] >= ended.end_utc]
        return "no_motion" in reasons and bool(after) and after[-1]["reason"] == "no_motion"

    # Footage ends with the last frame written; from there on the timeline says why.
    wait_until(no_motion_after, 5, "a no-motion gap after the event")


def _t(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_mqtt_tells_home_assistant_and_takes_recording_commands(scene: Scene) -> None:
    s = scene
    with MqttObserver(s.broker.port, "nvr/#", "homeassistant/#") as mqtt:
        got = mqtt.wait_for_all(
            ["nvr/available", "nvr/cam1/state", "nvr/cam1/recording",
             "homeassistant/binary_sensor/nvr/cam1_motion/config"]
        )  # fmt: skip
        assert got["nvr/available"].payload == b"online"
        assert got["nvr/cam1/state"].payload == b"streaming"
        assert got["nvr/cam1/recording"].payload == b"ON"
        discovery = json.loads(got["homeassistant/binary_sensor/nvr/cam1_motion/config"].payload)
        assert discovery["state_topic"] == "nvr/cam1/motion"
        s.sim.object_start("cam1")
        mqtt.wait_for("nvr/cam1/motion", b"ON", 5)
        start = json.loads(mqtt.wait_for("nvr/cam1/event", None, 5).payload)
        assert start["type"] == "start" and start["camera"] == "cam1"
        s.sim.object_stop("cam1")
        # The end with the peak frame, then the motion sensor off.
        thumb = mqtt.wait_for("nvr/cam1/thumbnail", None, OFF_DELAY_S + 5)
        assert thumb.payload[:2] == b"\xff\xd8" and thumb.retain is False
        mqtt.wait_for("nvr/cam1/motion", b"OFF", 5)
        # Recording off and on again from Home Assistant's switch.
        mqtt.publish("nvr/cam1/recording/set", "OFF")
        mqtt.wait_for("nvr/cam1/recording", b"OFF", 10)
        assert s.http.get("/api/cameras/cam1").json()["recording_wanted"] is False
        mqtt.publish("nvr/cam1/recording/set", "ON")
        mqtt.wait_for("nvr/cam1/recording", b"ON", 10)


def test_a_broker_outage_never_touches_recording(scene: Scene) -> None:
    s = scene
    bridge = s.app.mqtt.bridge if s.app.mqtt is not None else None
    assert bridge is not None
    wait_until(lambda: bridge.connected, 10, "the bridge connected")
    frames = s.app.engine.status("cam1").frames
    s.broker.kill()
    wait_until(lambda: not bridge.connected, 10, "the bridge noticed")
    # Recording goes on while the broker is away, and events still reach the catalog.
    wait_until(lambda: s.app.engine.status("cam1").frames > frames + 50, 10, "frames")
    assert s.app.engine.status("cam1").recording
    s.broker.restart()
    with MqttObserver(s.broker.port, "nvr/available", "nvr/cam1/recording") as mqtt:
        mqtt.wait_for("nvr/available", b"online", 40)
        mqtt.wait_for("nvr/cam1/recording", b"ON", 5)
    assert bridge.connected
