"""A long spoken conversation in one realtime session (the official SDK, real engines): every turn is answered.

Twelve questions one after another, each asked once the previous reply's `response.done` arrived, as people talk.
Each gets its own response with audio and a transcript, completed (or cut at the chat's token cap, as a sampled
reply now and then is); the last turns as well as the first (the conversation window drops old messages on the
way, and the LLM's cache is reused and shifted). No timings here: they are in bench/voice_loop.py.
"""

from __future__ import annotations

import base64

import openai
import pytest

from tests.support.realtime import Events, stream_audio, to_pcm16_24k
from tests.support.speech import silence, speak

pytestmark = pytest.mark.models

QUESTIONS = [
    "What is the capital of France?", "And how many people live there?", "Tell me a fun fact about cats.",
    "Why is the sky blue?", "What should I cook tonight?", "How far away is the moon?",
    "Can you recommend a good book?", "What is two plus two?", "How do bees make honey?",
    "What is a good name for a dog?", "Is coffee good for you?", "Thanks, that is all for today.",
]
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}


async def test_twelve_turns_each_get_a_spoken_reply(server_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="sk-local", max_retries=0)
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={
            "type": "realtime", "instructions": "Answer in one short sentence.",
            "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": VAD}}})
        await events.until("session.updated")
        answered = []
        for question in QUESTIONS:
            pcm = to_pcm16_24k(speak(question))
            await stream_audio(conn, to_pcm16_24k(silence(0.3)) + pcm + to_pcm16_24k(silence(1.0)), realtime=False)
            done = (await events.until("response.done", timeout=180))["response"]
            audio = b"".join(base64.b64decode(e["delta"]) for e in events.of("response.output_audio.delta")
                             if e["response_id"] == done["id"])
            transcript = "".join(part.get("transcript") or "" for item in done["output"]
                                 for part in item.get("content") or [])
            # A sampled reply that runs to the chat's token cap is spoken up to it and ends `incomplete`
            # (max_output_tokens): answered all the same. Cancelled or failed is not.
            status = done["status"]
            if status == "incomplete":
                assert done["status_details"]["reason"] == "max_output_tokens", done
                status = "completed"
            answered.append((question, status, len(audio), transcript))
        assert [a[1] for a in answered] == ["completed"] * len(QUESTIONS), answered
        assert all(size > 24_000 * 2 * 0.3 and text.strip() for _, _, size, text in answered), answered
        assert len({e["response"]["id"] for e in events.of("response.done")}) == len(QUESTIONS)
        user_turns = events.of("conversation.item.input_audio_transcription.completed")
        assert len(user_turns) == len(QUESTIONS)
