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
