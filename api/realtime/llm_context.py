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
    # Words, not scores: small models read numbers in a system note back to the user.
    strength = "clearly" if emotion.score_map.get(emotion.label, 0.0) >= 0.6 else "somewhat"
    note = f"The user sounds {strength} {emotion.label}. Let that shape your tone; do not mention it."
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
    max_messages: int = 12,
    max_chars: int = 3000,
) -> list[dict[str, Any]]:
    """System prompt, bounded history, and the emotion note last, after the newest user message.

    The prompt is kept stable from turn to turn so the LLM's prefix cache (llama.cpp and vLLM both reuse the
    longest common prefix) skips re-reading it: the note, which changes every turn and is not kept in the history,
    goes after the newest user message (placed before it, the next turn's prompt would differ from this one's at
    that user message, and the last question and reply were re-read every turn); old history is dropped half a
    window at a time rather than one message per turn (which would shift the whole prefix).
    """
    system = {"role": "system", "content": (instructions or DEFAULT_INSTRUCTIONS).strip()}
    history = [m for item in items for m in item_messages(item)]
    step = max(1, max_messages // 2)
    start = 0
    while len(history) - start > max_messages or (
        _chars(history[start:]) > max_chars and len(history) - start > 1
    ):
        start = min(start + step, len(history) - 1)
    kept = history[start:]
    while kept and kept[0]["role"] == "tool":  # a tool answer without its call confuses every chat template
        kept.pop(0)
    if note:
        kept.append({"role": "system", "content": note})
    return [system, *kept]


def _chars(messages: list[dict[str, Any]]) -> int:
    return sum(len(m.get("content") or "") + len(json.dumps(m.get("tool_calls") or "")) for m in messages)
