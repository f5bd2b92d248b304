"""Voice-to-voice latency over WebRTC beside the WebSocket, on one `voxloop serve`, in the same run (issue 21).

Two sessions stay open side by side, one per transport, with the same settings (server VAD, 500 ms silence,
Whisper transcription, replies capped at 40 tokens), and take turns with the same spoken Piper questions: a WebSocket
turn, then a WebRTC turn, and so on. Each client speaks in real time (the WebSocket client appends 40 ms chunks; the
WebRTC client is an aiortc peer whose microphone track sends 20 ms Opus frames: tests/support/webrtc_client.py).
Measured on the client's clock from the end of the question's speech:
- first event: the WebSocket's first `response.output_audio.delta`; WebRTC's `output_audio_buffer.started` (the
  server's first reply frame went out on the track);
- audible: when the first sample above 2 % of full scale reaches the client's ears. WebRTC: the first such decoded
  frame off the reply track (through Opus, RTP, the client's jitter buffer). WebSocket: the deltas played as they
  arrive from the first one on (that sample's offset into the reply after the first delta's arrival, or its own
  delta's arrival if that came later).
The WebRTC turn also waits for `output_audio_buffer.stopped` (the reply plays in real time) so the next question is
not a barge-in. Run: `.venv/bin/python bench/webrtc.py [--turns 10]`; it prints `uptime`'s load with the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import websockets  # noqa: E402

from bench.common import summary, voxloop_server, wait_ready  # noqa: E402
from bench.voice_loop import QUESTIONS, pcm24, send_live  # noqa: E402
from tests.support.speech import PIPER_RATE, silence, speak  # noqa: E402
from tests.support.webrtc_client import AUDIBLE, Caller  # noqa: E402

RATE = 24_000
SILENCE_MS = 500
LEAD_S, TAIL_S = 0.2, 1.5
SESSION = {"type": "realtime", "instructions": "Answer in one short sentence.", "max_output_tokens": 40,
           "audio": {"input": {"transcription": {"model": "whisper-1"},
                               "turn_detection": {"type": "server_vad", "silence_duration_ms": SILENCE_MS}}}}


def _first_audible(pcm: bytes) -> int | None:
    loud = np.flatnonzero(np.abs(np.frombuffer(pcm, "<i2")) > AUDIBLE * 32768)
    return int(loud[0]) if loud.size else None


async def ws_turn(ws, question: str) -> dict[str, float]:
    speech = speak(question)
    pcm = pcm24(np.concatenate([silence(LEAD_S), speech, silence(TAIL_S)]))
    started = time.monotonic()
    speech_end = started + LEAD_S + len(speech) / PIPER_RATE

    sender = asyncio.create_task(send_live(ws, pcm, started))
    deltas: list[tuple[float, bytes]] = []
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 180))
        if event["type"] == "response.output_audio.delta":
            deltas.append((time.monotonic(), base64.b64decode(event["delta"])))
        elif event["type"] == "response.done":
            break
        elif event["type"] == "error":
            raise RuntimeError(event["error"])
    await sender
    assert deltas, "no audio in the reply"
    first = deltas[0][0]
    offset, audible = 0, None
    for arrived, chunk in deltas:
        at = _first_audible(chunk)
        if at is not None:
            audible = max(first + (offset + at) / RATE, arrived)
            break
        offset += len(chunk) // 2
    assert audible is not None, "the reply was silent"
    return {"first_event": first - speech_end, "audible": audible - speech_end}


async def rtc_turn(caller: Caller, question: str) -> dict[str, float]:
    speech = speak(question)
    pcm = pcm24(np.concatenate([silence(LEAD_S), speech, silence(TAIL_S)]))
    mark = len(caller.events)
    ended = caller.mic.say(pcm, mark_at=int((LEAD_S + len(speech) / PIPER_RATE) * RATE) * 2)
    speech_end = await asyncio.wait_for(ended, 60)
    sound = caller.next_sound()
    done = await caller.until("response.done", 180, after=mark)
    if done["response"]["status"] != "completed":
        raise RuntimeError(f"the WebRTC reply ended {done['response']['status']}")
    started = await caller.until("output_audio_buffer.started", 60, after=mark)
    first = caller.arrivals[caller.events.index(started)]
    audible = await asyncio.wait_for(sound, 60)
    await caller.until("output_audio_buffer.stopped", 120, after=mark)
    return {"first_event": first - speech_end, "audible": audible - speech_end}


async def run(url: str, turns: int) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {"websocket": {}, "webrtc": {}}
    caller = Caller()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            answer = await http.post("/v1/realtime/calls", content=await caller.offer(),
                                     headers={"Content-Type": "application/sdp"})
            answer.raise_for_status()
            await caller.answer(answer.text)
        await asyncio.wait_for(caller.opened.wait(), 30)
        await caller.until("session.created", 30)
        caller.send({"type": "session.update", "session": SESSION})
        await caller.until("session.updated", 30)
        async with websockets.connect(url.replace("http", "ws") + "/v1/realtime?model=voxloop", max_size=None) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "session.update", "session": SESSION}))
            # One turn each first, not counted: the first turn of a session pays for what the warm-up left cold.
            await ws_turn(ws, QUESTIONS[-1])
            await rtc_turn(caller, QUESTIONS[-1])
            for i in range(turns):
                question = QUESTIONS[i % len(QUESTIONS)]
                for name, turn in (("websocket", ws_turn(ws, question)), ("webrtc", rtc_turn(caller, question))):
                    for key, value in (await turn).items():
                        results[name].setdefault(key, []).append(value)
                print(f"  turn {i + 1}: ws audible {results['websocket']['audible'][-1]:.3f}s, "
                      f"webrtc audible {results['webrtc']['audible'][-1]:.3f}s", flush=True)
    finally:
        await caller.pc.close()
    return results


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=10, help="turns per transport (alternating)")
    args = parser.parse_args()
    before = uptime()
    with voxloop_server() as url:
        wait_ready(url)
        results = asyncio.run(run(url, args.turns))
    after = uptime()
    print(f"voice-to-voice from the end of the question's speech, {SILENCE_MS} ms VAD silence, one server, "
          "turns alternating WebSocket / WebRTC:")
    for name, metrics in results.items():
        for key, values in metrics.items():
            print(f"  {name:9s} {key:11s} {summary(values)}")
    gap = [r - w for r, w in zip(results["webrtc"]["audible"], results["websocket"]["audible"], strict=True)]
    print(f"  webrtc - websocket, audible, per pair of turns: median {statistics.median(gap):+.3f}s")
    print(f"load before: {before}\nload after:  {after}")


if __name__ == "__main__":
    main()
