"""Tools on the embedded LLM through the openai SDK (issue 17): every tool_choice, streamed or not, gives text or a
function call whose arguments parse; never an empty reply, a 500, or tool-call syntax in a message."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

pytestmark = pytest.mark.models

MODEL = "smollm2-135m-instruct"
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
CHOICES: dict[str, Any] = {"auto": "auto", "required": "required", "none": "none",
                           "named": {"type": "function", "function": {"name": "get_weather"}}}


def _reply(sdk: openai.OpenAI, stream: bool, **kwargs: Any) -> tuple[str, list[tuple[str, str]], str]:
    """(text, [(function name, arguments)], finish reason), read whole or from the stream."""
    if not stream:
        choice = sdk.chat.completions.create(model=MODEL, max_tokens=40, **kwargs).choices[0]
        calls = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
        return choice.message.content or "", calls, choice.finish_reason
    text, calls, finish = "", {}, ""
    for chunk in sdk.chat.completions.create(model=MODEL, max_tokens=40, stream=True, **kwargs):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                name, arguments = calls.get(call.index, ("", ""))
                calls[call.index] = (name + (call.function.name or ""), arguments + (call.function.arguments or ""))
            finish = choice.finish_reason or finish
    return text, list(calls.values()), finish


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("choice", CHOICES)
def test_every_tool_choice_answers(sdk: openai.OpenAI, choice: str, stream: bool) -> None:
    text, calls, finish = _reply(sdk, stream, messages=QUESTION, tools=WEATHER, tool_choice=CHOICES[choice])
    assert text.strip() or calls, "an empty reply"
    for name, arguments in calls:
        assert name == "get_weather" and isinstance(json.loads(arguments), dict)
    if choice in ("required", "named"):
        assert calls and finish == "tool_calls"
    if choice == "none":
        assert not calls and text.strip()
    assert "functions." not in text and "&#34;" not in text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_tool_round_trip_ends_in_words(sdk: openai.OpenAI, stream: bool) -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}
    messages = QUESTION + [{"role": "assistant", "content": None, "tool_calls": [call]},
                           {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny", "temp_c": 21}'}]
    text, calls, _ = _reply(sdk, stream, messages=messages, tools=WEATHER)
    assert text.strip() and not calls
    assert "functions." not in text and "&#34;" not in text


def test_a_tool_result_that_is_not_json_is_fine(sdk: openai.OpenAI) -> None:
    messages = QUESTION + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "sunny, 21 degrees <b>& windy"}]
    text, calls, _ = _reply(sdk, False, messages=messages, tools=WEATHER)
    assert text.strip() or calls
