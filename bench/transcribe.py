"""Transcription latency and throughput: voxloop over HTTP vs raw faster-whisper, same model and beam, one run.

Prints, for a ≥ 30 s spoken clip: raw WhisperModel.transcribe, raw BatchedInferencePipeline, voxloop at
concurrency 1 (latency) and 4 (throughput in audio-seconds per second), WER of each, and the ratios.
Run: `.venv/bin/python bench/transcribe.py [--repeats N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import summary, voxloop_server  # noqa: E402
from engines.audio import decode_audio  # noqa: E402
from engines.whisper import tiny_en_dir  # noqa: E402
from tests.support.speech import PIPER_RATE, encode, silence, speak  # noqa: E402
from tests.support.wer import wer  # noqa: E402

SENTENCES = [
    "Good morning everyone, and thank you for joining the quarterly planning meeting.",
    "We will start with a short review of last quarter, then move on to the roadmap.",
    "Revenue grew by twelve percent, mostly from the new subscription plans.",
    "Customer support tickets went down after we shipped the redesigned onboarding flow.",
    "The mobile team finished the offline mode, which users have been asking about for a year.",
    "Next quarter we want to focus on reliability, performance and the public API.",
    "Please send your questions to the planning channel before Friday afternoon.",
    "After the break, each team lead will present their goals and the main risks they see.",
]


def make_clip(min_seconds: float = 30.0) -> tuple[bytes, float, str]:
    parts, texts = [silence(0.5)], []
    while sum(len(p) for p in parts) / PIPER_RATE < min_seconds:
        for sentence in SENTENCES:
            parts += [speak(sentence), silence(0.6)]
            texts.append(sentence)
    samples = np.concatenate(parts)
    return encode(samples, "wav"), len(samples) / PIPER_RATE, " ".join(texts)


def raw_runs(data: bytes, beam: int, repeats: int) -> dict[str, tuple[list[float], str]]:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    model = WhisperModel(str(tiny_en_dir()), device="cpu", compute_type="int8")
    batched = BatchedInferencePipeline(model)
    out: dict[str, tuple[list[float], str]] = {}
    for name, run in {
        "raw WhisperModel (vad_filter)": lambda a: model.transcribe(a, beam_size=beam, language="en", vad_filter=True),
        "raw BatchedInferencePipeline": lambda a: batched.transcribe(a, beam_size=beam, language="en", batch_size=8),
    }.items():
        times, text = [], ""
        for _ in range(repeats + 1):  # the first run warms up and is not timed
            started = time.perf_counter()
            audio = decode_audio(io.BytesIO(data)).samples  # decoding counts, as it does for the server
            segments, _ = run(audio)
            text = "".join(s.text for s in segments).strip()
            times.append(time.perf_counter() - started)
        out[name] = (times[1:], text)
    return out


async def voxloop_runs(url: str, data: bytes, concurrency: int, rounds: int) -> tuple[list[float], float, str]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def one() -> tuple[float, str]:
            started = time.perf_counter()
            r = await client.post("/v1/audio/transcriptions", files={"file": ("clip.wav", data)}, data={"model": "whisper-1"})
            r.raise_for_status()
            return time.perf_counter() - started, r.json()["text"]

        await one()  # load and warm up
        latencies, text = [], ""
        wall_started = time.perf_counter()
        for _ in range(rounds):
            results = await asyncio.gather(*[one() for _ in range(concurrency)])
            latencies += [t for t, _ in results]
            text = results[0][1]
        return latencies, time.perf_counter() - wall_started, text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beam", type=int, default=5)
    args = parser.parse_args()
    data, duration, reference = make_clip()
    print(f"clip: {duration:.1f} s of Piper speech, Whisper tiny.en int8, beam {args.beam}, 2-core CPU\n")

    raw = raw_runs(data, args.beam, args.repeats)
    for name, (times, text) in raw.items():
        print(f"{name:34s} {summary(times)}  WER {wer(reference, text):.3f}")
    raw_batched = min(raw["raw BatchedInferencePipeline"][0])

    env = {"VOXLOOP_WHISPER__BEAM_SIZE": str(args.beam)}
    with voxloop_server(env) as url:
        lat1, _, text1 = asyncio.run(voxloop_runs(url, data, 1, args.repeats))
        lat4, wall4, text4 = asyncio.run(voxloop_runs(url, data, 4, args.repeats))
    print(f"{'voxloop c=1':34s} {summary(lat1)}  WER {wer(reference, text1):.3f}")
    throughput = 4 * args.repeats * duration / wall4
    print(f"{'voxloop c=4':34s} {summary(lat4)}  WER {wer(reference, text4):.3f}  throughput {throughput:.1f} audio-s/s")
    print(f"\nratio voxloop c=1 best / raw batched best: {min(lat1) / raw_batched:.3f}  (target <= 1.05)")
    print(f"raw batched sequential throughput: {duration / raw_batched:.1f} audio-s/s; voxloop c=4: {throughput:.1f} (target >= 24)")


if __name__ == "__main__":
    main()
