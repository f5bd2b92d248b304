"""A realtime conversation as a new user has it: one session, a live microphone, questions one after another.

The client streams 40 ms chunks at real-time pace without pause (silence between turns, as a microphone does) to
`voxloop serve` with server VAD (500 ms silence), and asks each question 0.8 s after the previous reply's
`response.done`; replies have the embedded LLM's own length (no max_output_tokens). Per turn: end of speech → first
reply audio, the server's stage stamps (response.done metadata, relative to the VAD's end of turn), the route and
whether the emotion was ready; a turn with no `response.done` within 25 s is reported as such (and the next
question is asked anyway, as a person would).

`--roots A B`: servers running the code of two checkouts, alternated round by round in the same run (the machine's
load is shared by both), e.g. `--roots /work/main .` for before/after. The raw libraries' floor from
bench/voice_loop.py is printed beside it.
Run: `.venv/bin/python bench/conversation.py [--turns 12] [--rounds 2] [--roots A B]`.
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

import websockets  # noqa: E402

from bench.common import ROOT, voxloop_server, wait_ready  # noqa: E402
from bench.voice_loop import pcm24, raw_floor  # noqa: E402
from tests.support.speech import speak  # noqa: E402

QUESTIONS = [
    "What is the capital of France?",
    "And how many people live there?",
    "Tell me a fun fact about cats.",
    "Why is the sky blue?",
    "What should I cook tonight?",
    "How far away is the moon?",
    "Can you recommend a good book?",
    "What is two plus two?",
    "How do bees make honey?",
    "What's a good name for a dog?",
    "Is coffee good for you?",
    "Thanks, that is all for today.",
]
CHUNK_MS = 40
CHUNK_BYTES = 24_000 * 2 * CHUNK_MS // 1000
SILENCE_MS = 500
GAP_SECONDS = 0.8
DONE_TIMEOUT = 25.0


class Microphone:
    """Sends 40 ms chunks at real-time pace forever: queued speech when there is some, silence otherwise."""

    def __init__(self, ws) -> None:
        self._ws = ws
        self._pending = bytearray()
        self.speech_end: asyncio.Future[float] | None = None

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


async def conversation(url: str, turns: int) -> list[dict]:
    rows: list[dict] = []
    speech = {q: pcm24(speak(q)) for q in QUESTIONS}
    async with websockets.connect(url.replace("http", "ws") + "/v1/realtime?model=voxloop", max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "instructions": "Answer in one to three short spoken sentences.",
            "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": {
                "type": "server_vad", "silence_duration_ms": SILENCE_MS}}}}}))
        mic = Microphone(ws)
        sender = asyncio.create_task(mic.run())
        events: asyncio.Queue[dict] = asyncio.Queue()

        async def receive() -> None:
            async for message in ws:
                events.put_nowait(json.loads(message))

        receiver = asyncio.create_task(receive())
        try:
            await asyncio.sleep(1.0)
            for i in range(turns):
                spoken = mic.say(speech[QUESTIONS[i % len(QUESTIONS)]])
                end = await spoken
                row: dict = {"turn": i + 1, "v2v": None, "done": False}
                deadline = end + DONE_TIMEOUT
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        event = await asyncio.wait_for(events.get(), left)
                    except TimeoutError:
                        break
                    if event["type"] == "response.output_audio.delta" and row["v2v"] is None:
                        row["v2v"] = time.monotonic() - end
                    elif event["type"] == "response.done":
                        row["done"] = True
                        row["status"] = event["response"]["status"]
                        row["meta"] = event["response"].get("metadata") or {}
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
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(values):.3f}s p95 {p95:.3f}s max {max(values):.3f}s (n={len(values)})"


def stages(meta: dict) -> dict[str, float]:
    out = {}
    for pair in meta.get("voxloop_timings_ms", "").split():
        name, value = pair.split("=")
        out[name] = float(value) / 1000
    return out


def report(name: str, rows: list[dict]) -> None:
    print(f"== {name}")
    for row in rows:
        meta = row.get("meta", {})
        stamp = " ".join(f"{k}={v:.2f}" for k, v in stages(meta).items())
        v2v = f"{row['v2v']:.3f}s" if row["v2v"] is not None else "no audio"
        print(f"  turn {row['turn']:2d}: {v2v:>9s} done={row['done']!s:5s} {row.get('status', '-'):9s} route={meta.get('voxloop_route', '-'):10s}"
              f" emotion={meta.get('voxloop_emotion_state', '-'):5s} {stamp}")
    v2v = [r["v2v"] for r in rows if r["v2v"] is not None]
    print(f"  end of speech -> first audio: {stats(v2v)}; first turn {rows[0]['v2v']}; "
          f"turns without response.done in {DONE_TIMEOUT:.0f}s: {sum(not r['done'] for r in rows)}")
    per_stage: dict[str, list[float]] = {}
    for row in rows:
        for k, v in stages(row.get("meta", {})).items():
            per_stage.setdefault(k, []).append(v)
    for k, values in per_stage.items():
        print(f"    {k:16s} {stats(values)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--roots", nargs="+", type=Path, default=[ROOT])
    parser.add_argument("--no-floor", action="store_true")
    args = parser.parse_args()
    print("load:", os.getloadavg())
    results: dict[str, list[dict]] = {str(r): [] for r in args.roots}
    for _ in range(args.rounds):
        for root in args.roots:
            with voxloop_server(root=root.resolve()) as url:
                wait_ready(url)
                rows = asyncio.run(conversation(url, args.turns))
            report(f"{root} (load {os.getloadavg()[0]:.2f})", rows)
            results[str(root)] += rows
    if args.rounds > 1 or len(args.roots) > 1:
        for root, rows in results.items():
            print(f"all rounds, {root}: {stats([r['v2v'] for r in rows if r['v2v'] is not None])}")
    if not args.no_floor:
        print("raw libraries alone (median, same run):", {k: round(v, 3) for k, v in raw_floor().items()})
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
