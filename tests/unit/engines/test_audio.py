"""Audio decoding: rates, channels, windows of long audio with quiet cuts, and refusals."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from engines.audio import decode_audio, iter_audio_windows, refuse_declared_overlong
from engines.base import InvalidAudioError
from tests.support.speech import encode


def _tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(("fmt", "rate"), [("wav", 8000), ("wav", 44100), ("flac", 48000), ("mp3", 22050), ("ogg", 48000)])
def test_resampled_to_16k_with_right_duration(fmt: str, rate: int) -> None:
    audio = decode_audio(io.BytesIO(encode(_tone(2.0, rate), fmt, rate=rate)))
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.float32
    assert abs(audio.duration - 2.0) < 0.08
    assert 0.2 < np.abs(audio.samples).max() <= 0.35


def test_stereo_is_averaged_not_summed() -> None:
    audio = decode_audio(io.BytesIO(encode(_tone(1.0, 16000), "wav", rate=16000, channels=2)))
    assert np.abs(audio.samples).max() == pytest.approx(0.3, abs=0.01)


def test_long_audio_comes_in_windows_cut_at_quiet_points() -> None:
    rate = 16000
    # 100 s of tone with 300 ms gaps every 4.3 s (the cut search looks 5 s back): cuts must land in gaps, and
    # nothing is lost or duplicated.
    parts = []
    for _ in range(23):
        parts += [_tone(4.0, rate), np.zeros(int(0.3 * rate), np.float32)]
    samples = np.concatenate(parts)
    windows = list(iter_audio_windows(io.BytesIO(encode(samples, "wav", rate=rate)), window_seconds=30.0))
    assert len(windows) >= 3
    assert sum(len(w.samples) for w in windows) == len(samples)
    for previous, window in zip(windows, windows[1:]):
        assert window.offset == pytest.approx(previous.offset + previous.duration)
        assert np.abs(window.samples[:160]).max() < 0.01, "window boundary fell inside the tone"
    assert all(w.duration <= 35.0 for w in windows)


def test_max_duration_refused() -> None:
    with pytest.raises(InvalidAudioError, match="limit is 2 seconds"):
        decode_audio(io.BytesIO(encode(_tone(3.0, 16000), "wav", rate=16000)), max_seconds=2.0)


@pytest.mark.parametrize("fmt", ["flac", "mp3", "ogg"])
def test_a_compressed_file_of_long_silence_is_refused_at_once(fmt: str) -> None:
    """Ten minutes of silence compress to a few KB; with a one-minute limit the refusal costs no decoding."""
    data = encode(np.zeros(600 * 16000, np.float32), fmt, rate=16000)
    assert len(data) < 2_000_000
    started = time.process_time()
    with pytest.raises(InvalidAudioError, match="limit is 60 seconds"):
        decode_audio(io.BytesIO(data), max_seconds=60)
    assert time.process_time() - started < 0.5


@pytest.mark.parametrize("data", [b"", b"RIFF", b"not audio at all" * 20])
def test_undecodable(data: bytes) -> None:
    with pytest.raises(InvalidAudioError):
        decode_audio(io.BytesIO(data))


def test_refusal_from_the_header_alone_rewinds_and_lets_bad_files_through() -> None:
    data = io.BytesIO(encode(np.zeros(600 * 16000, np.float32), "flac", rate=16000))
    with pytest.raises(InvalidAudioError, match="limit is 60 seconds"):
        refuse_declared_overlong(data, 60)
    assert data.tell() == 0
    short = io.BytesIO(encode(_tone(1.0, 16000), "wav", rate=16000))
    refuse_declared_overlong(short, 60)
    assert short.tell() == 0 and decode_audio(short).duration == pytest.approx(1.0, abs=0.01)
    refuse_declared_overlong(io.BytesIO(b"not audio"), 60)  # the decode says what is wrong with it
