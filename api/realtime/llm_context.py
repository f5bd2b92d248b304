"""What the LLM sees for a response: instructions, the user's emotion as a note, and the bounded conversation.

Conversation items become chat messages: user audio by its transcript, assistant audio by what was heard of it,
function calls and their outputs as tool messages. History is bounded (oldest messages go first, the system prompt
always stays) so a long session neither grows without limit nor overflows a small model's context.
"""

from __future__ import annotations

import json
from typing import Any

from engines.base import EmotionScores

DEFAULT_INSTRUCTIONS = (
    "You are a friendly voice assistant. Answer in one to three short spoken sentences, with no lists, code or "
    "markdown."
)
# Emotions worth telling the model about; "neutral"/"other"/"unknown" add nothing but tokens.
_NOTEWORTHY = frozenset({"angry", "disgusted", "fearful", "happy", "sad", "surprised"})


def emotion_note(emotion: EmotionScores | None, tags: frozenset[str]) -> str | None:
    """A short system note about how the user sounded (or None when there is nothing to say)."""
    if emotion is None or not emotion.speech or emotion.label not in _NOTEWORTHY:
        return None
    confidence = emotion.score_map.get(emotion.label, 0.0)
    note = (
        f"The user sounds {emotion.label} (confidence {confidence:.2f}, valence {emotion.valence:+.2f}, "
        f"arousal {emotion.arousal:+.2f}). Let that shape your tone."
    )
    if tags:
        note += " You may use at most one of these sound tags where it fits: " + " ".join(f"[{t}]" for t in sorted(tags))
    return note


def _text_of(item: dict[str, Any]) -> str:
    parts = []
    for part in item.get("content") or []:
        text = part.get("text") if part.get("text") is not None else part.get("transcript")
        if text:
            parts.append(text)
    return " ".join(parts).strip()


def item_messages(item: dict[str, Any]) -> list[dict[str, Any]]:
    kind = item.get("type")
    if kind == "message":
        text = _text_of(item)
        role = item.get("role", "user")
        return [{"role": role, "content": text}] if text else []
    if kind == "function_call":
        call = {"id": item.get("call_id"), "type": "function",
                "function": {"name": item.get("name", ""), "arguments": item.get("arguments") or "{}"}}
        return [{"role": "assistant", "content": None, "tool_calls": [call]}]
    if kind == "function_call_output":
        output = item.get("output")
        return [{"role": "tool", "tool_call_id": item.get("call_id"),
                 "content": output if isinstance(output, str) else json.dumps(output)}]
    return []


def build_messages(
    items: list[dict[str, Any]],
    instructions: str | None,
    *,
    note: str | None = None,
    max_messages: int = 24,
    max_chars: int = 6000,
) -> list[dict[str, Any]]:
    system = (instructions or DEFAULT_INSTRUCTIONS).strip()
    if note:
        system += "\n\n" + note
    history = [m for item in items for m in item_messages(item)]
    kept: list[dict[str, Any]] = []
    chars = 0
    for message in reversed(history):
        size = len(message.get("content") or "") + len(json.dumps(message.get("tool_calls") or ""))
        if kept and (len(kept) >= max_messages or chars + size > max_chars):
            break
        kept.append(message)
        chars += size
    kept.reverse()
    while kept and kept[0]["role"] == "tool":  # a tool answer without its call confuses every chat template
        kept.pop(0)
    return [{"role": "system", "content": system}, *kept]
