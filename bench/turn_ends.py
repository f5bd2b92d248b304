"""Eager turn ends: how often a speaker who pauses mid-sentence is cut off, and how soon finished turns end.

One realtime session per mode on `voxloop serve` (embedded models), fed by a live microphone at real-time pace
(bench/voice_loop.Microphone): 20 utterances with a pause inserted mid-sentence (0.6-0.9 s, which with Piper's own
silence at the edges of the two halves is 0.75-1.15 s, the figure printed beside each; after "and", "but",
"because", a comma, a dependent clause or a verb), then 10 finished ones, 2.5 s of silence between utterances, no
replies (`create_response: false`). The sentences are not the ones the finished-sentence rules were tuned on
(tests/unit/api/realtime/test_turn_detection.py). A paused utterance is cut off when a turn ends inside it (a
`speech_stopped` whose `audio_end_ms` lies before the utterance's speech end); a finished one's end delay is
`audio_end_ms` minus its speech end, in audio time.

Modes: `semantic_vad` eagerness high; `server_vad` 1000 ms with the server's eager opt-in at 300 ms
(VOXLOOP_REALTIME__SERVER_VAD_EAGER_MS); plain `server_vad` 500 ms (OpenAI's default) for comparison.
Run: `.venv/bin/python bench/turn_ends.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import websockets  # noqa: E402

from bench.common import voxloop_server, wait_ready  # noqa: E402
from bench.voice_loop import Microphone, pcm24  # noqa: E402
from tests.support.realtime import speech_bounds_ms  # noqa: E402
from tests.support.speech import PIPER_RATE, silence, speak  # noqa: E402

PAUSED = [
    ("I was going to call you but", "my phone died."),
    ("We should leave early because", "the roads are busy."),
    ("Before we start,", "let me find my notes."),
    ("I bought bread and", "some cheese for the party."),
    ("The hotel was nice,", "but the food was cold."),
    ("If you have time,", "could you help me move the table?"),
    ("My brother lives in Berlin and", "he works as a teacher."),
    ("I think", "we need a bigger kitchen."),
    ("She was late because", "her train was delayed."),
    ("Once the rain stops,", "we can walk to the park."),
    ("I like apples,", "oranges and bananas."),
    ("The meeting is on Monday,", "not on Tuesday."),
    ("He opened the door and", "the cat ran outside."),
    ("To be honest,", "I did not enjoy the film."),
    ("We could take the bus,", "or we could walk."),
    ("After lunch I went to the bank and", "then I went home."),
    ("The best part of the trip was", "the boat ride."),
    ("I need milk, eggs and", "a loaf of bread."),
    ("While I was cooking,", "the power went out."),
    ("Can you remind me", "to call the dentist tomorrow?"),
]
FINISHED = [
    "What is the capital of Spain?", "I would like a cup of tea.", "Thank you very much.", "How old are you?",
    "The film starts at eight.", "Please turn off the lights.", "Where is the nearest station?",
    "I had a great day today.", "Can you play some music?", "That sounds good to me.",
]
PAUSES = (0.6, 0.7, 0.8, 0.9)
GAP = 2.5
MODES = {
    "semantic_vad high": ({"type": "semantic_vad", "eagerness": "high"}, {}),
    "server_vad 1000 ms + eager 300 ms": ({"type": "server_vad", "silence_duration_ms": 1000},
                                          {"VOXLOOP_REALTIME__SERVER_VAD_EAGER_MS": "300"}),
    "server_vad 500 ms (plain)": ({"type": "server_vad", "silence_duration_ms": 500}, {}),
}


def utterances() -> list[tuple[str, np.ndarray, bool]]:
    """(text, 22.05 kHz samples, paused mid-sentence)."""
    out = []
    for i, (head, tail) in enumerate(PAUSED):
        first, second, pause = speak(head), speak(tail), PAUSES[i % len(PAUSES)]
        # The silence heard: the inserted pause plus Piper's own silence after the head and before the tail.
        edges_ms = len(first) * 1000 // PIPER_RATE - speech_bounds_ms(first)[1] + speech_bounds_ms(second)[0]
        heard = pause + edges_ms / 1000
        out.append((f"{head} [{heard:.2f} s] {tail}", np.concatenate([first, silence(pause), second]), True))
    out += [(text, speak(text), False) for text in FINISHED]
    return out


async def run_mode(url: str, turn_detection: dict, said: list[tuple[str, np.ndarray, bool]]) -> list[dict]:
    async with websockets.connect(url.replace("http", "ws") + "/v1/realtime?model=voxloop", max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "transcription": {"model": "whisper-1"}, "turn_detection": {**turn_detection, "create_response": False}}}}}))
        mic = Microphone(ws)
        sender = asyncio.create_task(mic.run())
        stops: list[int] = []
        transcripts: list[str] = []

        async def receive() -> None:
            async for message in ws:
                event = json.loads(message)
                if event["type"] == "input_audio_buffer.speech_stopped":
                    stops.append(event["audio_end_ms"])
                elif event["type"] == "conversation.item.input_audio_transcription.completed":
                    transcripts.append(event["transcript"])

        receiver = asyncio.create_task(receive())
        rows = []
        try:
            await asyncio.sleep(1.0)
            for text, samples, paused in said:
                start_ms = mic.sent_ms
                await mic.say(pcm24(samples))
                speech_end = start_ms + speech_bounds_ms(samples, PIPER_RATE)[1]
                await asyncio.sleep(GAP)
                rows.append({"text": text, "paused": paused, "start": start_ms, "speech_end": speech_end})
            await asyncio.sleep(1.0)
        finally:
            sender.cancel()
            receiver.cancel()
    for row in rows:
        inside = [s for s in stops if row["start"] <= s < row["speech_end"]]
        after = [s for s in stops if row["speech_end"] <= s < row["speech_end"] + GAP * 1000]
        row["cut"] = bool(inside)
        row["end_delay"] = (after[0] - row["speech_end"]) / 1000 if after else None
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    args = parser.parse_args()
    print("load:", [round(v, 2) for v in os.getloadavg()])
    said = utterances()
    for name in args.modes:
        turn_detection, env = MODES[name]
        with voxloop_server(env) as url:
            wait_ready(url)
            rows = asyncio.run(run_mode(url, turn_detection, said))
        paused = [r for r in rows if r["paused"]]
        cut = [r["text"] for r in paused if r["cut"]]
        delays = [r["end_delay"] for r in rows if not r["paused"] and r["end_delay"] is not None]
        print(f"== {name} (load {os.getloadavg()[0]:.2f})")
        print(f"  paused utterances cut off: {len(cut)} of {len(paused)} ({len(cut) / len(paused):.0%})")
        for text in cut:
            print(f"    cut: {text}")
        if delays:
            print(f"  finished utterances, speech end -> turn end (audio time): p50 {statistics.median(delays):.3f}s "
                  f"max {max(delays):.3f}s (n={len(delays)} of {len(FINISHED)})")
    print("load:", [round(v, 2) for v in os.getloadavg()])


if __name__ == "__main__":
    main()
