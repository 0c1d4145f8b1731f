"""Which RTP transport the next connection to a camera uses. Pure.

``transport: auto`` (the default) tries RTP over TCP first — one connection, nothing lost,
through NAT and firewalls — and falls back to UDP for a camera that refuses TCP (``461
Unsupported transport``, or no stream over TCP). What worked is remembered, so the next
reconnect starts with it. Over UDP a camera can also send nothing at all (a firewall drops the
packets): a connection attempt over UDP that brings no frame switches back to TCP.

``tcp`` and ``udp`` mean exactly that; a refusal then says in plain words what to change.
"""

from __future__ import annotations

from enum import Enum

from nvr_gstreamer.camera.errors import ErrorKind


class Transport(Enum):
    TCP = "tcp"
    UDP = "udp"


class TransportMode(Enum):
    AUTO = "auto"
    TCP = "tcp"
    UDP = "udp"


class TransportChooser:
    def __init__(self, mode: TransportMode) -> None:
        self.mode = mode
        self.current = Transport.UDP if mode is TransportMode.UDP else Transport.TCP
        self.working: Transport | None = None  # the last transport that delivered video

    def streaming(self) -> None:
        """The current attempt delivers video: remember its transport."""
        self.working = self.current

    def attempt_failed(self, kind: ErrorKind | None, had_video: bool) -> str | None:
        """An attempt over ``current`` ended without video: with ``kind`` as its fault, or
        None when it simply brought nothing in time. Returns a note when the next attempt
        uses the other transport. A refused or lost connection (network) says nothing about
        the transport: the camera is away, and what worked before is kept."""
        if self.mode is not TransportMode.AUTO or had_video:
            return None
        if kind is not ErrorKind.TRANSPORT and kind is not None:
            return None
        if self.current is Transport.TCP:
            self.current = Transport.UDP
            return "no stream over TCP (the camera refuses it); trying UDP"
        self.current = Transport.TCP
        return "no video over UDP (refused, or a firewall drops it); trying TCP"

    def refusal_message(self, kind: ErrorKind) -> str | None:
        """Plain words for a refusal of a forced transport."""
        if kind is not ErrorKind.TRANSPORT or self.mode is TransportMode.AUTO:
            return None
        if self.mode is TransportMode.TCP:
            return (
                "the camera refuses RTP over TCP: set 'transport: udp' or 'transport: auto' "
                "for this camera"
            )
        return (
            "no video over UDP (the camera refuses it, or a firewall drops it): set "
            "'transport: tcp' or 'transport: auto' for this camera"
        )
