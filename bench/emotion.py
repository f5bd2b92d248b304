"""Emotion latency per engine for 5 s and 30 s clips: POST /v1/emotion over HTTP, and the in-process path.

Rows:
- `voxloop-prosody-lexicon` over HTTP, json and verbose_json (segments): decode, Silero VAD, Whisper tiny.en for the
  words, Praat pitch, VADER; per segment again for verbose_json.
- `voxloop-prosody-lexicon` in-process with the transcript given (`EmotionService.recognize(audio, transcript)`,
  what the realtime loop calls on a committed turn): no HTTP, no ASR.
- `emotion2vec_plus_base` served from a TINY random-weight model (embed 32, one block) when the `funasr` extra is
  installed: it times the adapter and FunASR's pipeline, not the real 90M/300M networks.

Run: `.venv/bin/python bench/emotion.py [--repeats N]`. The first request per row warms up and is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import summary, voxloop_server  # noqa: E402
from tests.support.speech import PIPER_RATE, encode, silence, speak  # noqa: E402

SENTENCES = [
    "I am furious, this is the third time the delivery has been late!",
    "Honestly, I just feel tired and a little sad about the whole thing.",
    "Oh wow, that is wonderful news, thank you so much!",
    "The meeting has been moved to Thursday at ten in the morning.",
]


def make_clip(seconds: float) -> tuple[np.ndarray, str]:
    """Piper speech, sentences separated by short pauses, cut to exactly `seconds`."""
    parts, texts = [], []
    while sum(len(p) for p in parts) < seconds * PIPER_RATE:
        for sentence in SENTENCES:
            parts += [speak(sentence), silence(0.4)]
            texts.append(sentence)
    samples = np.concatenate(parts)[: int(seconds * PIPER_RATE)]
    return samples, " ".join(texts)


def http_times(url: str, data: bytes, model: str, fmt: str, repeats: int) -> list[float]:
    times = []
    with httpx.Client(base_url=url, timeout=600) as client:
        for i in range(repeats + 1):
            started = time.perf_counter()
            form = {"model": model, "response_format": fmt}
            r = client.post("/v1/emotion", files={"file": ("clip.wav", data)}, data=form)
            r.raise_for_status()
            if i:
                times.append(time.perf_counter() - started)
    return times


async def in_process_times(samples: np.ndarray, transcript: str, repeats: int) -> list[float]:
    from api.settings import Settings
    from engines.base import AudioBuffer
    from voxloop.app import build_services

    services = build_services(Settings())
    audio = AudioBuffer(samples, PIPER_RATE)
    times = []
    try:
        for i in range(repeats + 1):
            started = time.perf_counter()
            await services.emotion.recognize(audio, transcript)
            if i:
                times.append(time.perf_counter() - started)
    finally:
        await services.manager.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # FunASR's import turns root logging on at INFO
    clips = {f"{s}s": make_clip(s) for s in (5, 30)}
    print(f"CPU, Whisper tiny.en int8 for the baseline's words; repeats {args.repeats} after one warm-up\n")

    env: dict[str, str] = {}
    has_funasr = importlib.util.find_spec("funasr") is not None
    with tempfile.TemporaryDirectory() as tmp:
        if has_funasr:
            from tests.support.tiny_emotion2vec import build

            env["VOXLOOP_EMOTION__EMOTION2VEC"] = json.dumps({"emotion2vec_plus_base": str(build(Path(tmp) / "e2v"))})
        with voxloop_server(env) as url:
            for name, (samples, _) in clips.items():
                data = encode(samples, "wav")
                for fmt in ("json", "verbose_json"):
                    times = http_times(url, data, "voxloop-prosody-lexicon", fmt, args.repeats)
                    print(f"{name:4s} voxloop-prosody-lexicon HTTP {fmt:12s} {summary(times)}")
                if has_funasr:
                    for fmt in ("json", "verbose_json"):
                        times = http_times(url, data, "emotion2vec_plus_base", fmt, args.repeats)
                        print(f"{name:4s} emotion2vec (TINY model) HTTP {fmt:12s} {summary(times)}")
    if not has_funasr:
        print("emotion2vec: skipped, the `funasr` extra is not installed")
    for name, (samples, transcript) in clips.items():
        times = asyncio.run(in_process_times(samples, transcript, args.repeats))
        print(f"{name:4s} voxloop-prosody-lexicon in-process, transcript given   {summary(times)}")


if __name__ == "__main__":
    main()
