"""The simulator's scene cameras as plain values: the object's path, options, JSON, the control
endpoint's scene commands (with a fake simulator behind it). No GStreamer."""

from __future__ import annotations

import argparse
import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr_gstreamer.simulator.cli import add_arguments, config_from_args
from nvr_gstreamer.simulator.control import ControlServer
from nvr_gstreamer.simulator.model import (
    CameraAction,
    CameraSpec,
    CameraStatus,
    Codec,
    FaultMode,
    ReadyInfo,
    SimulatorConfig,
)
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.simulator.scene import (
    NotASceneCameraError,
    ObjectMotion,
    ObjectState,
    Picture,
    SceneGeometry,
    SceneStatus,
    check_brightness,
    scene_layers,
    scene_mixer,
)

S = 1_000_000_000
GEOMETRY = SceneGeometry.for_size(640, 360)
P = Picture


def _config(*argv: str) -> SimulatorConfig:
    parser = argparse.ArgumentParser(prog="simulate", exit_on_error=False)
    add_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


def _pictures(config: SimulatorConfig) -> dict[str, Picture]:
    return {c.name: c.picture for c in config.cameras}


# -- geometry and the object's path ---------------------------------------------------------------


def test_geometry_of_640x360() -> None:
    g = GEOMETRY
    assert (g.box, g.top, g.speed_px_s, g.x_max) == (36, 144, 160.0, 604)


def test_geometry_of_a_tiny_picture_keeps_room_to_move() -> None:
    g = SceneGeometry.for_size(16, 360)
    assert g.box == 4 and g.x_max == 12 and g.top + g.box <= 360


def test_object_is_absent_until_started_then_moves_right_at_a_quarter_width_per_second() -> None:
    motion = ObjectMotion(GEOMETRY)
    assert motion.state is ObjectState.ABSENT and motion.box_at(5 * S) is None
    moving = motion.started(10 * S)
    assert moving.state is ObjectState.MOVING
    assert moving.x_at(10 * S) == 0.0
    assert moving.x_at(11 * S) == pytest.approx(160.0)
    assert moving.box_at(12 * S) == (320, 144, 36, 36)
    assert moving.started(12 * S) is moving, "starting a moving object changes nothing"


def test_object_bounces_at_both_edges() -> None:
    moving = ObjectMotion(GEOMETRY).started(0)
    to_right_edge = 604 / 160  # s
    assert moving.x_at(round(to_right_edge * S)) == pytest.approx(604.0)
    assert moving.x_at(round((to_right_edge + 1) * S)) == pytest.approx(444.0)
    assert moving.direction_at(round((to_right_edge + 1) * S)) == -1
    assert moving.x_at(round((2 * to_right_edge + 0.5) * S)) == pytest.approx(80.0)
    assert moving.direction_at(round((2 * to_right_edge + 0.5) * S)) == 1


def test_stopped_object_stays_where_it_was_and_moves_on_in_the_same_direction() -> None:
    moving = ObjectMotion(GEOMETRY).started(0)
    stopped = moving.stopped(5 * S)  # 800 px of travel: 604 right, then 196 back
    assert stopped.state is ObjectState.STILL
    assert stopped.x_at(5 * S) == stopped.x_at(60 * S) == pytest.approx(408.0)
    assert stopped.stopped(9 * S) is stopped
    again = stopped.started(20 * S)
    assert again.x_at(21 * S) == pytest.approx(248.0), "continues leftwards from 408"


def test_removed_object_disappears_and_comes_back_where_it_was() -> None:
    removed = ObjectMotion(GEOMETRY).started(0).removed(S)
    assert removed.state is ObjectState.ABSENT and removed.box_at(2 * S) is None
    assert removed.removed(3 * S) is removed
    assert removed.stopped(3 * S) is removed, "stopping an absent object does not show it"
    assert removed.started(4 * S).box_at(4 * S) == (160, 144, 36, 36)


@given(
    since_s=st.floats(0, 100),
    x=st.floats(0, 604),
    direction=st.sampled_from([-1, 1]),
    t_s=st.floats(0, 10_000),
    dt_s=st.floats(0, 10),
)
def test_a_moving_object_stays_in_the_picture_at_its_speed(
    since_s: float, x: float, direction: int, t_s: float, dt_s: float
) -> None:
    motion = ObjectMotion(
        GEOMETRY, ObjectState.MOVING, since_ns=round(since_s * S), x=x, direction=direction
    )
    t, later = round(t_s * S), round((t_s + dt_s) * S)
    assert 0 <= motion.x_at(t) <= 604 and 0 <= motion.x_at(later) <= 604
    assert abs(motion.x_at(later) - motion.x_at(t)) <= 160 * dt_s + 0.01  # a quarter width/s


