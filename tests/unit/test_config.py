from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nvr_gstreamer.cli import main
from nvr_gstreamer.config import ConfigError, load_config, parse_config

GOOD = """
storage:
  path: rec
  segment_seconds: 30
reconnect:
  max_delay_seconds: 30
api:
  port: 9090
cameras:
  - id: front-door
    name: Front door
    url: rtsp://10.0.0.5:554/stream1
    live_url: rtsp://10.0.0.5:554/stream2
    username: admin
    password: ${FRONT_PW}
  - id: yard
    url: rtsp://viewer:yardpass@10.0.0.6/live
    record: false
    transport: udp
"""


def _parse(text: str, env: dict[str, str] | None = None) -> list[str]:
    """The rendered problems of a config that must fail."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, "nvr.yaml", Path("/etc/nvr"), env or {})
    return str(info.value).splitlines()


def test_good_config_gets_defaults_env_and_resolved_paths() -> None:
    config = parse_config(GOOD, "nvr.yaml", Path("/etc/nvr"), {"FRONT_PW": "front-secret"})
    assert config.storage.path == Path("/etc/nvr/rec")
    assert config.storage.segment_seconds == 30
    assert config.storage.pre_record_seconds == 0
    assert config.reconnect.initial_delay_seconds == 5
    assert config.reconnect.max_retries == 0
    assert config.reconnect.stall_timeout_seconds == 5
    assert config.reconnect.probe_interval_seconds == 0.25
    assert config.reconnect.probe_slow_interval_seconds == 1
    assert config.reconnect.probe_slow_after_seconds == 600
    assert config.api.host == "127.0.0.1"
    assert (config.exports.folder, config.exports.keep_hours, config.exports.max_minutes) == (
        "exports",
        24,
        1440,
    )
    front, yard = config.cameras
    assert front.credentials() == ("admin", "front-secret")
    assert yard.credentials() == ("viewer", "yardpass")
    assert (front.record, front.enabled, front.transport) == (True, True, "auto")
    assert yard.display_name == "yard"
    assert "front-secret" not in repr(config)


def test_defaults_documented_and_bounded() -> None:
    from nvr_gstreamer.config import NvrConfig

    schema = NvrConfig.model_json_schema()
    for name, section in schema["$defs"].items():
        for key, field in section["properties"].items():
            assert field.get("description"), f"{name}.{key} has no description"
    seg = schema["$defs"]["StorageConfig"]["properties"]["segment_seconds"]
    assert (seg["default"], seg["minimum"], seg["maximum"]) == (60, 2, 3600)
    keep = schema["$defs"]["ExportsConfig"]["properties"]["keep_hours"]
    assert (keep["default"], keep["minimum"], keep["maximum"]) == (24, 0.1, 8760)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cameras: [{id: a, url: rtsp://h/x, colour: red}]",
            "nvr.yaml: cameras[0].colour: unknown key (allowed here: id, name,",
        ),
        ("storag: {}\ncameras: [{id: a, url: rtsp://h/x}]", "nvr.yaml: storag: unknown key"),
        (
            "cameras: [{id: a, url: rtsp://h/x}, {id: b, url: rtsp://h/y}, {id: a, url: rtsp://h/z}]",
            "nvr.yaml: cameras[2].id: duplicate camera id 'a' (also cameras[0].id)",
        ),
        (
            "cameras: [{id: a, url: rtsp://h/x}, {id: b, url: rtsp://h/y}, {id: c, url: http://h/z}]",
            "nvr.yaml: cameras[2].url: expected an rtsp:// or rtsps:// URL",
        ),
        ("cameras: [{id: a, url: 'rtsp:///x'}]", "nvr.yaml: cameras[0].url: expected a host"),
        (
            "cameras: [{id: a, url: 'rtsp://h:70000/x'}]",
            "nvr.yaml: cameras[0].url: expected a port number",
        ),
        (
            "cameras: [{id: a, url: 'rtsp://u:pw1234@h/x', username: u, password: pw1234}]",
            "nvr.yaml: cameras[0].url: credentials are embedded in url and also given",
        ),
        (
            "cameras: [{id: a, url: rtsp://h/x, username: u, password: '${CAM_PW}'}]",
            "nvr.yaml: cameras[0].password: environment variable CAM_PW is not set",
        ),
        (
            "storage: {segment_seconds: 1}\ncameras: [{id: a, url: rtsp://h/x}]",
            "nvr.yaml: storage.segment_seconds: expected a number from 2 to 3600",
        ),
        (
            "cameras: [{id: Front Door, url: rtsp://h/x}]",
            "nvr.yaml: cameras[0].id: expected a slug",
        ),
        (
            "cameras: [{id: a, url: rtsp://h/x, transport: sctp}]",
            "nvr.yaml: cameras[0].transport: expected 'auto', 'tcp' or 'udp'",
        ),
        ("cameras: []", "nvr.yaml: cameras: expected at least 1 entry"),
        ("storage: {}", "nvr.yaml: cameras: required key is missing"),
        (
            "cameras:\n  - id: a\n    url: rtsp://h/x\n  - id: b\n   url: x\n",
            "nvr.yaml: invalid YAML at line 5",
        ),
        (
            "cameras:\n  - id: a\n    url: rtsp://h/x\n    id: b\n",
            "nvr.yaml: invalid YAML at line 4, column 5: key 'id' given twice (first on line 2)",
        ),
        ("- just\n- a list\n", "nvr.yaml: expected a mapping"),
        (
            "reconnect: {initial_delay_seconds: 30, max_delay_seconds: 10}\n"
            "cameras: [{id: a, url: rtsp://h/x}]",
            "nvr.yaml: reconnect: max_delay_seconds must be at least initial_delay_seconds",
        ),
        (
            "exports: {keep_hours: 0}\ncameras: [{id: a, url: rtsp://h/x}]",
            "nvr.yaml: exports.keep_hours: expected a number from 0.1 to 8760",
        ),
        (
            "exports: {max_minutes: 20000}\ncameras: [{id: a, url: rtsp://h/x}]",
            "nvr.yaml: exports.max_minutes: expected a number from 1 to 10080",
        ),
        (
            "exports: {folder: ../elsewhere}\ncameras: [{id: a, url: rtsp://h/x}]",
            "nvr.yaml: exports.folder: expected a folder name",
        ),
        (
            "exports: {fold: x}\ncameras: [{id: a, url: rtsp://h/x}]",
            "nvr.yaml: exports.fold: unknown key (allowed here: folder, keep_hours, max_minutes)",
        ),
        (
            "cameras: [{id: exports, url: rtsp://h/x}]",
            "nvr.yaml: exports.folder 'exports' is also a camera id",
        ),
        (
            "catalog: {url: 'mysql://u:p@h/db'}\ncameras: [{id: a, url: rtsp://h/x}]",
            "nvr.yaml: catalog.url: expected a postgresql:// URL (with user, password, host, port and database)",
        ),
        (
            "exports: {folder: catalog.sqlite3-wal}\ncameras: [{id: a, url: rtsp://h/x}]",
            "nvr.yaml: exports.folder 'catalog.sqlite3-wal' is the name of the catalog's files",
        ),
    ],
)
def test_each_problem_names_file_key_and_expectation(text: str, expected: str) -> None:
    problems = _parse(text)
    assert any(line.startswith(expected) for line in problems), problems


def test_every_problem_is_listed_at_once() -> None:
    text = """
