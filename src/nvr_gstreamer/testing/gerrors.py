"""GStreamer's error domains and codes as plain values, for unit tests without ``gi``.

The same names and numbers as ``gst/gsterror.h`` (GStreamer 1.22); an integration test
(``tests/integration/test_fault_adapter.py``) checks them against the real enums and the real
``GLib.Error`` path, so a unit test built on them sees exactly what the product sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _domain(name: str, quark: str, codes: str) -> Any:
    """A domain class: ``quark()`` is its name as ``GLib.Error.domain`` gives it, and each
    code (numbered from 1, as in gsterror.h) an attribute."""
    attrs: dict[str, Any] = {c: i for i, c in enumerate(codes.split(), start=1)}
    attrs["quark"] = staticmethod(lambda: quark)
    return type(name, (), attrs)


CoreError = _domain(
    "CoreError", "gst-core-error-quark",
    "FAILED TOO_LAZY NOT_IMPLEMENTED STATE_CHANGE PAD THREAD NEGOTIATION EVENT SEEK CAPS TAG "
    "MISSING_PLUGIN CLOCK DISABLED",
)  # fmt: skip
LibraryError = _domain(
    "LibraryError", "gst-library-error-quark", "FAILED TOO_LAZY INIT SHUTDOWN SETTINGS ENCODE"
)
ResourceError = _domain(
    "ResourceError", "gst-resource-error-quark",
    "FAILED TOO_LAZY NOT_FOUND BUSY OPEN_READ OPEN_WRITE OPEN_READ_WRITE CLOSE READ WRITE SEEK "
    "SYNC SETTINGS NO_SPACE_LEFT NOT_AUTHORIZED",
)  # fmt: skip
StreamError = _domain(
    "StreamError", "gst-stream-error-quark",
    "FAILED TOO_LAZY NOT_IMPLEMENTED TYPE_NOT_FOUND WRONG_TYPE CODEC_NOT_FOUND DECODE ENCODE "
    "DEMUX MUX FORMAT DECRYPT DECRYPT_NOKEY",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GError:
    """What ``message.parse_error()`` gives: a domain name, a code and a message."""

    domain: str
    message: str
    code: int

    @classmethod
    def new_literal(cls, domain: str, message: str, code: int) -> GError:
        return cls(domain, message, code)
