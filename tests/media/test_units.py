"""Sans-I/O pieces: framing, rewriting, VP8 headers, speaking detection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.control import MAX_FRAME, FrameDecoder, FrameError, encode_frame
from media.rewriter import RtpRewriter
from media.speaking import HANGOVER_S, SpeakingDetector
from media.vp8 import is_keyframe_start, keyframe_size


@given(
    st.lists(
        st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**64 - 1), max_size=4),
        max_size=5,
    ),
    st.integers(min_value=1, max_value=7),
)
def test_frames_survive_any_chunking(messages: list[dict[str, int]], chunk: int) -> None:
    data = b"".join(encode_frame(m) for m in messages)
    decoder = FrameDecoder()
    out = []
    for i in range(0, len(data), chunk):
        decoder.receive_data(data[i : i + chunk])
        out.extend(decoder.messages())
    assert out == messages


def test_oversize_frame_is_refused_before_buffering() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameError):
        decoder.receive_data((MAX_FRAME + 1).to_bytes(4, "big"))


@given(st.integers(0, 65535), st.integers(0, 2**32 - 1), st.lists(st.integers(1, 3), max_size=50))
def test_rewriter_output_is_contiguous(seq0: int, ts0: int, steps: list[int]) -> None:
    rewriter = RtpRewriter(ssrc=5, payload_type=96)
    first = rewriter.rewrite(seq0, ts0)
    assert first is not None
    seq, ts, out_seq = seq0, ts0, first.sequence_number
    for step in steps:
        seq, ts = (seq + step) % 65536, (ts + 3000) % 2**32
        out = rewriter.rewrite(seq, ts)
        assert out is not None and out.ssrc == 5 and out.payload_type == 96
        assert out.sequence_number == (out_seq + step) % 65536
        out_seq = out.sequence_number


def test_rewriter_rebase_hides_the_gap() -> None:
    rewriter = RtpRewriter(ssrc=1, payload_type=111)
    a = rewriter.rewrite(100, 1000)
    rewriter.rebase()
    b = rewriter.rewrite(500, 1000 + 960 * 50)
    assert a is not None and b is not None
    assert b.sequence_number == (a.sequence_number + 1) % 65536
    assert (b.timestamp - a.timestamp) % 2**32 == 960 * 50
    assert rewriter.rewrite(499, 1000) is None  # from before the rebase


def test_vp8_keyframe_detection() -> None:
    key = bytes([0x90, 0x80, 0x05, 0x00]) + b"\x9d\x01\x2a"
    delta = bytes([0x90, 0x80, 0x05, 0x01])
    middle = bytes([0x80, 0x80, 0x05, 0x00])
    assert is_keyframe_start(key)
    assert not is_keyframe_start(delta)
    assert not is_keyframe_start(middle)
    frame = b"\x00\x00\x00\x9d\x01\x2a" + (640).to_bytes(2, "little") + (180).to_bytes(2, "little")
    assert keyframe_size(frame) == (640, 180)


def test_speaking_hysteresis() -> None:
    detector = SpeakingDetector()
    now = 0.0
    changes = []
    for level in [127] * 5 + [30] * 5 + [127] * 60:
        now += 0.02
        change = detector.update(now, level, 60)
        if change is not None:
            changes.append((round(now, 2), change))
    assert [c for _, c in changes] == [True, False]
    assert changes[1][0] - changes[0][0] > HANGOVER_S


def test_speaking_falls_back_to_opus_packet_size() -> None:
    detector = SpeakingDetector()
    assert [detector.update(i * 0.02, None, 80) for i in range(3)][-1] is True


def test_watchdog_reports_output_without_input_only_after_a_whole_window() -> None:
    from media.watchdog import MIN_PACKETS, WINDOW_S, Verdict, Watchdog

    dog = Watchdog()
    key = object()
    assert dog.observe(key, 0.0, 0, 0, True) is Verdict.FLOWING
    assert dog.observe(key, WINDOW_S / 2, MIN_PACKETS, 0, True) is Verdict.FLOWING
    assert dog.observe(key, WINDOW_S, MIN_PACKETS, 0, True) is Verdict.STALLED
    assert dog.observe(key, 2 * WINDOW_S, 2 * MIN_PACKETS, 0, True) is Verdict.STILL_STALLED
    # Output moving again: flowing, and the count of stalls starts over.
    assert dog.observe(key, 3 * WINDOW_S, 3 * MIN_PACKETS, 5, True) is Verdict.FLOWING
    assert dog.observe(key, 4 * WINDOW_S, 4 * MIN_PACKETS, 5, True) is Verdict.STALLED


def test_watchdog_ignores_quiet_input_and_times_when_output_cannot_move() -> None:
    from media.watchdog import MIN_PACKETS, WINDOW_S, Verdict, Watchdog

    dog = Watchdog()
    key = object()
    dog.observe(key, 0.0, 0, 0, True)
    # A publisher's RTCP alone (a packet a second) is not input that should go out.
    assert dog.observe(key, WINDOW_S, 3, 0, True) is Verdict.FLOWING
    # Not live (muted, not connected yet): the window starts again.
    assert dog.observe(key, 2 * WINDOW_S, 3 + MIN_PACKETS, 0, False) is Verdict.FLOWING
    assert dog.observe(key, 2.5 * WINDOW_S, 3 + 2 * MIN_PACKETS, 0, True) is Verdict.FLOWING
