"""Audio out: synthesized float samples -> the six OpenAI speech formats, streamed chunk by chunk with PyAV.

Everything leaves at 24 kHz mono, as OpenAI's does (`pcm` is raw 24 kHz s16le). Containers are written to a
non-seekable sink, so each muxer emits bytes as it goes: mp3 frames, ADTS aac frames, Ogg pages (page
duration shortened to 100 ms), FLAC frames after a STREAMINFO header with unknown length. WAV gets a hand-written
header whose size fields say "unknown" (0xFFFFFFFF), which ffmpeg and browsers read as "until the end".
Speeds outside an engine's range are reached with FFmpeg's `atempo` (pitch kept).
"""

from __future__ import annotations

import struct
from typing import Literal

import av
import av.filter
import numpy as np
import soxr

from engines.audio import float_to_pcm16

SPEECH_RATE = 24_000
SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
# container, codec, container options
_CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    "mp3": ("mp3", "libmp3lame", {"write_xing": "0", "id3v2_version": "0"}),
    "opus": ("ogg", "libopus", {"page_duration": "100000"}),
    "aac": ("adts", "aac", {}),
    "flac": ("flac", "flac", {}),
}
_BITRATES = {"mp3": 64_000, "opus": 32_000, "aac": 64_000}
_UNKNOWN = 0xFFFFFFFF


def streaming_wav_header(rate: int = SPEECH_RATE, channels: int = 1) -> bytes:
    """A 44-byte PCM WAV header with the RIFF and data sizes set to 'unknown' for streaming."""
    block = channels * 2
    return (
        b"RIFF" + struct.pack("<I", _UNKNOWN) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
        + b"data" + struct.pack("<I", _UNKNOWN)
    )


class _Sink:
    """A write-only file object (no `seek`, so FFmpeg treats the output as a stream and never rewinds)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class StreamEncoder:
    """Mono float32 at `rate` in, encoded bytes out as soon as the muxer has them."""

    def __init__(self, fmt: SpeechFormat, rate: int = SPEECH_RATE):
        self.format = fmt
        self.rate = rate
        self._header_sent = False
        self._container = self._stream = None
        self._sink = _Sink()
        if fmt in _CODECS:
            container_fmt, codec, options = _CODECS[fmt]
            self._container = av.open(self._sink, "w", format=container_fmt, options=options)
            self._stream = self._container.add_stream(codec, rate=rate, layout="mono")
            if fmt in _BITRATES:
                self._stream.bit_rate = _BITRATES[fmt]
            self._pts = 0

    def encode(self, samples: np.ndarray) -> bytes:
        if self._container is None:
            head = b""
            if self.format == "wav" and not self._header_sent:
                head = streaming_wav_header(self.rate)
            self._header_sent = True
            return head + float_to_pcm16(samples)
        if not len(samples):
            return self._sink.take()
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32)[None, :], format="flt", layout="mono"
        )
        frame.sample_rate = self.rate
        frame.pts = self._pts
        self._pts += len(samples)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        if self._container is None:
            return self.encode(np.zeros(0, np.float32)) if not self._header_sent else b""
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
        self._header_sent = True
        return self._sink.take()

    def close(self) -> None:
        """Release FFmpeg state without flushing (after a failure or a cancelled stream)."""
        if self._container is not None:
            try:
                self._container.close()
            except av.FFmpegError:
                pass
            self._container = None


class Tempo:
    """Pitch-preserving speed change with FFmpeg's atempo, chained for factors beyond one filter's 0.5-2.0."""

    def __init__(self, factor: float, rate: int):
        self._graph = av.filter.Graph()
        node = self._graph.add_abuffer(format="flt", sample_rate=rate, layout="mono")
        first = node
        for step in _atempo_steps(factor):
            nxt = self._graph.add("atempo", f"{step:.6f}")
            node.link_to(nxt)
            node = nxt
        sink = self._graph.add("abuffersink")
        node.link_to(sink)
        self._graph.configure()
        self._src, self._rate, self._pts = first, rate, 0

    def process(self, samples: np.ndarray | None) -> np.ndarray:
        """Push samples (None at the end) and take what the filter has ready."""
        if samples is None:
            self._graph.push(None)
        elif not len(samples):  # FFmpeg refuses an empty frame (ENOMEM); a resampler's slice can come out empty
            return np.zeros(0, np.float32)
        else:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples, dtype=np.float32)[None, :], format="flt", layout="mono"
            )
            frame.sample_rate, frame.pts = self._rate, self._pts
            self._pts += len(samples)
            self._graph.push(frame)
        out = []
        while True:
            try:
                out.append(self._graph.pull().to_ndarray().reshape(-1))
            except (BlockingIOError, av.error.EOFError):
                break
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def _atempo_steps(factor: float) -> list[float]:
    steps = []
    while factor > 2.0:
        steps.append(2.0)
        factor /= 2.0
    while factor < 0.5:
        steps.append(0.5)
        factor /= 0.5
    return [*steps, factor]


class SpeechAudioPipeline:
    """Engine chunks (any rate) -> 24 kHz -> optional tempo -> encoded bytes. One per request, not thread-shared."""

    def __init__(self, fmt: SpeechFormat, tempo: float = 1.0):
        self.encoder = StreamEncoder(fmt, SPEECH_RATE)
        self._tempo = Tempo(tempo, SPEECH_RATE) if abs(tempo - 1.0) > 1e-3 else None
        self._resampler: soxr.ResampleStream | None = None
        self._source_rate: int | None = None
        self.samples_out = 0

    def push(self, samples: np.ndarray, rate: int) -> bytes:
        if rate != self._source_rate:
            tail = self._flush_resampler()
            self._source_rate = rate
            self._resampler = (
                None if rate == SPEECH_RATE else soxr.ResampleStream(rate, SPEECH_RATE, 1, dtype="float32")
            )
            head = self._emit(tail) if len(tail) else b""
        else:
            head = b""
        data = samples if self._resampler is None else self._resampler.resample_chunk(samples.astype(np.float32))
        return head + self._emit(data)

    def _flush_resampler(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, np.float32)
        return self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)

    def _emit(self, data: np.ndarray) -> bytes:
        if self._tempo is not None:
            data = self._tempo.process(data)
        self.samples_out += len(data)
        return self.encoder.encode(data) if len(data) else b""

    def finish(self) -> bytes:
        out = self._emit(self._flush_resampler())
        if self._tempo is not None:
            rest = self._tempo.process(None)
            self.samples_out += len(rest)
            out += self.encoder.encode(rest) if len(rest) else b""
        return out + self.encoder.finish()

    @property
    def seconds(self) -> float:
        return self.samples_out / SPEECH_RATE
