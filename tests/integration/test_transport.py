"""RTP transports against a camera that refuses RTP over TCP (461 Unsupported transport), as
some cameras' servers do: `auto` records it over UDP within seconds; `tcp` forced says plainly
what to change. Real pipelines, the simulator, real files."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.simulator.model import AllowedTransports
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import EngineWatch, engine_config, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def sim() -> Iterator[SimulatorProcess]:
    # cam1 takes anything, cam2 refuses RTP over TCP.
    with SimulatorProcess(
        cameras=2, gop_seconds=0.5, camera_transports={"cam2": AllowedTransports.UDP}
    ) as s:
        yield s


def _frames(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(out.strip() or 0)


def test_auto_records_a_camera_that_refuses_tcp_over_udp_within_10_s(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    config = engine_config(
        {"cam1": sim.url("cam1"), "cam2": sim.url("cam2")},
        storage=tmp_path / "rec",
        storage_options={"segment_seconds": 2},
    )
    assert {c.transport for c in config.cameras} == {"auto"}  # the default
    app = NvrApp(config)
    watch = EngineWatch(app.engine)
    began = time.monotonic()
    app.start()
    try:
        streaming = watch.wait_for("cam2", CameraState.STREAMING, 10)
        wait_until(lambda: app.engine.status("cam2").current_segment is not None, 10, "a file")
        recording_after = time.monotonic() - began
        print(f"cam2 (TCP refused) streaming after {streaming - began:.2f} s, "
              f"recording after {recording_after:.2f} s")  # fmt: skip
        assert recording_after <= 10
        s1, s2 = app.engine.status("cam1"), app.engine.status("cam2")
        assert (s1.transport, s2.transport) == ("tcp", "udp")
        assert s2.error_count(ErrorKind.TRANSPORT) >= 1  # the refusal, classified as such
        # What worked is kept: after an outage it reconnects over UDP at once.
        sim.stop("cam2")
        watch.wait_for("cam2", CameraState.RECONNECTING, 10, after=streaming)
        back = time.monotonic()
        sim.resume("cam2")
        watch.wait_for("cam2", CameraState.STREAMING, 10, after=back)
        assert app.engine.status("cam2").transport == "udp"
        assert app.engine.status("cam2").error_count(ErrorKind.TRANSPORT) == s2.error_count(
            ErrorKind.TRANSPORT
        )
        first = app.storage.catalog.segments("cam2")[0]
        wait_until(
            lambda: app.storage.catalog.segment(first.id).status.value == "closed",  # type: ignore[union-attr]
            10,
            "the first file closed",
        )
    finally:
        app.stop()
    assert _frames(tmp_path / "rec" / first.path) > 0


def test_forced_tcp_says_the_camera_refuses_it_and_what_to_set(sim: SimulatorProcess) -> None:
    from nvr_gstreamer.engine.engine import CameraEngine

    config = engine_config(
        {"cam2": sim.url("cam2")},
        camera_options={"cam2": {"transport": "tcp"}},
        initial_delay_seconds=0.5,
    )
    engine = CameraEngine(config)
    watch = EngineWatch(engine)
    engine.start()
    try:
        watch.wait_for("cam2", CameraState.RECONNECTING, 10)
        st = engine.status("cam2")
        assert st.last_error_kind is ErrorKind.TRANSPORT
        assert st.transport == "tcp"
        assert "refuses RTP over TCP" in st.reason and "'transport: udp'" in st.reason
        # And it stays so: TCP is never silently swapped for UDP when it is forced.
        wait_until(lambda: engine.status("cam2").reconnect_attempts >= 2, 15, "a second attempt")
        assert engine.status("cam2").state is CameraState.RECONNECTING
        assert engine.status("cam2").transport == "tcp"
    finally:
        engine.stop()


@contextlib.contextmanager
def namespace_with_firewall(rule: str) -> Iterator[str]:
    """A network namespace (loopback up) whose nftables input hook applies ``rule``."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    ns = f"nvr-test-{os.getpid()}"
    run = functools.partial(subprocess.run, check=True, capture_output=True, text=True)
    run(["ip", "netns", "add", ns])
    try:
        run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
        rules = (
            "table inet nvrtest {\n chain input {\n"
            f"  type filter hook input priority 0;\n  {rule}\n }}\n}}\n"
        )
        run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.fixture
def udp_dropped() -> Iterator[str]:
    """Every UDP packet to a client port (RTP and RTCP) dropped, as a firewall between an NVR
    and its camera may; RTSP over TCP passes."""
    with namespace_with_firewall("udp dport 1024-65535 drop") as ns:
        yield ns


