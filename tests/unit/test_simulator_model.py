"""The simulator's plain model and command line: per-camera audio and transports (no GStreamer)."""

from __future__ import annotations

import argparse
import re

import pytest

from nvr_gstreamer.simulator.cli import add_arguments, config_from_args
from nvr_gstreamer.simulator.model import (
    AllowedTransports,
    AudioCodec,
    CameraSpec,
    CameraStatus,
    Codec,
    FaultMode,
    ReadyInfo,
    SimulatorConfig,
    parse_audio,
    parse_camera_option,
    parse_transports,
)
from nvr_gstreamer.simulator.process import SimulatorProcess

A, T = AudioCodec, AllowedTransports


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simulate", exit_on_error=False)
    add_arguments(parser)
    return parser


def _config(*argv: str) -> SimulatorConfig:
    return config_from_args(_parser().parse_args(list(argv)))


def _cameras(config: SimulatorConfig) -> dict[str, tuple[AudioCodec, AllowedTransports]]:
    return {c.name: (c.audio, c.transports) for c in config.cameras}


# -- model ----------------------------------------------------------------------------------------


def test_defaults_are_video_only_over_any_transport() -> None:
    config = SimulatorConfig.build(2)
    assert _cameras(config) == {"cam1": (A.NONE, T.ANY), "cam2": (A.NONE, T.ANY)}
    assert CameraSpec("cam1") == CameraSpec("cam1", Codec.H264, A.NONE, T.ANY)


def test_build_applies_defaults_then_per_camera_values() -> None:
    config = SimulatorConfig.build(
        3,
        audio=A.AAC,
        camera_audio={"cam2": A.PCMA},
        transports=T.TCP,
        camera_transports={"cam3": T.UDP},
    )
    assert _cameras(config) == {
        "cam1": (A.AAC, T.TCP),
        "cam2": (A.PCMA, T.TCP),
        "cam3": (A.AAC, T.UDP),
    }


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"camera_audio": {"cam9": A.PCMA}}, "camera audio given for unknown camera(s): cam9"),
        ({"camera_transports": {"x": T.UDP}}, "camera transports given for unknown camera(s): x"),
        ({"camera_codecs": {"cam3": Codec.H265}}, "camera codec given for unknown camera(s): cam3"),
    ],
)
def test_build_rejects_settings_for_unknown_cameras(
    option: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        SimulatorConfig.build(2, **option)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("pcma", A.PCMA), ("PCMU", A.PCMU), (" aac ", A.AAC), ("opus", A.OPUS), ("none", A.NONE)],
)
def test_parse_audio(text: str, expected: AudioCodec) -> None:
    assert parse_audio(text) is expected


@pytest.mark.parametrize(("text", "expected"), [("any", T.ANY), ("UDP", T.UDP), ("tcp", T.TCP)])
def test_parse_transports(text: str, expected: AllowedTransports) -> None:
    assert parse_transports(text) is expected


def test_parse_errors_name_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="audio must be one of none, aac, pcma, pcmu, opus"):
        parse_audio("mp3")
    with pytest.raises(ValueError, match="transports must be one of any, udp, tcp"):
        parse_transports("sctp")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pcma", (None, A.PCMA)),
        ("cam2=aac", ("cam2", A.AAC)),
        ("cam-2.x=none", ("cam-2.x", A.NONE)),
    ],
)
def test_parse_camera_option(text: str, expected: tuple[str | None, AudioCodec]) -> None:
    assert parse_camera_option(text, parse_audio) == expected


@pytest.mark.parametrize("text", ["=pcma", "cam2=", "cam2=mp3"])
def test_parse_camera_option_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_camera_option(text, parse_audio)


