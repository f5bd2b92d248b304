"""The input audio buffer: decode appended audio (pcm16 24 kHz, G.711 μ-law/A-law 8 kHz) to 16 kHz float32.

Everything downstream (Silero VAD, Whisper) wants 16 kHz, so audio is resampled once, on arrival, with a streaming
soxr resampler (no clicks at chunk edges). The session timeline is counted in 16 kHz samples from the first
append of the session: `audio_start_ms`/`audio_end_ms` in events are positions on it. The buffer keeps only the
samples since the last commit or clear.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
import soxr

from api.realtime.events import RealtimeProtocolError
from api.realtime.session_config import PCM_RATE, AudioFormat

RATE = 16_000
G711_RATE = 8_000


def _ulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return (np.where(sign != 0, -magnitude, magnitude) / 32768.0).astype(np.float32)


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return (np.where(sign != 0, magnitude, -magnitude) / 32768.0).astype(np.float32)


ULAW = _ulaw_table()
ALAW = _alaw_table()


def encode_g711(samples: np.ndarray, fmt: AudioFormat) -> bytes:
    """Float samples (at 8 kHz) to G.711 bytes: the code whose decoded value is nearest, per sample."""
    table = ULAW if fmt == "g711_ulaw" else ALAW
    order = np.argsort(table, kind="stable")
    values = table[order]
    x = np.clip(samples.astype(np.float32), values[0], values[-1])
    upper = np.clip(np.searchsorted(values, x), 1, len(values) - 1)
    nearer = np.where(np.abs(values[upper - 1] - x) <= np.abs(values[upper] - x), upper - 1, upper)
    return order[nearer].astype(np.uint8).tobytes()


def source_rate(fmt: AudioFormat) -> int:
    return PCM_RATE if fmt == "pcm16" else G711_RATE


def decode_append(audio_b64: str, fmt: AudioFormat, *, max_chars: int, event_id: str | None) -> np.ndarray:
    """Base64 audio of the session's input format -> float32 at the format's own rate."""
    if len(audio_b64) > max_chars:
        raise RealtimeProtocolError(
            f"The audio in one append is {len(audio_b64)} base64 characters; the limit is {max_chars} (15 MiB). "
            "Send it in smaller appends.",
            code="input_audio_buffer_append_too_large", param="audio", event_id=event_id,
        )
    try:
        data = base64.b64decode(audio_b64, validate=True)
    except (binascii.Error, ValueError):
        raise RealtimeProtocolError("The 'audio' field is not valid base64.", code="invalid_value", param="audio",
                                    event_id=event_id) from None
    if fmt == "pcm16":
        if len(data) % 2:
            raise RealtimeProtocolError(
                "pcm16 audio must be 16-bit little-endian samples: the decoded length is odd. Check the session's "
                "input audio format.",
                code="invalid_audio_format", param="audio", event_id=event_id,
            )
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    table = ULAW if fmt == "g711_ulaw" else ALAW
    return table[np.frombuffer(data, dtype=np.uint8)]


class InputAudioBuffer:
    """16 kHz samples appended since the last commit/clear, on a session-wide timeline."""

    def __init__(self, fmt: AudioFormat, max_seconds: float):
        self._max_samples = int(max_seconds * RATE)
        self._chunks: list[np.ndarray] = []
        self._length = 0
        self.start = 0  # timeline position (16 kHz samples) of the first buffered sample
        self.set_format(fmt)

    def set_format(self, fmt: AudioFormat) -> None:
        self.format = fmt
        rate = source_rate(fmt)
        self._resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32", quality="HQ")

    @property
    def end(self) -> int:
        """Timeline position just past the last buffered sample (the total audio received so far)."""
        return self.start + self._length

    def __len__(self) -> int:
        return self._length

    def append(self, samples: np.ndarray, *, event_id: str | None = None) -> np.ndarray:
        """Resample and keep `samples`; returns the new 16 kHz samples (for the VAD)."""
        if self._length + len(samples) * RATE / source_rate(self.format) > self._max_samples:
            raise RealtimeProtocolError(
                f"The input audio buffer holds more than {self._max_samples / RATE:.0f} s; commit or clear it.",
                code="input_audio_buffer_full", param="audio", event_id=event_id,
            )
        out = self._resampler.resample_chunk(samples.astype(np.float32, copy=False))
        if len(out):
            self._chunks.append(out)
            self._length += len(out)
        return out

    def samples(self, start: int | None = None, end: int | None = None) -> np.ndarray:
        """Buffered samples between two timeline positions (clamped to what is buffered). Only the chunks from
        `start` on are joined, so reading the newest audio of a long turn does not copy the whole turn."""
        lo = max(0, (start if start is not None else self.start) - self.start)
        hi = max(lo, (end if end is not None else self.end) - self.start)
        first, offset = len(self._chunks), self._length  # the chunks from `first` on start at `offset`
        while first > 0 and offset > lo:
            first -= 1
            offset -= len(self._chunks[first])
        tail = self._chunks[first:]
        if not tail:
            return np.zeros(0, np.float32)
        joined = np.concatenate(tail) if len(tail) > 1 else tail[0]
        if len(tail) > 1:
            self._chunks[first:] = [joined]
        return joined[lo - offset : hi - offset]

    def drop_until(self, position: int) -> None:
        """Forget audio before a timeline position (after a commit, or old silence while waiting for speech)."""
        cut = min(max(0, position - self.start), self._length)
        if cut == 0:
            return
        rest = self.samples()[cut:]
        self._chunks = [rest] if len(rest) else []
        self._length -= cut
        self.start += cut

    def clear(self) -> None:
        self.drop_until(self.end)


def ms(samples: int) -> int:
    return int(round(samples * 1000 / RATE))


def samples_at(ms_: int) -> int:
    return ms_ * RATE // 1000
