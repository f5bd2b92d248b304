"""The objects in a response's server events (response, items, usage), and how beta clients name and shape them.

Order (GA; the HF speech-to-speech contract): `response.created` → per output item `response.output_item.added`
(+ `conversation.item.added`) → `response.content_part.added` → deltas → the `.done`s in reverse → `response.done`
listing exactly the items announced.
"""

from __future__ import annotations

import copy
from typing import Any

# GA name -> beta name, for the events whose names changed at GA.
BETA_NAMES = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
}
_BETA_CONTENT = {"output_audio": "audio", "output_text": "text"}


def to_beta(event: dict[str, Any]) -> dict[str, Any]:
    """Rename a GA response event for a beta client, and give items the beta content types."""
    event["type"] = BETA_NAMES.get(event["type"], event["type"])
    if "item" in event:
        event["item"] = beta_item(event["item"])
    if isinstance(event.get("response"), dict):
        response = event["response"]
        response["output"] = [beta_item(i) for i in response.get("output") or []]
        response["modalities"] = response.pop("output_modalities", None)
        audio = response.pop("audio", None) or {}
        response["voice"] = (audio.get("output") or {}).get("voice")
        response["output_audio_format"] = "pcm16"
    return event


def beta_item(item: dict[str, Any]) -> dict[str, Any]:
    item = copy.deepcopy(item)
    for part in item.get("content") or []:
        part["type"] = _BETA_CONTENT.get(part.get("type"), part.get("type"))
    return item


def response_object(
    response_id: str,
    status: str,
    output: list[dict[str, Any]],
    *,
    modalities: list[str],
    voice: str | dict[str, str],
    status_details: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    conversation: bool = True,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "realtime.response",
        "status": status,
        "status_details": status_details,
        "output": output,
        "output_modalities": modalities,
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": voice}},
        "conversation_id": "auto" if conversation else None,
        "usage": usage,
        "metadata": metadata,
    }


def message_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant", "status": status,
            "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {"id": item_id, "object": "realtime.item", "type": "function_call", "status": status, "call_id": call_id,
            "name": name, "arguments": arguments}


def usage_object(input_tokens: int, output_text_tokens: int, output_audio_tokens: int) -> dict[str, Any]:
    output = output_text_tokens + output_audio_tokens
    return {
        "total_tokens": input_tokens + output,
        "input_tokens": input_tokens,
        "output_tokens": output,
        "input_token_details": {"text_tokens": input_tokens, "audio_tokens": 0, "cached_tokens": 0},
        "output_token_details": {"text_tokens": output_text_tokens, "audio_tokens": output_audio_tokens},
    }