def test_brightness_must_be_within_minus_one_and_one() -> None:
    assert check_brightness(-1) == -1.0 and check_brightness(0.25) == 0.25
    for bad in (-1.01, 1.5, math.nan, math.inf):
        with pytest.raises(ValueError, match="between -1 and 1"):
            check_brightness(bad)


def test_scene_pipeline_parts() -> None:
    assert scene_layers(P.PATTERN, 640, 360, Fraction(15)) == []
    still = scene_layers(P.SCENE, 640, 360, Fraction(30000, 1001))
    assert len(still) == 2 and "imagefreeze" in still[0] and "framerate=30000/1001" in still[0]
    assert "width=36,height=36" in still[1] and still[1].endswith("! scene.sink_1")
    noisy = scene_layers(P.NOISY_SCENE, 640, 360, Fraction(15))
    assert "pattern=snow" in noisy[2] and "width=160,height=90" in noisy[2]
    assert "sink_1::alpha=0 sink_1::ypos=144" in scene_mixer(P.SCENE, 640, 360)
    assert "sink_2" not in scene_mixer(P.SCENE, 640, 360)
    assert "sink_2::width=640 sink_2::height=360" in scene_mixer(P.NOISY_SCENE, 640, 360)


# -- plain values ---------------------------------------------------------------------------------


def test_scene_json_round_trip() -> None:
    spec = CameraSpec("cam2", Codec.H265, picture=P.NOISY_SCENE)
    assert spec.to_json()["picture"] == "scene-noise"
    assert CameraSpec.from_json(spec.to_json()) == spec
    assert "picture" not in CameraSpec("cam1").to_json(), "READY lines unchanged without scenes"
    assert spec.describe() == "h265, scene with noise"
    assert CameraSpec("c", picture=P.SCENE).describe() == "h264, scene"
    info = ReadyInfo(port=1, control_port=2, pid=3, address="127.0.0.1", cameras=(spec,))
    assert ReadyInfo.from_line(info.to_line()) == info

    scene = SceneStatus(ObjectState.MOVING, -0.5, True, (10, 144, 36, 36))
    status = CameraStatus("cam2", FaultMode.RUNNING, Codec.H265, 1, scene=scene)
    data = status.to_json()
    assert data["scene"] == {
        "object": "moving",
        "brightness": -0.5,
        "noise": True,
        "object_box": [10, 144, 36, 36],
    }
    assert CameraStatus.from_json(json.loads(json.dumps(data))) == status
    plain = CameraStatus("cam1", FaultMode.RUNNING, Codec.H264, 0)
    assert plain.to_json()["scene"] is None and CameraStatus.from_json(plain.to_json()) == plain
    absent = SceneStatus(ObjectState.ABSENT, 0.0, False, None)
    assert SceneStatus.from_json(absent.to_json()) == absent


# -- command line and the test helper -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"cam1": P.PATTERN, "cam2": P.PATTERN, "cam3": P.PATTERN}),
        (["--scene"], {"cam1": P.SCENE, "cam2": P.SCENE, "cam3": P.SCENE}),
        (["--scene", "cam2"], {"cam1": P.PATTERN, "cam2": P.SCENE, "cam3": P.PATTERN}),
        (["--noise=cam3", "--scene"], {"cam1": P.SCENE, "cam2": P.SCENE, "cam3": P.NOISY_SCENE}),
        (["--noise"], {"cam1": P.NOISY_SCENE, "cam2": P.NOISY_SCENE, "cam3": P.NOISY_SCENE}),
        (
            ["--scene=cam1", "--noise=cam2", "--scene=cam2"],
            {"cam1": P.SCENE, "cam2": P.NOISY_SCENE, "cam3": P.PATTERN},
        ),
    ],
)
def test_cli_scene_and_noise(argv: list[str], expected: dict[str, Picture]) -> None:
    assert _pictures(_config("--cameras", "3", *argv)) == expected


