"""The transport chooser: TCP first, UDP for a camera that refuses TCP, what worked is kept."""

from __future__ import annotations

import pytest

from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.camera.transport import Transport, TransportChooser, TransportMode

T, N = ErrorKind.TRANSPORT, ErrorKind.NETWORK


def test_auto_tries_tcp_first_and_falls_back_to_udp_when_refused() -> None:
    c = TransportChooser(TransportMode.AUTO)
    assert c.current is Transport.TCP and c.working is None
    assert c.attempt_failed(T, had_video=False) == (
        "no stream over TCP (the camera refuses it); trying UDP"
    )
    assert c.current is Transport.UDP
    c.streaming()
    assert c.working is Transport.UDP


def test_auto_keeps_what_worked_through_a_camera_outage() -> None:
    c = TransportChooser(TransportMode.AUTO)
    c.attempt_failed(T, False)
    c.streaming()
    # The camera goes away: lost connection, then refused connections while it is down.
    assert c.attempt_failed(N, had_video=True) is None
    for _ in range(5):
        assert c.attempt_failed(N, had_video=False) is None
    assert c.current is Transport.UDP


def test_auto_returns_to_tcp_when_udp_brings_nothing() -> None:
    c = TransportChooser(TransportMode.AUTO)
    c.attempt_failed(T, False)
    # "Could not receive any UDP packets"
    assert (
        c.attempt_failed(T, False)
        == "no video over UDP (refused, or a firewall drops it); trying TCP"
    )
    assert c.current is Transport.TCP
    c.attempt_failed(None, False)  # connected over TCP, no video within the connect timeout
    assert c.current is Transport.UDP


def test_a_video_that_flowed_is_never_blamed_on_the_transport() -> None:
    c = TransportChooser(TransportMode.AUTO)
    assert c.attempt_failed(T, had_video=True) is None
    assert c.attempt_failed(None, had_video=True) is None
    assert c.current is Transport.TCP


@pytest.mark.parametrize("mode", [TransportMode.TCP, TransportMode.UDP])
def test_forced_transport_is_never_changed_and_says_what_to_set(mode: TransportMode) -> None:
    c = TransportChooser(mode)
    first = c.current
    assert first.value == mode.value
    for kind in (T, N, None):
        assert c.attempt_failed(kind, False) is None
    assert c.current is first
    msg = c.refusal_message(T)
    assert msg is not None and "'transport: auto'" in msg
    other = "udp" if mode is TransportMode.TCP else "tcp"
    assert f"'transport: {other}'" in msg
    assert c.refusal_message(N) is None


def test_refusal_messages_in_full() -> None:
    assert TransportChooser(TransportMode.TCP).refusal_message(T) == (
        "the camera refuses RTP over TCP: set 'transport: udp' or 'transport: auto' for this camera"
    )
    assert TransportChooser(TransportMode.UDP).refusal_message(T) == (
        "no video over UDP (the camera refuses it, or a firewall drops it): set "
        "'transport: tcp' or 'transport: auto' for this camera"
    )


def test_auto_has_no_refusal_message() -> None:
    assert TransportChooser(TransportMode.AUTO).refusal_message(T) is None
