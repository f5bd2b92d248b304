"""Decoding appended audio (pcm16, G.711) and the 16 kHz buffer's timeline."""

from __future__ import annotations

import base64
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():  # the reference G.711 codec; deprecated in 3.11, gone in 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

from api.realtime.events import RealtimeProtocolError
from api.realtime.input_buffer import ALAW, RATE, ULAW, InputAudioBuffer, decode_append


def test_g711_tables_match_the_reference_decoder() -> None:
    codes = bytes(range(256))
    ulaw = np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2") / 32768.0
    alaw = np.frombuffer(audioop.alaw2lin(codes, 2), "<i2") / 32768.0
    np.testing.assert_allclose(ULAW, ulaw, atol=1e-6)
    np.testing.assert_allclose(ALAW, alaw, atol=1e-6)


def test_pcm16_decode_and_errors() -> None:
    pcm = (np.array([0, 16384, -32768], "<i2")).tobytes()
    out = decode_append(base64.b64encode(pcm).decode(), "pcm16", max_chars=1000, event_id=None)
    np.testing.assert_allclose(out, [0.0, 0.5, -1.0])
    with pytest.raises(RealtimeProtocolError, match="base64"):
        decode_append("***", "pcm16", max_chars=1000, event_id=None)
    with pytest.raises(RealtimeProtocolError) as info:
        decode_append("A" * 2000, "pcm16", max_chars=1000, event_id="e1")
    assert info.value.code == "input_audio_buffer_append_too_large" and info.value.event_id == "e1"


def test_buffer_resamples_to_16k_and_keeps_a_timeline() -> None:
    buffer = InputAudioBuffer("pcm16", max_seconds=10)
    for _ in range(10):  # one second of 24 kHz audio in 100 ms appends
        buffer.append(np.full(2400, 0.1, np.float32))
    assert 0 <= RATE - buffer.end < 400  # the streaming resampler holds back ~20 ms until more audio comes
    buffer.drop_until(8000)
    assert buffer.start == 8000 and len(buffer) == buffer.end - 8000
    assert len(buffer.samples(9000, 10000)) == 1000
    buffer.clear()
    assert len(buffer) == 0 and buffer.start == buffer.end


def test_buffer_limit() -> None:
    buffer = InputAudioBuffer("g711_ulaw", max_seconds=1)
    buffer.append(np.zeros(7000, np.float32))
    with pytest.raises(RealtimeProtocolError) as info:
        buffer.append(np.zeros(2000, np.float32))
    assert info.value.code == "input_audio_buffer_full"


def test_reads_equal_a_plain_array_and_a_tail_read_joins_only_the_tail() -> None:
    """Random appends, drops and reads against one numpy array holding the same audio. Reading the newest audio
    (what a streaming transcriber asks for on every append) joins only the chunks it covers."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        buffer, reference = InputAudioBuffer("pcm16", 600), np.zeros(0, np.float32)
        for step in range(int(rng.integers(2, 30))):
            action = int(rng.integers(0, 3)) if step >= 2 else 0
            if action == 0:
                new = buffer.append(rng.standard_normal(int(rng.integers(0, 3000))).astype(np.float32) * 0.1)
                reference = np.concatenate([reference, new])
            elif action == 1:
                position = buffer.start + int(rng.integers(0, len(buffer) + 5))
                reference = reference[min(max(0, position - buffer.start), len(buffer)) :]
                buffer.drop_until(position)
            else:
                start = buffer.start + int(rng.integers(-5, len(buffer) + 5))
                end = None if rng.random() < 0.5 else buffer.start + int(rng.integers(-5, len(buffer) + 5))
                lo = max(0, start - buffer.start)
                hi = max(lo, (end if end is not None else buffer.end) - buffer.start)
                np.testing.assert_array_equal(buffer.samples(start, end), reference[lo:hi])
            assert len(buffer) == len(reference)
        np.testing.assert_array_equal(buffer.samples(), reference)

    buffer = InputAudioBuffer("pcm16", 600)
    for _ in range(50):
        buffer.append(np.full(2400, 0.1, np.float32))  # 100 ms each at 24 kHz
    old = list(buffer._chunks[:-3])
    assert len(buffer.samples(buffer.end - 3 * 1600)) == 3 * 1600
    assert all(a is b for a, b in zip(buffer._chunks, old)) and len(buffer._chunks) == len(old) + 1
