"""The server's WebSocket frames as ``nvrlivesink`` writes them, read back into messages: pure.

The live sink writes each viewer's WebSocket messages straight to its socket (unmasked server
frames: FIN and opcode, then a 7-, 16- or 64-bit length). Where the web server cannot hand a
viewer's socket over (TLS, another server), the sink writes into a socket pair instead and
:class:`FrameReader` turns the bytes back into messages for the web server to send. Tests read
what a viewer got with it too.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT = 0x1
BINARY = 0x2


class BadFrame(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Message:
    opcode: int  # TEXT or BINARY
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()


class FrameReader:
    """Bytes in, whole messages out; a frame split across reads waits for its rest."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of a frame not complete yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        pos = 0
        buf = self._buffer
        while len(buf) - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            if first & 0x80 == 0 or first & 0x70 or second & 0x80:
                raise BadFrame(f"not a whole unmasked server frame: {first:#04x} {second:#04x}")
            opcode, length, head = first & 0x0F, second & 0x7F, 2
            if opcode not in (TEXT, BINARY):
                raise BadFrame(f"unexpected opcode {opcode:#x}")
            # A 16- or 64-bit length not all here yet reads short; then fewer than ``head`` bytes
            # are here, so fewer than ``head + length``, and the frame waits for its rest.
            if length == 126:
                head = 4
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            elif length == 127:
                head = 10
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            if len(buf) - pos < head + length:
                break
            messages.append(Message(opcode, bytes(buf[pos + head : pos + head + length])))
            pos += head + length
        del buf[:pos]
        return messages
