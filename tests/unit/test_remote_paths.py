"""Pure pieces of object storage: object keys (epoch and node in cluster mode) and the byte
ranges the API serves from the bucket."""

from __future__ import annotations

import pytest

from nvr_gstreamer.api.object_file import byte_range
from nvr_gstreamer.storage.remote import object_key


def test_a_single_recorder_keeps_the_folder_layout_and_a_node_adds_epoch_and_node() -> None:
    rel = "cam1/20261130/cam1_20261130_013446.mkv"
    assert object_key("", rel, None, None) == rel
    assert object_key("site-a/", rel, None, None) == "site-a/" + rel
    assert object_key("site-a/", rel, "n2", 7) == "site-a/e7/n2/" + rel
    # Two nodes, or two epochs of one node, never share a key.
    assert object_key("", rel, "n1", 7) != object_key("", rel, "n2", 7)
    assert object_key("", rel, "n1", 7) != object_key("", rel, "n1", 8)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 1000, None),
        ("bytes=0-99", 1000, (0, 99)),
        ("bytes=900-", 1000, (900, 999)),
        ("bytes=900-5000", 1000, (900, 999)),  # clipped to the end
        ("bytes=-100", 1000, (900, 999)),  # the last 100 bytes
        ("bytes=-5000", 1000, (0, 999)),
        (" bytes=5-5 ", 1000, (5, 5)),
        ("bytes=999-999", 1000, (999, 999)),
    ],
)
def test_a_range_is_served_as_asked(
    header: str | None, size: int, expected: tuple[int, int] | None
) -> None:
    assert byte_range(header, size) == expected


@pytest.mark.parametrize(
    "header",
    ["bytes=1000-", "bytes=50-10", "bytes=-0", "bytes=-", "items=0-5", "bytes=0-5,10-20", "x"],
)
def test_a_range_that_cannot_be_served_is_refused(header: str) -> None:
    with pytest.raises(ValueError):
        byte_range(header, 1000)
