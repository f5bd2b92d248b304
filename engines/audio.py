"""Audio in: decode whatever users upload with PyAV (FFmpeg), downmix, and resample with soxr.

Decoding streams: frames are converted and resampled as they arrive, and long inputs come out as windows of
bounded length, so an hour of audio never sits in memory at its source rate, and transcription can start on the
first window while later ones are still being decoded.
"""

from __future__ import annotations

import io
import logging
import wave
from collections.abc import Iterator
from typing import BinaryIO

import av
import numpy as np
import soxr

from engines.base import AudioBuffer, InvalidAudioError

logger = logging.getLogger(__name__)

WHISPER_RATE = 16_000
_CUT_SEARCH_SECONDS = 5.0  # look this far back from a window's end for a quiet place to cut
_CUT_FRAME_SECONDS = 0.1


class _MonoFloatStream:
    """Turns PyAV frames of any layout and rate into mono float32 at `rate`, streaming."""

    def __init__(self, rate: int):
        self.rate = rate
        self._source_rate: int | None = None
        self._downmix: av.AudioResampler | None = None
        self._resample: soxr.ResampleStream | None = None

    def _reset(self, source_rate: int) -> None:
        self._source_rate = source_rate
        # PyAV (libswresample) only converts the sample format to planar float; channels are averaged here (not
        # summed at -3 dB as FFmpeg's downmix does, which can clip), and the rate change is soxr's.
        self._downmix = av.AudioResampler(format="fltp", rate=source_rate)
        self._resample = (
            None if source_rate == self.rate else soxr.ResampleStream(source_rate, self.rate, 1, dtype="float32")
        )

    def push(self, frame: av.AudioFrame) -> np.ndarray:
        out = [self._finish_rate_change()] if frame.sample_rate != self._source_rate and self._source_rate else []
        if frame.sample_rate != self._source_rate:
            self._reset(frame.sample_rate)
        assert self._downmix is not None
        for converted in self._downmix.resample(frame):
            out.append(self._rate(converted.to_ndarray().mean(axis=0)))
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def _rate(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = samples.astype(np.float32, copy=False)
        return samples if self._resample is None else self._resample.resample_chunk(samples, last=last)

    def _finish_rate_change(self) -> np.ndarray:
        return self.flush()

    def flush(self) -> np.ndarray:
        if self._downmix is None:
            return np.zeros(0, np.float32)
        tail = [self._rate(f.to_ndarray().mean(axis=0)) for f in self._downmix.resample(None)]
        tail.append(self._rate(np.zeros(0, np.float32), last=True))
        return np.concatenate(tail)


def _quietest_cut(samples: np.ndarray, rate: int) -> int:
    """Index near the end of `samples` with the least energy, so a window boundary does not split a word."""
    frame = int(_CUT_FRAME_SECONDS * rate)
    span = min(len(samples), int(_CUT_SEARCH_SECONDS * rate))
    tail = samples[len(samples) - span :]
    usable = (len(tail) // frame) * frame
    if usable == 0:
        return len(samples)
    energy = np.square(tail[:usable].reshape(-1, frame)).mean(axis=1)
    quietest = int(np.argmin(energy))
    return len(samples) - span + quietest * frame + frame // 2


def iter_audio_windows(
    source: BinaryIO | str,
    *,
    rate: int = WHISPER_RATE,
    window_seconds: float = 600.0,
    max_seconds: float | None = None,
) -> Iterator[AudioBuffer]:
    """Decode `source` and yield consecutive windows of at most `window_seconds` (plus the cut search slack).

    Raises `InvalidAudioError` for anything that is not decodable audio, has no audio stream, holds no samples,
    or runs longer than `max_seconds`.
    """
    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise InvalidAudioError(_describe_open_failure(source, exc)) from exc
    with container:
        if not container.streams.audio:
            raise InvalidAudioError("The file has no audio stream.")
        stream = container.streams.audio[0]
        # Refuse before decoding when the container says how long it is: a 40 KB FLAC can hold hours of silence,
        # and decoding it to find out takes a minute of CPU. A container that does not say (or lies) is still
        # stopped by the running count below, as soon as it passes the limit.
        _check_declared_length(container, stream, max_seconds)
        converter = _MonoFloatStream(rate)
        pending: list[np.ndarray] = []
        pending_len = 0
        emitted = 0  # samples already yielded
        window = int(min(window_seconds, 1e7) * rate)
        try:
            for frame in container.decode(stream):
                chunk = converter.push(frame)
                if not len(chunk):
                    continue
                pending.append(chunk)
                pending_len += len(chunk)
                _check_length(emitted + pending_len, rate, max_seconds)
                if pending_len >= window + int(_CUT_SEARCH_SECONDS * rate):
                    joined = np.concatenate(pending)
                    cut = _quietest_cut(joined[: window + int(_CUT_SEARCH_SECONDS * rate)], rate)
                    yield AudioBuffer(joined[:cut], rate, offset=emitted / rate)
                    emitted += cut
                    pending, pending_len = [joined[cut:]], len(joined) - cut
            pending.append(converter.flush())
        except av.FFmpegError as exc:
            raise InvalidAudioError(f"The audio could not be decoded ({exc.strerror or exc}).") from exc
        rest = np.concatenate(pending) if pending else np.zeros(0, np.float32)
        _check_length(emitted + len(rest), rate, max_seconds)
        if emitted == 0 and len(rest) == 0:
            raise InvalidAudioError("The file contains no audio samples.")
        if len(rest):
            yield AudioBuffer(rest, rate, offset=emitted / rate)


def refuse_declared_overlong(source: BinaryIO, max_seconds: float | None) -> None:
    """Raise InvalidAudioError when the container states a duration over `max_seconds`; reads only headers, then
    rewinds. A service calls it before leasing a model, so a bomb costs neither a decode nor a model load. A file
    that cannot be opened passes here: the decode reports it."""
    if max_seconds is None:
        return
    try:
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            if container.streams.audio:
                _check_declared_length(container, container.streams.audio[0], max_seconds)
    except (av.FFmpegError, ValueError, OSError):
        pass
    finally:
        source.seek(0)


def decode_audio(source: BinaryIO | str, *, rate: int = WHISPER_RATE, max_seconds: float | None = None) -> AudioBuffer:
    """The whole input as one buffer (for short clips)."""
    windows = list(iter_audio_windows(source, rate=rate, window_seconds=float("inf"), max_seconds=max_seconds))
    if len(windows) == 1:
        return windows[0]
    return AudioBuffer(np.concatenate([w.samples for w in windows]), rate)


def declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """The duration the container or the stream header states, or None when neither does."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _check_declared_length(
    container: av.container.InputContainer, stream: av.AudioStream, max_seconds: float | None
) -> None:
    declared = declared_seconds(container, stream)
    if max_seconds is not None and declared is not None and declared > max_seconds:
        raise InvalidAudioError(
            f"The audio is {declared:.0f} seconds long (as its container states); "
            f"the limit is {max_seconds:.0f} seconds."
        )


def _check_length(samples: int, rate: int, max_seconds: float | None) -> None:
    if max_seconds is not None and samples > max_seconds * rate:
        raise InvalidAudioError(f"The audio is longer than the limit of {max_seconds:.0f} seconds.")


def _describe_open_failure(source: BinaryIO | str, exc: Exception) -> str:
    size = None
    if hasattr(source, "seek") and hasattr(source, "tell"):
        try:
            source.seek(0, 2)
            size = source.tell()
        except OSError:
            pass
    if size == 0:
        return "The file is empty."
    return "The file is not a supported audio format or is corrupt (flac, m4a, mp3, mp4, mpeg, mpga, ogg, wav, webm)."


def pcm16_to_float(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def wav_bytes(audio: AudioBuffer) -> bytes:
    """16-bit PCM WAV in memory: lossless at speech rates, and every OpenAI-compatible server decodes it."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(audio.sample_rate)
        out.writeframes(float_to_pcm16(audio.samples))
    return buf.getvalue()


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples.astype(np.float32, copy=False), from_rate, to_rate, quality="HQ")
