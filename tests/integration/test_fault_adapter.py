"""The adapter from a real ``GLib.Error`` to a Fault, against the plain values the unit tests
of the classification table use (``testing/gerrors.py``)."""

from __future__ import annotations

import pytest

from nvr_gstreamer.camera.errors import Origin, fault_from_error
from nvr_gstreamer.gst.loop import init_gstreamer
from nvr_gstreamer.testing import gerrors

pytestmark = pytest.mark.integration


def test_the_plain_domains_and_codes_are_gstreamers() -> None:
    init_gstreamer()
    from gi.repository import Gst

    for name in ("CoreError", "LibraryError", "ResourceError", "StreamError"):
        real, plain = getattr(Gst, name), getattr(gerrors, name)
        assert plain.quark() == _quark_name(real)
        codes = [n for n in dir(plain) if n.isupper() and not n.startswith("_")]
        assert codes
        for code in codes:
            assert getattr(plain, code) == int(getattr(real, code)), (name, code)


def _quark_name(domain: object) -> str:
    from gi.repository import GLib

    return str(GLib.quark_to_string(domain.quark()))  # type: ignore[attr-defined]


def test_a_real_glib_error_becomes_the_same_fault() -> None:
    init_gstreamer()
    from gi.repository import GLib, Gst

    from nvr_gstreamer.gst.faults import fault_from_gerror

    real = GLib.Error.new_literal(
        Gst.ResourceError.quark(),
        "Could not open rtsp://admin:pw1@cam/1",
        int(Gst.ResourceError.OPEN_READ),
    )
    plain = gerrors.GError.new_literal(
        gerrors.ResourceError.quark(), "Could not open rtsp://admin:pw1@cam/1",
        gerrors.ResourceError.OPEN_READ,
    )  # fmt: skip
    expected = fault_from_error(Origin.SOURCE, "source", plain, "debug", "")
    assert fault_from_gerror(Origin.SOURCE, "source", real, "debug") == expected
    assert "pw1" not in expected.message
