"""Chat request checks: OpenAI's types and ranges on both paths, the embedded model's own limits on its path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.chat.protocol import EmbeddedLimits, validate_chat_body
from api.http.errors import InvalidRequestError
from api.settings import Settings
from tests.support.asgi import assert_openai_error
from voxloop.app import create_app

MESSAGES = [{"role": "user", "content": "Hi"}]
EMBEDDED = EmbeddedLimits(context=4096)


def _body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": MESSAGES, **fields}


def _refused(body: Any, embedded: EmbeddedLimits | None = None) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        validate_chat_body(body, embedded)
    return caught.value


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"top_p": "x"}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 5.5}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"n": 0}, "n"),
        ({"n": "2"}, "n"),
        ({"stop": {}}, "stop"),
        ({"stop": {"a": 1}}, "stop"),
        ({"stop": ["a", 1]}, "stop"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"frequency_penalty": "a"}, "frequency_penalty"),
        ({"seed": "1"}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": []}, "stream_options"),
        ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"42": 500}}, "logit_bias.42"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"tools": {}}, "tools"),
        ({"tools": ["f"]}, "tools[0]"),
        ({"tools": [{"type": "function", "function": {"name": 5}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
         "tools[0].function.parameters"),
        ({"tool_choice": 5}, "tool_choice"),
        ({"tool_choice": "always"}, "tool_choice"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.function"),
        ({"response_format": "json"}, "response_format"),
        ({"response_format": {}}, "response_format.type"),
        ({"user": 5}, "user"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"content": "hi"}]}, "messages[0]"),
        ({"messages": [{"role": 5, "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content"),
    ],
)
def test_wrong_types_and_ranges_on_both_paths(fields: dict[str, Any], param: str) -> None:
    for embedded in (None, EMBEDDED):
        error = _refused(_body(**fields), embedded)
        assert error.status == 400 and error.param == param, (fields, error.param, error.message)
        assert f"'{param}'" in error.message or param == "messages"


def test_missing_model_and_not_an_object() -> None:
    assert _refused({"messages": MESSAGES}).param == "model"
    assert _refused([1, 2]).param is None


def test_valid_bodies_pass_and_unknown_fields_pass_through() -> None:
    body = _body(temperature=0, top_p=1, max_tokens=16, stop=["\n", "."], seed=-3, stream=True,
                 stream_options={"include_usage": True}, presence_penalty=-2, frequency_penalty=2,
                 tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                 tool_choice={"type": "function", "function": {"name": "f"}}, logit_bias={"42": -100},
                 response_format={"type": "json_object"}, temperature_extra="vendor", store=True, metadata={"a": "b"},
                 messages=[{"role": "system", "content": None}, {"role": "user", "content": [{"type": "text"}]}])
    assert validate_chat_body(body) is body
    assert validate_chat_body(body, EMBEDDED) is body
    assert validate_chat_body(_body(temperature=None, stop=None, max_tokens=None), EMBEDDED)  # null: the default


def test_upstream_may_do_what_the_embedded_model_cannot() -> None:
    for fields in ({"n": 2}, {"logprobs": True}, {"tool_choice": "required"}, {"max_tokens": 100_000}):
        assert validate_chat_body(_body(**fields))
        assert _refused(_body(**fields), EMBEDDED).param == next(iter(fields))


def test_max_tokens_bounded_by_the_embedded_context() -> None:
    assert validate_chat_body(_body(max_tokens=4096), EMBEDDED)
    error = _refused(_body(max_completion_tokens=4097), EMBEDDED)
    assert error.param == "max_completion_tokens" and "4096" in error.message and "at most" in error.message


def test_tool_choice_must_name_a_given_tool_for_the_embedded_model() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    error = _refused(_body(tools=tools, tool_choice={"type": "function", "function": {"name": "g"}}), EMBEDDED)
    assert error.param == "tool_choice" and "'g'" in error.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"temperature": "hot"}, "temperature"), ({"max_tokens": "many"}, "max_tokens"), ({"top_p": "x"}, "top_p"),
     ({"stop": {}}, "stop"), ({"max_tokens": -1}, "max_tokens"), ({"max_tokens": 10**6}, "max_tokens")],
)
async def test_embedded_route_answers_400_without_loading_the_model(tmp_path, fields, param) -> None:
    app = create_app(Settings(cache_dir=tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post("/v1/chat/completions", json=_body(**fields))
    error = assert_openai_error(response.json(), response.status_code, 400)
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert app.state.services.manager.state(app.state.services.chat.default_model()) == "not_loaded"