def test_udp_that_brings_nothing_is_noticed_within_the_stall_timeout_and_tcp_tried(
    udp_dropped: str, tmp_path: Path
) -> None:
    """auto: the camera refuses TCP, so UDP is tried — and a firewall drops it. That is
    noticed within the stall timeout (not rtspsrc's default, not the 15 s connect timeout)
    and the next attempt is over TCP again. Forced udp says what to set instead."""
    stall_s = 2.0
    prefix = ["ip", "netns", "exec", udp_dropped]
    with SimulatorProcess(
        cameras=2,
        gop_seconds=0.5,
        camera_transports={"cam1": AllowedTransports.UDP},
        command_prefix=prefix,
    ) as sim:
        cfg = tmp_path / "nvr.yaml"
        cfg.write_text(
            f"storage: {{path: {tmp_path / 'rec'}}}\n"
            f"reconnect: {{initial_delay_seconds: 0.5, max_delay_seconds: 1,"
            f" stall_timeout_seconds: {stall_s}}}\n"
            "api: {port: 0}\n"
            "cameras:\n"
            f"  - {{id: auto, url: '{sim.url('cam1')}'}}\n"
            f"  - {{id: forced, url: '{sim.url('cam2')}', transport: udp}}\n"
        )
        nvr = Path(sys.executable).parent / "nvr"
        proc = subprocess.Popen(
            [*prefix, nvr, "--log-level", "DEBUG", "run", "-c", cfg],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen: dict[str, float] = {}
        wanted = {
            "to_udp": "[auto] no stream over TCP (the camera refuses it); trying UDP",
            "to_tcp": "[auto] no video over UDP (refused, or a firewall drops it); trying TCP",
            "forced": "[forced] connecting -> reconnecting: no video over UDP",
        }
        try:
            assert proc.stderr is not None
            deadline = time.monotonic() + 30
            for line in proc.stderr:
                for key, text in wanted.items():
                    if text in line and key not in seen:
                        seen[key] = time.monotonic()
                if len(seen) == len(wanted) or time.monotonic() > deadline:
                    break
        finally:
            proc.terminate()
            proc.wait(20)
    assert set(seen) == set(wanted), seen
    noticed = seen["to_tcp"] - seen["to_udp"]
    print(f"UDP silence noticed {noticed:.2f} s after switching to UDP (stall timeout {stall_s} s)")
    assert noticed <= stall_s + 1.5


def test_udp_packet_loss_is_counted_per_camera(tmp_path: Path) -> None:
    """One UDP packet in 20 lost on the way (a real drop, in the kernel): the camera keeps
    recording and the loss shows in its metrics; a TCP camera beside it loses nothing."""
    with (
        namespace_with_firewall("udp dport 1024-65535 numgen random mod 20 0 drop") as ns,
        SimulatorProcess(
            cameras=2, gop_seconds=0.5, command_prefix=["ip", "netns", "exec", ns]
        ) as sim,
    ):
        port = 18000 + os.getpid() % 1000
        cfg = tmp_path / "nvr.yaml"
        cfg.write_text(
            f"storage: {{path: {tmp_path / 'rec'}, segment_seconds: 2}}\n"
            f"api: {{port: {port}}}\n"
            "cameras:\n"
            f"  - {{id: lossy, url: '{sim.url('cam1')}', transport: udp}}\n"
            f"  - {{id: tcp, url: '{sim.url('cam2')}'}}\n"
        )
        nvr = Path(sys.executable).parent / "nvr"
        inside = ["ip", "netns", "exec", ns]
        proc = subprocess.Popen([*inside, nvr, "run", "-c", cfg], stderr=subprocess.DEVNULL)

        def metric(name: str, camera: str) -> float:
            text = subprocess.run(
                [*inside, "curl", "-s", f"http://127.0.0.1:{port}/metrics"],
                capture_output=True, text=True, check=False,
            ).stdout  # fmt: skip
            m = re.search(rf'^{name}{{camera="{camera}"}} (\S+)$', text, re.M)
            return float(m.group(1)) if m else -1.0

        try:
            wait_until(lambda: metric("nvr_camera_rtp_packets_lost_total", "lossy") > 0, 30,
                       "lost packets counted")  # fmt: skip
            wait_until(lambda: metric("nvr_camera_frames_total", "lossy") > 60, 30, "video")
            lost = metric("nvr_camera_rtp_packets_lost_total", "lossy")
            assert metric("nvr_camera_rtp_packets_lost_total", "tcp") == 0
            assert metric("nvr_camera_recording", "lossy") == 1
        finally:
            proc.terminate()
            proc.wait(20)
    print(f"lossy camera: {lost:.0f} RTP packets counted lost")
    assert lost > 0
