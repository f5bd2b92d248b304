"""Streaming encoders: every format decodes in FFmpeg to the right length; WAV streams with an open-ended header."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest

from api.http.audio_encode import SPEECH_RATE, SpeechAudioPipeline, StreamEncoder, streaming_wav_header


def tone(seconds: float, rate: int = SPEECH_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def decoded_seconds(data: bytes, fmt: str) -> float:
    if fmt == "pcm":
        return len(data) / 2 / SPEECH_RATE
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(f.samples for f in container.decode(stream)) / stream.rate


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_streamed_chunks_concatenate_to_a_decodable_file(fmt: str) -> None:
    encoder = StreamEncoder(fmt)  # type: ignore[arg-type]
    samples = tone(2.0)
    pieces = [encoder.encode(samples[i : i + 4800]) for i in range(0, len(samples), 4800)]
    pieces.append(encoder.finish())
    # Bytes flow before the end (a streaming encoder), not all at finish().
    assert sum(len(p) for p in pieces[:-1]) > 0.5 * sum(len(p) for p in pieces)
    assert decoded_seconds(b"".join(pieces), fmt) == pytest.approx(2.0, abs=0.1)


def test_wav_header_declares_unknown_length() -> None:
    header = streaming_wav_header()
    assert len(header) == 44 and header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", header[4:8])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", header[40:44])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", header[24:28])[0] == SPEECH_RATE


@pytest.mark.parametrize("tempo", [0.5, 1.5, 4.0])
def test_pipeline_resamples_and_changes_tempo(tempo: float) -> None:
    pipeline = SpeechAudioPipeline("pcm", tempo=tempo)
    source = tone(2.0, 22_050)
    data = b"".join(pipeline.push(source[i : i + 2205], 22_050) for i in range(0, len(source), 2205))
    data += pipeline.finish()
    assert len(data) / 2 / SPEECH_RATE == pytest.approx(2.0 / tempo, rel=0.05)


def test_tiny_slices_through_resampler_and_tempo_lose_nothing() -> None:
    # The resampler returns nothing for some small slices; an empty frame must not reach FFmpeg's tempo filter.
    pipeline = SpeechAudioPipeline("pcm", tempo=4.0)
    source = tone(2.0, 22_050)
    sizes = [7, 64, 5512, 1, 300]
    data, start, i = b"", 0, 0
    while start < len(source):
        data += pipeline.push(source[start : start + sizes[i % len(sizes)]], 22_050)
        start, i = start + sizes[i % len(sizes)], i + 1
    data += pipeline.finish()
    assert len(data) / 2 / SPEECH_RATE == pytest.approx(2.0 / 4.0, rel=0.05)


@pytest.mark.parametrize(
    ("fmt", "magic"),
    [("mp3", b"\xff"), ("aac", b"\xff"), ("opus", b"OggS"), ("flac", b"fLaC"), ("wav", b"RIFF")],
)
def test_streams_start_with_the_bytes_browsers_sniff(fmt: str, magic: bytes) -> None:
    encoder = StreamEncoder(fmt)  # type: ignore[arg-type]
    data = encoder.encode(tone(0.5)) + encoder.finish()
    assert data.startswith(magic)
    if fmt == "opus":
        assert b"OpusHead" in data[:64]
    if fmt in ("mp3", "aac"):  # a frame sync word first: no ID3 tag or Xing frame that a stream cannot rewrite
        assert data[1] & 0xF0 in (0xF0, 0xE0)