storage: {segment_seconds: 9999, bogus: 1}
cameras:
  - {id: a, url: ftp://h/x}
  - {id: a, url: rtsp://h/x, username: u, password: '${MISSING}'}
"""
    problems = _parse(text)
    keys = [line.split(": ")[1] for line in problems]
    assert keys == [
        "cameras[0].url",
        "cameras[1].id",
        "cameras[1].password",
        "storage.bogus",
        "storage.segment_seconds",
    ]


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == f"{missing}: cannot read the file: No such file or directory"


PASSWORD_CONFIGS = [
    # Each fails for a reason next to a password, which must not appear in the output.
    "cameras: [{id: a, url: 'rtsp://u:TopSecret99@h:99999/x'}]",
    "cameras: [{id: a, url: 'rtsp://u:TopSecret99@h/x', username: u, password: TopSecret99}]",
    "cameras: [{id: a, url: rtsp://h/x, password: TopSecret99}]",
    "cameras: [{id: a, url: 'ftp://u:TopSecret99@h/x'}]",
    "cameras: [{id: a, url: rtsp://h/x, username: u, password: TopSecret99, extra: TopSecret99}]",
    "cameras: [{id: a, url: 'TopSecret99', username: u, password: TopSecret99}]",
    "api: {token: TopSecret99, port: -1}\ncameras: [{id: a, url: rtsp://h/x}]",
]


@pytest.mark.parametrize("text", PASSWORD_CONFIGS)
def test_check_config_never_prints_a_password(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nvr.yaml"
    path.write_text(text)
    assert main(["check-config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "TopSecret99" not in out + err
    assert str(path) in err


def test_check_config_prints_summary_without_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nvr.yaml"
    path.write_text(GOOD)
    os.environ["FRONT_PW"] = "front-secret"
    try:
        assert main(["check-config", str(path)]) == 0
    finally:
        del os.environ["FRONT_PW"]
    out, _ = capsys.readouterr()
    assert out.startswith(f"{path}: OK")
    assert "2 (1 recording continuously, 0 disabled)" in out
    assert "rtsp://viewer:***@10.0.0.6/live" in out
    assert "yardpass" not in out and "front-secret" not in out


def test_console_command_exit_codes(tmp_path: Path) -> None:
    """The installed `nvr` entry point: 1 for a bad config, 2 for a usage error."""
    nvr = Path(sys.executable).parent / "nvr"
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [{id: a, url: 'rtsp://u:TopSecret99@h:0x/x'}]\n")
    res = subprocess.run([nvr, "check-config", bad], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "cameras[0].url" in res.stderr and "TopSecret99" not in res.stderr
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # no display: no dialog to answer
    res = subprocess.run(
        [nvr, "gui", "-c", bad], capture_output=True, text=True, timeout=60, env=env
    )
    assert res.returncode == 1
    assert "cameras[0].url" in res.stderr and "TopSecret99" not in res.stderr
    res = subprocess.run([nvr, "gui"], capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 2 and "nvr gui --demo" in res.stderr


def test_basic_auth_form_of_a_password_is_masked_too() -> None:
    import base64

    from nvr_gstreamer.core.redact import redact

    parse_config(
        "cameras: [{id: a, url: rtsp://h/x, username: admin, password: Pw-12345}]",
        "nvr.yaml",
        Path("."),
        {},
    )
    header = "Authorization: Basic " + base64.b64encode(b"admin:Pw-12345").decode()
    assert redact(header) == "Authorization: Basic ***"


def test_the_catalog_databases_password_is_a_secret_from_the_environment() -> None:
    from nvr_gstreamer.core.redact import redact

    config = parse_config(
        "catalog: {url: '${NVR_DB}'}\ncameras: [{id: a, url: rtsp://h/x}]",
        "nvr.yaml",
        Path("."),
        {"NVR_DB": "postgresql://nvr:Db-Secret-9@db.example:5432/nvr"},
    )
    assert config.catalog.url is not None
    assert "Db-Secret-9" not in repr(config)
    assert config.catalog.url.get_secret_value().endswith("@db.example:5432/nvr")
    assert redact("FATAL: password authentication failed (Db-Secret-9)") == (
        "FATAL: password authentication failed (***)"
    )
