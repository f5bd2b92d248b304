"""Transcription latency and throughput: voxloop over HTTP vs raw faster-whisper, same model and beam, one run.

Prints, for a ≥ 30 s Piper clip and the 120 s LibriVox reading of tests/e2e/test_human_speech.py: raw
WhisperModel.transcribe, raw BatchedInferencePipeline and voxloop at concurrency 1 (latency; the three alternate run
by run, so a shifting load hits each alike), voxloop at concurrency 4 (throughput in audio-seconds per second), the
WER and word count of each, and the ratios.
Run: `.venv/bin/python bench/transcribe.py [--repeats N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
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
from tests.support.wer import normalise, wer  # noqa: E402

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


def librivox_clip() -> tuple[bytes, float, str]:
    """The 120 s LibriVox reading of tests/e2e/test_human_speech.py (real human speech, offline)."""
    from tests.e2e.test_human_speech import LINES, ORDER, RATE, _reading

    samples, _ = _reading()
    return encode(samples, "wav", rate=RATE), len(samples) / RATE, " ".join(LINES[line][2] for line in ORDER)


def _words(text: str) -> int:
    return len(normalise(text.replace("-", " ")).split())


async def _voxloop(client: httpx.AsyncClient, data: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    r = await client.post("/v1/audio/transcriptions", files={"file": ("clip.wav", data)}, data={"model": "whisper-1"})
    r.raise_for_status()
    return time.perf_counter() - started, r.json()["text"]


def bench_clip(name: str, data: bytes, duration: float, reference: str, url: str, raws: dict, repeats: int) -> None:
    """Raw plain, raw batched and voxloop c=1 alternate run by run (fair under a shifting load); then c=4."""
    times: dict[str, list[float]] = {k: [] for k in [*raws, "voxloop c=1"]}
    texts: dict[str, str] = {}

    async def rounds() -> tuple[list[float], float, str]:
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            await _voxloop(client, data)  # warm-up, not timed
            for k, run in raws.items():
                run(data)
            for _ in range(repeats):
                for k, run in raws.items():
                    started = time.perf_counter()
                    texts[k] = run(data)
                    times[k].append(time.perf_counter() - started)
                t, texts["voxloop c=1"] = await _voxloop(client, data)
                times["voxloop c=1"].append(t)
            wall = time.perf_counter()
            lat4, text4 = [], ""
            for _ in range(repeats):
                results = await asyncio.gather(*[_voxloop(client, data) for _ in range(4)])
                lat4 += [t for t, _ in results]
                text4 = results[0][1]
            return lat4, time.perf_counter() - wall, text4

    lat4, wall4, text4 = asyncio.run(rounds())
    print(f"\n{name}: {duration:.1f} s")
    for k, ts in times.items():
        print(f"{k:34s} {summary(ts)}  WER {wer(reference, texts[k]):.3f}  words {_words(texts[k])}")
    throughput = 4 * repeats * duration / wall4
    print(f"{'voxloop c=4':34s} {summary(lat4)}  WER {wer(reference, text4):.3f}  words {_words(text4)}  "
          f"throughput {throughput:.1f} audio-s/s")
    batched = statistics.median(times["raw BatchedInferencePipeline"])
    print(f"p50 voxloop c=1 / raw batched: {statistics.median(times['voxloop c=1']) / batched:.3f}; "
          f"raw batched sequential {duration / batched:.1f} audio-s/s vs voxloop c=4 {throughput:.1f}; "
          f"reference words {_words(reference)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beam", type=int, default=5)
    args = parser.parse_args()
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    model = WhisperModel(str(tiny_en_dir()), device="cpu", compute_type="int8")
    batched = BatchedInferencePipeline(model)

    def text(segments) -> str:
        return "".join(s.text for s in segments).strip()

    raws = {  # decoding the file counts, as it does for the server
        "raw WhisperModel (vad_filter)": lambda d: text(model.transcribe(
            decode_audio(io.BytesIO(d)).samples, beam_size=args.beam, language="en", vad_filter=True)[0]),
        "raw BatchedInferencePipeline": lambda d: text(batched.transcribe(
            decode_audio(io.BytesIO(d)).samples, beam_size=args.beam, language="en", batch_size=8)[0]),
    }
    print(f"Whisper tiny.en int8, beam {args.beam}, load average {os.getloadavg()}")
    env = {"VOXLOOP_WHISPER__BEAM_SIZE": str(args.beam)}
    with voxloop_server(env) as url:
        for name, clip in [("Piper clip", make_clip()), ("LibriVox reading", librivox_clip())]:
            bench_clip(name, *clip, url, raws, args.repeats)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