def test_camera_spec_json_round_trip_and_old_json() -> None:
    spec = CameraSpec("cam2", Codec.H265, A.PCMU, T.UDP)
    assert spec.to_json() == {
        "name": "cam2",
        "codec": "h265",
        "audio": "pcmu",
        "transports": "udp",
    }
    assert CameraSpec.from_json(spec.to_json()) == spec
    # A READY line or status from before audio/transports existed still reads.
    assert CameraSpec.from_json({"name": "cam1", "codec": "h264"}) == CameraSpec("cam1")


def test_camera_spec_describe() -> None:
    assert CameraSpec("c").describe() == "h264"
    assert CameraSpec("c", audio=A.PCMA, transports=T.UDP).describe() == "h264 + pcma, udp only"
    assert CameraSpec("c", Codec.H265, transports=T.TCP).describe() == "h265, tcp only"


def test_status_json_reports_audio_and_transports() -> None:
    status = CameraStatus("cam1", FaultMode.RUNNING, Codec.H264, 2, audio=A.AAC, transports=T.TCP)
    data = status.to_json()
    assert (data["audio"], data["transports"], data["clients"]) == ("aac", "tcp", 2)
    assert CameraStatus.from_json(data) == status
    old = {"name": "cam1", "state": "frozen", "codec": "h264", "clients": 0}
    assert CameraStatus.from_json(old).audio is A.NONE


def test_ready_line_carries_camera_specs() -> None:
    cameras = (CameraSpec("cam1"), CameraSpec("cam2", audio=A.PCMA, transports=T.UDP))
    info = ReadyInfo(port=1, control_port=2, pid=3, address="127.0.0.1", cameras=cameras)
    line = info.to_line()
    assert '"url":"rtsp://127.0.0.1:1/cam2"' in line
    assert ReadyInfo.from_line(line) == info


# -- command line ---------------------------------------------------------------------------------


def test_cli_defaults_unchanged() -> None:
    assert _cameras(_config("--cameras", "2")) == {"cam1": (A.NONE, T.ANY), "cam2": (A.NONE, T.ANY)}


def test_cli_bare_value_sets_every_camera_and_named_value_one() -> None:
    config = _config(
        "--cameras", "3",
        "--audio", "cam2=aac",  # per camera wins regardless of order
        "--audio", "pcma",
        "--transports", "cam3=udp",
        "--camera-transports", "cam1=tcp",
        "--camera-audio", "cam3=opus",
    )  # fmt: skip
    assert _cameras(config) == {
        "cam1": (A.PCMA, T.TCP),
        "cam2": (A.AAC, T.ANY),
        "cam3": (A.OPUS, T.UDP),
    }


def test_cli_last_bare_value_wins() -> None:
    config = _config("--cameras", "1", "--audio", "pcma", "--audio", "pcmu")
    assert config.cameras[0].audio is A.PCMU


@pytest.mark.parametrize(
    "argv",
    [
        ["--audio", "mp3"],
        ["--audio", "cam1=mp3"],
        ["--transports", "quic"],
        ["--camera-audio", "pcma"],  # NAME= is required here
        ["--camera-transports", "udp"],
    ],
)
def test_cli_rejects_bad_values(argv: list[str]) -> None:
    with pytest.raises(argparse.ArgumentError):
        _parser().parse_args(argv)


def test_cli_rejects_unknown_camera() -> None:
    with pytest.raises(ValueError, match="unknown camera"):
        _config("--cameras", "2", "--transports", "cam5=udp")


# -- test helper ----------------------------------------------------------------------------------


def test_helper_passes_nothing_new_by_default() -> None:
    args = SimulatorProcess(cameras=2).args
    assert "--audio" not in args and "--transports" not in args


def test_helper_arguments_mean_what_it_was_given() -> None:
    helper = SimulatorProcess(
        cameras=3,
        audio=A.PCMU,
        camera_audio={"cam2": A.AAC},
        camera_transports={"cam3": T.UDP},
    )
    assert _cameras(_config(*helper.args)) == {
        "cam1": (A.PCMU, T.ANY),
        "cam2": (A.AAC, T.ANY),
        "cam3": (A.PCMU, T.UDP),
    }