def test_cli_rejects_scene_of_unknown_or_badly_named_camera() -> None:
    with pytest.raises(ValueError, match=r"camera picture given for unknown camera\(s\): cam7"):
        _config("--cameras", "2", "--noise", "cam7")
    with pytest.raises(argparse.ArgumentError):
        _config("--scene=cam 1")


def test_helper_passes_scene_options_that_mean_what_it_was_given() -> None:
    assert "--scene" not in SimulatorProcess(cameras=2).args
    helper = SimulatorProcess(
        cameras=3, picture=P.SCENE, camera_pictures={"cam2": P.NOISY_SCENE, "cam3": P.SCENE}
    )
    expected = {"cam1": P.SCENE, "cam2": P.NOISY_SCENE, "cam3": P.SCENE}
    assert _pictures(_config(*helper.args)) == expected
    with pytest.raises(ValueError, match="cam1: pattern when all are scene"):
        SimulatorProcess(cameras=2, picture=P.SCENE, camera_pictures={"cam1": P.PATTERN})


# -- control endpoint -----------------------------------------------------------------------------


class FakeSimulator:
    """Records what the endpoint asked; cam1 is a scene camera, cam2 shows the pattern."""

    camera_names = ("cam1", "cam2")

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float | None]] = []

    def status(self) -> list[CameraStatus]:
        return [self.camera_status(name) for name in self.camera_names]

    def camera_status(self, name: str, brightness: float = 0.0) -> CameraStatus:
        scene = SceneStatus(ObjectState.STILL, brightness, False, (1, 2, 3, 4))
        return CameraStatus(
            name, FaultMode.RUNNING, Codec.H264, 0, scene=scene if name == "cam1" else None
        )

    def apply(self, name: str, action: CameraAction) -> CameraStatus:
        self.calls.append((name, action.value, None))
        if name != "cam1" and action.value.startswith("object-"):
            raise NotASceneCameraError(f"camera {name} shows the test pattern")
        return self.camera_status(name)

    def set_brightness(self, name: str, level: float) -> CameraStatus:
        self.calls.append((name, "brightness", level))
        if name != "cam1":
            raise NotASceneCameraError(f"camera {name} shows the test pattern")
        return self.camera_status(name, level)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeSimulator, str]]:
    # One server for the module: closing one waits for its poll interval (0.5 s).
    fake = FakeSimulator()
    server = ControlServer(fake)
    server.start()
    yield fake, f"http://127.0.0.1:{server.port}"
    server.close()


@pytest.fixture
def endpoint(served: tuple[FakeSimulator, str]) -> tuple[FakeSimulator, str]:
    served[0].calls.clear()
    return served


def _post(url: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_control_scene_commands(endpoint: tuple[FakeSimulator, str]) -> None:
    fake, base = endpoint
    for action in ("object-start", "object-stop", "object-remove"):
        code, body = _post(f"{base}/cameras/cam1/{action}")
        assert code == 200 and body["scene"] is not None
    code, body = _post(f"{base}/cameras/cam1/brightness?level=-0.25")
    assert code == 200 and body["scene"]["brightness"] == -0.25  # type: ignore[index]
    assert fake.calls == [
        ("cam1", "object-start", None),
        ("cam1", "object-stop", None),
        ("cam1", "object-remove", None),
        ("cam1", "brightness", -0.25),
    ]


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("/cameras/cam1/brightness", 400, "brightness needs one level"),
        ("/cameras/cam1/brightness?level=0.1&level=0.2", 400, "brightness needs one level"),
        ("/cameras/cam1/brightness?level=bright", 400, "could not convert"),
        ("/cameras/cam1/brightness?level=2", 400, "between -1 and 1"),
        ("/cameras/cam1/brightness?level=nan", 400, "between -1 and 1"),
        ("/cameras/cam2/brightness?level=0.5", 409, "cam2 shows the test pattern"),
        ("/cameras/cam2/object-start", 409, "cam2 shows the test pattern"),
        ("/cameras/cam9/object-start", 404, "no camera 'cam9'"),
    ],
)
def test_control_refuses_bad_scene_commands(
    endpoint: tuple[FakeSimulator, str], path: str, code: int, message: str
) -> None:
    fake, base = endpoint
    got, body = _post(base + path)
    assert (got, message in str(body["error"])) == (code, True), body
    assert not [c for c in fake.calls if c[0] == "cam1"], "a refused command does nothing"
