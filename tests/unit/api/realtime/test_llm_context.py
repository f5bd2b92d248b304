"""What the LLM sees: items to messages, the emotion note, and bounded history."""

from __future__ import annotations

from api.realtime.llm_context import DEFAULT_INSTRUCTIONS, build_messages, emotion_note
from api.realtime.response_events import beta_item, to_beta
from engines.base import EmotionScores


def _user(text: str, audio: bool = False) -> dict:
    part = {"type": "input_audio", "transcript": text} if audio else {"type": "input_text", "text": text}
    return {"id": "i", "type": "message", "role": "user", "content": [part]}


def _scores(label: str, speech: bool = True) -> EmotionScores:
    return EmotionScores(label=label, scores=((label, 0.7), ("neutral", 0.3)), valence=-0.5, arousal=0.8, speech=speech)


def test_items_become_chat_messages_in_order() -> None:
    items = [
        _user("Weather in Paris?", audio=True),
        {"id": "c", "type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"id": "o", "type": "function_call_output", "call_id": "call_1", "output": '{"c": 21}'},
        {"id": "a", "type": "message", "role": "assistant", "content": [{"type": "output_audio", "transcript": "Sunny."}]},
        _user("", audio=True),  # a turn with no words adds nothing
    ]
    messages = build_messages(items, None)
    assert messages[0] == {"role": "system", "content": DEFAULT_INSTRUCTIONS}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "tool", "assistant"]
    assert messages[2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"c": 21}'}


def test_history_is_bounded_and_never_starts_with_an_orphan_tool_answer() -> None:
    items = [_user(f"message {i}") for i in range(50)]
    messages = build_messages(items, "Be brief.", max_messages=10)
    assert 6 <= len(messages) - 1 <= 10 and messages[0]["content"] == "Be brief." and messages[-1]["content"] == "message 49"
    # The window moves half a window at a time, so consecutive turns mostly share their prompt prefix.
    starts = [build_messages(items[: n + 1], None, max_messages=10)[1]["content"] for n in range(20, 30)]
    assert len(set(starts)) <= 3
    assert len(build_messages([_user("x" * 1000) for _ in range(10)], None, max_chars=2500)) - 1 <= 3
    orphan = [{"id": "o", "type": "function_call_output", "call_id": "x", "output": "1"}, _user("hi")]
    assert [m["role"] for m in build_messages(orphan, None)] == ["system", "user"]


def test_emotion_note_only_when_it_says_something() -> None:
    assert emotion_note(None, frozenset()) is None
    assert emotion_note(_scores("neutral"), frozenset()) is None
    assert emotion_note(_scores("angry", speech=False), frozenset()) is None
    note = emotion_note(_scores("angry"), frozenset({"sigh"}))
    assert note is not None and "angry" in note and "[sigh]" in note
    messages = build_messages([_user("earlier"), _user("hi")], "Be kind.", note=note)
    assert messages[0]["content"] == "Be kind."  # the stable prefix stays stable
    assert messages[-2]["content"] == "hi" and messages[-1] == {"role": "system", "content": note}
    # The next turn's prompt starts with this one's, up to and including the question answered (prefix cache).
    later = build_messages([_user("earlier"), _user("hi"), _user("more")], "Be kind.", note=note)
    assert later[: len(messages) - 1] == messages[:-1]


def test_beta_names_and_item_shapes() -> None:
    event = {"type": "response.output_audio.delta", "delta": "AA"}
    assert to_beta(event)["type"] == "response.audio.delta"
    item = {"type": "message", "content": [{"type": "output_audio", "transcript": "x"}]}
    assert beta_item(item)["content"][0]["type"] == "audio" and item["content"][0]["type"] == "output_audio"
    done = to_beta({"type": "response.done", "response": {"output": [item], "output_modalities": ["audio"],
                                                          "audio": {"output": {"voice": "alloy"}}}})
    assert done["response"]["modalities"] == ["audio"] and done["response"]["voice"] == "alloy"
