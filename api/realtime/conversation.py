"""A session's conversation: items in order, in the GA item shape, with OpenAI's item errors.

Items are kept as plain dicts shaped like openai-python's `ConversationItem` (the same dict serves beta clients,
whose item type is a superset). Input audio is not kept once a turn is committed: transcripts are.
"""

from __future__ import annotations

import base64
from typing import Any

from api.realtime.events import (
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    RealtimeProtocolError,
    new_id,
)
from api.realtime.session_config import PCM_RATE

_AUDIO_PARTS = ("audio", "output_audio")


class Conversation:
    def __init__(self) -> None:
        self._order: list[str] = []
        self._items: dict[str, dict[str, Any]] = {}
        # Per assistant audio item: (audio bytes, transcript) after each spoken phrase, to truncate by phrase.
        self._marks: dict[str, list[tuple[int, str]]] = {}
        # Assistant audio items a response is still speaking → the cut a client asked for meanwhile (None: none yet).
        # A client that heard the start of a reply cuts it there before the reply ends (the Agents SDK's interrupt()
        # sends the truncate before its response.cancel); the cut is applied when the response closes the item.
        self._live: dict[str, int | None] = {}

    def last_id(self) -> str | None:
        return self._order[-1] if self._order else None

    def ids(self) -> list[str]:
        return list(self._order)

    def clear(self) -> None:
        self._order.clear()
        self._items.clear()
        self._marks.clear()
        self._live.clear()

    def items(self) -> list[dict[str, Any]]:
        return [self._items[i] for i in self._order]

    def before(self, item_id: str) -> str | None:
        index = self._order.index(item_id) if item_id in self._order else 0
        return self._order[index - 1] if index > 0 else None

    def add_output(self, item: dict[str, Any]) -> str | None:
        """Add a response's output item (kept by reference: the response completes it in place). Only the newest
        assistant audio stays in memory, for truncation; older items keep their transcripts."""
        if item.get("type") == "message":
            for old in self._items.values():
                for part in old.get("content") or []:
                    part.pop("audio", None)
            self._marks.clear()
        return self._insert(item, None)

    def open_audio(self, item_id: str) -> None:
        """A response started speaking this (already added) assistant item; a truncate before it closes waits."""
        self._live[item_id] = None

    def set_phrase_marks(self, item_id: str, marks: list[tuple[int, str]]) -> None:
        """The response closed this audio item (its audio and transcript are in place): apply any waiting cut."""
        self._marks[item_id] = list(marks)
        cut = self._live.pop(item_id, None)
        if cut is not None and item_id in self._items:
            part = self._items[item_id]["content"][0]
            audio = base64.b64decode(part["audio"]) if part.get("audio") else b""
            self._cut(item_id, part, audio, min(cut, len(audio) // 2 * 1000 // PCM_RATE))

    def _insert(self, item: dict[str, Any], previous_item_id: str | None) -> str | None:
        """Append (no previous id), put first (`root`), or insert right after `previous_item_id`."""
        if previous_item_id is None:
            previous = self.last_id()
            self._order.append(item["id"])
        elif previous_item_id == "root":
            previous = None
            self._order.insert(0, item["id"])
        else:
            previous = previous_item_id
            self._order.insert(self._order.index(previous_item_id) + 1, item["id"])
        self._items[item["id"]] = item
        return previous

    def add_user_audio(self, item_id: str, *, with_transcript: bool) -> dict[str, Any]:
        item = {
            "id": item_id, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._insert(item, None)
        return item

    def set_transcript(self, item_id: str, transcript: str) -> None:
        item = self._items.get(item_id)
        if item is not None and item.get("content"):
            item["content"][0]["transcript"] = transcript

    def create(self, item: MessageItem | FunctionCallItem | FunctionCallOutputItem, previous_item_id: str | None,
               event_id: str | None) -> tuple[str | None, dict[str, Any]]:
        """Add a client item; returns the id of the item before it, and the item as stored."""
        if previous_item_id not in (None, "root") and previous_item_id not in self._items:
            raise RealtimeProtocolError(
                f"Error adding item: the previous item with id '{previous_item_id}' does not exist.",
                code="item_create_invalid_previous_item_id", param="previous_item_id", event_id=event_id,
            )
        data = item.model_dump(exclude_none=True)
        item_id = data.get("id") or new_id("item")
        if item_id in self._items:
            raise RealtimeProtocolError(f"Error adding item: an item with id '{item_id}' already exists.",
                                        code="item_create_duplicate_id", param="item.id", event_id=event_id)
        data.update(id=item_id, object="realtime.item", status="completed")
        if data["type"] == "function_call" and not data.get("call_id"):
            data["call_id"] = new_id("call")
        return self._insert(data, previous_item_id), data

    def get_or_raise(self, item_id: str, action: str, event_id: str | None) -> dict[str, Any]:
        item = self._items.get(item_id)
        if item is None:
            raise RealtimeProtocolError(
                f"Error {action.rstrip('e')}ing item: the item with id '{item_id}' does not exist.",
                code=f"item_{action}_invalid_item_id", param="item_id", event_id=event_id,
            )
        return item

    def delete(self, item_id: str, event_id: str | None) -> None:
        self.get_or_raise(item_id, "delete", event_id)
        self._order.remove(item_id)
        del self._items[item_id]
        self._marks.pop(item_id, None)
        self._live.pop(item_id, None)

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int, event_id: str | None) -> None:
        """Cut an assistant audio part at what the user heard; the unheard part of its transcript goes too."""
        item = self.get_or_raise(item_id, "truncate", event_id)
        if item.get("role") != "assistant":
            raise RealtimeProtocolError("Only assistant messages with audio can be truncated.",
                                        code="invalid_value", param="item_id", event_id=event_id)
        if item_id in self._live:  # still being spoken: cut when the response closes it
            if content_index != 0:
                raise RealtimeProtocolError(f"Content part {content_index} of item '{item_id}' is not audio.",
                                            code="invalid_value", param="content_index", event_id=event_id)
            self._live[item_id] = audio_end_ms
            return
        content = item.get("content") or []
        if content_index >= len(content) or content[content_index].get("type") not in _AUDIO_PARTS:
            raise RealtimeProtocolError(f"Content part {content_index} of item '{item_id}' is not audio.",
                                        code="invalid_value", param="content_index", event_id=event_id)
        part = content[content_index]
        audio = base64.b64decode(part["audio"]) if part.get("audio") else b""
        duration_ms = len(audio) // 2 * 1000 // PCM_RATE
        if audio and audio_end_ms > duration_ms:
            raise RealtimeProtocolError(
                f"audio_end_ms ({audio_end_ms}) is past the end of the audio ({duration_ms} ms).",
                code="invalid_value", param="audio_end_ms", event_id=event_id,
            )
        self._cut(item_id, part, audio, audio_end_ms)

    def _cut(self, item_id: str, part: dict[str, Any], audio: bytes, audio_end_ms: int) -> None:
        duration_ms = len(audio) // 2 * 1000 // PCM_RATE
        if audio:
            part["audio"] = base64.b64encode(audio[: audio_end_ms * PCM_RATE // 1000 * 2]).decode()
        if part.get("transcript") is not None and (not audio or audio_end_ms < duration_ms):
            # The transcript keeps the phrases that were heard whole; without phrase marks (a client-made item)
            # the heard share is not known, and OpenAI drops it, as we do.
            heard = audio_end_ms * PCM_RATE // 1000 * 2
            part["transcript"] = next(
                (text for end, text in reversed(self._marks.get(item_id, [])) if end <= heard), ""
            )
