"""The WebRTC live view's bookkeeping (loop thread) on fake media, and the signalling messages:
a branch per viewer while the camera streams H.264, "unsupported" otherwise, and every way a
session ends (viewer leaves, camera restarts, branch fails) without touching the camera."""

from __future__ import annotations

import logging

import pytest

from nvr_gstreamer.camera.webrtc import (
    Answer,
    BadMessage,
    Ended,
    IceCandidate,
    Offer,
    ServerSignal,
    parse_browser_message,
    signal_json,
)
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.core.logsetup import CameraLogger
from nvr_gstreamer.engine.webrtc_view import WebRtcSession, WebRtcView
from nvr_gstreamer.testing.fake_media import (
    FakeBranchHost,
    FakeMedia,
    FakeScheduler,
    FakeWebRtcBranch,
)


def make() -> tuple[WebRtcView, FakeMedia, FakeBranchHost, list[ServerSignal]]:
    media = FakeMedia(FakeScheduler(FakeClock()))
    view = WebRtcView(media, CameraLogger(logging.getLogger("test"), "cam1"))
    return view, media, FakeBranchHost(), []


def test_a_viewer_gets_a_branch_once_the_camera_streams_h264() -> None:
    view, media, pipeline, said = make()
    view.add_viewer(1, said.append)
    assert media.webrtc_branches == [] and view.viewers == 1  # waits for the camera
    view.pipeline_streaming(pipeline, "h264")
    (branch,) = media.webrtc_branches
    assert pipeline.attached == [branch] and view.branches == 1 and view.owns(branch)
    view.from_browser(1, Answer("v=0\r\n..."))
    view.from_browser(1, IceCandidate("candidate:1 1 UDP 1 10.0.0.2 5000 typ host", 0))
    assert branch.answers == ["v=0\r\n..."] and len(branch.candidates) == 1
    view.remove_viewer(1)
    assert pipeline.detached == [branch] and view.branches == 0 and said == []
    assert view.owns(branch)  # a late fault of the leaving branch is still its own


def test_another_codec_is_unsupported_at_once() -> None:
    view, media, pipeline, said = make()
    view.pipeline_streaming(pipeline, "h265")
    view.add_viewer(1, said.append)
    assert said == [Ended("no WebRTC for h265", unsupported=True)]
    assert media.webrtc_branches == [] and view.viewers == 0
    view.pipeline_going()  # reconnecting: the codec it had still answers
    again: list[ServerSignal] = []
    view.add_viewer(2, again.append)
    assert again == [Ended("no WebRTC for h265", unsupported=True)]


def test_the_camera_restarting_ends_the_sessions_and_waiting_viewers_wait() -> None:
    view, media, pipeline, said = make()
    view.pipeline_streaming(pipeline, "h264")
    view.add_viewer(1, said.append)
    view.pipeline_going()
    assert said == [Ended("the camera's stream restarted")] and view.viewers == 0
    assert pipeline.detached == []  # the pipeline's release finishes its branches
    later: list[ServerSignal] = []
    view.add_viewer(2, later.append)
    assert later == [] and view.viewers == 1  # waits for the next pipeline
    view.pipeline_streaming(FakeBranchHost(), "h264")
    assert view.branches == 1


def test_a_failing_branch_ends_only_its_own_session() -> None:
    view, media, pipeline, said = make()
    other: list[ServerSignal] = []
    view.pipeline_streaming(pipeline, "h264")
    view.add_viewer(1, said.append)
    view.add_viewer(2, other.append)
    failing: FakeWebRtcBranch = media.webrtc_branches[0]
    view.branch_failed(failing, "dtls error")
    assert said == [Ended("the live stream failed")] and other == []
    assert pipeline.detached == [failing] and view.branches == 1


def test_a_bad_answer_ends_the_session() -> None:
    view, _media, pipeline, said = make()
    view.pipeline_streaming(pipeline, "h264")
    view.add_viewer(1, said.append)
    view.from_browser(1, Answer("not sdp"))
    assert said == [Ended("the answer is not valid SDP")] and view.branches == 0


def test_the_session_handle_hops_onto_the_loop() -> None:
    scheduler = FakeScheduler(FakeClock())
    view, _media, pipeline, said = make()
    view.pipeline_streaming(pipeline, "h264")
    view.add_viewer(7, said.append)
    session = WebRtcSession(scheduler, view, 7)
    session.close()
    assert view.viewers == 1  # not yet: on the loop
    scheduler.run(0.0)
    assert view.viewers == 0 and len(pipeline.detached) == 1


def test_signals_as_json() -> None:
    assert signal_json(Offer("v=0")) == {"type": "offer", "sdp": "v=0"}
    assert signal_json(IceCandidate("candidate:x", 0)) == {
        "type": "ice", "candidate": "candidate:x", "sdpMLineIndex": 0,
    }  # fmt: skip
    assert signal_json(Ended("why", unsupported=True)) == {"type": "unsupported", "reason": "why"}
    assert signal_json(Ended("why")) == {"type": "error", "reason": "why"}


def test_browser_messages_are_checked() -> None:
    assert parse_browser_message('{"type": "answer", "sdp": "v=0\\r\\n"}') == Answer("v=0\r\n")
    ice = '{"type": "ice", "candidate": "a=candidate:1 1 udp 1 1.2.3.4 5 typ host", "sdpMLineIndex": 0}'
    assert parse_browser_message(ice) == IceCandidate("candidate:1 1 udp 1 1.2.3.4 5 typ host", 0)
    assert parse_browser_message('{"type": "ice", "candidate": "", "sdpMLineIndex": 0}') is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("nope", "not JSON"),
        ("[1]", "expected a JSON object"),
        ("{}", "no type"),
        ('{"type": "hello"}', "unknown message type 'hello'"),
        ('{"type": "answer"}', "answer without an SDP text"),
        ('{"type": "ice", "candidate": 3}', "ice needs a candidate string"),
        ('{"type": "ice", "candidate": "c", "sdpMLineIndex": -1}', "ice needs a candidate"),
        ('"' + "x" * 70_000 + '"', "message longer than"),
    ],
)
def test_bad_browser_messages_say_why(text: str, why: str) -> None:
    with pytest.raises(BadMessage, match=why):
        parse_browser_message(text)
