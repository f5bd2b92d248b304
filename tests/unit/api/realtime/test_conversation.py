"""The conversation's truncation of an assistant reply that is still being spoken.

A client that heard the start of a reply cuts it where playback stopped, often before the reply ends: the Agents
SDK's `interrupt()` sends `conversation.item.truncate` for the playing item first and `response.cancel` after. The
cut waits for the response to close the item, then keeps only the phrases that were heard.
"""

from __future__ import annotations

import base64

import pytest

from api.realtime.conversation import Conversation
from api.realtime.events import RealtimeProtocolError
from api.realtime.session_config import PCM_RATE

ONE_SECOND = b"\0\0" * PCM_RATE


def _speaking(conversation: Conversation) -> dict:
    item = {"id": "item_reply", "object": "realtime.item", "type": "message", "role": "assistant",
            "status": "in_progress", "content": []}
    conversation.add_output(item)
    conversation.open_audio(item["id"])
    return item


def _close(conversation: Conversation, item: dict, status: str = "incomplete") -> None:
    """What the responder does when the reply ends: the item's audio and transcript, then its phrase marks."""
    item.update(status=status, content=[{"type": "output_audio", "transcript": "One. Two. Three.",
                                         "audio": base64.b64encode(ONE_SECOND * 3).decode()}])
    conversation.set_phrase_marks(item["id"], [(len(ONE_SECOND), "One."), (2 * len(ONE_SECOND), "One. Two."),
                                               (3 * len(ONE_SECOND), "One. Two. Three.")])


def test_truncate_while_speaking_cuts_when_the_reply_closes() -> None:
    conversation = Conversation()
    item = _speaking(conversation)
    conversation.truncate(item["id"], 0, 1500, "event_1")
    assert item["content"] == []  # nothing to cut yet
    _close(conversation, item)
    part = item["content"][0]
    assert part["transcript"] == "One."  # the second phrase was only half heard
    assert len(base64.b64decode(part["audio"])) == len(ONE_SECOND) * 3 // 2


def test_later_cut_wins_and_a_cut_past_the_end_keeps_everything() -> None:
    conversation = Conversation()
    item = _speaking(conversation)
    conversation.truncate(item["id"], 0, 500, None)
    conversation.truncate(item["id"], 0, 60_000, None)  # heard more than was finally said: clamped to the end
    _close(conversation, item)
    assert item["content"][0]["transcript"] == "One. Two. Three."


def test_truncate_while_speaking_checks_the_part_and_a_closed_reply_cuts_at_once() -> None:
    conversation = Conversation()
    item = _speaking(conversation)
    with pytest.raises(RealtimeProtocolError) as error:
        conversation.truncate(item["id"], 1, 100, "event_2")
    assert error.value.param == "content_index"
    _close(conversation, item)
    conversation.truncate(item["id"], 0, 2500, None)
    assert item["content"][0]["transcript"] == "One. Two."
    with pytest.raises(RealtimeProtocolError):  # past the end of the audio, now that it is known
        conversation.truncate(item["id"], 0, 4000, None)


def test_a_deleted_reply_forgets_its_waiting_cut() -> None:
    conversation = Conversation()
    item = _speaking(conversation)
    conversation.truncate(item["id"], 0, 500, None)
    conversation.delete(item["id"], None)
    _close(conversation, item)  # the responder still closes its own copy; nothing in the conversation changes
    assert item["content"][0]["transcript"] == "One. Two. Three."
    assert conversation.ids() == []
