"""/v1/chat/completions: the embedded llama.cpp model in-process, the proxy to a real llama.cpp server, and
upstream failures turned into OpenAI errors."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from api.settings import Settings
from tests.support.llm_server import broken_upstream, llama_cpp_server
from tests.support.server import live_server
from voxloop.app import create_app

pytestmark = pytest.mark.models

# SmolLM2-135M answers this one right when decoding greedily; with a system prompt it rambles (it is a toy model).
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def test_embedded_model_answers(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, max_tokens=40, temperature=0)
    answer = completion.choices[0].message.content or ""
    assert completion.object == "chat.completion" and len(answer.split()) >= 2
    assert "paris" in answer.lower(), answer  # even a 135M model knows this one
    assert completion.usage and completion.usage.completion_tokens > 0


def _forced_weather_call(client: openai.OpenAI, model: str):
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=WEATHER_TOOL,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=60,
        temperature=0,
    )
    return completion.choices[0].message.tool_calls[0]


def test_embedded_model_tool_call(sdk: openai.OpenAI) -> None:
    call = _forced_weather_call(sdk, "smollm2-135m-instruct")
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"] == "Paris"


def test_embedded_model_streams_with_usage(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="smollm2-135m-instruct", messages=QUESTION, max_tokens=40, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "paris" in text.lower()
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    """voxloop proxying to a real llama.cpp server (as it would to vLLM)."""
    with llama_cpp_server() as upstream:
        app = create_app(Settings(cache_dir=tmp_path_factory.mktemp("c"), chat_base_url=upstream))
        with live_server(app) as url:
            yield url, openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)


def test_proxy_non_streaming_and_streaming(proxied) -> None:
    _, client = proxied
    completion = client.chat.completions.create(model="smollm2-upstream", messages=QUESTION, max_tokens=30, temperature=0)
    assert "paris" in (completion.choices[0].message.content or "").lower()
    chunks = list(client.chat.completions.create(model="smollm2-upstream", messages=QUESTION, max_tokens=30,
                                                 temperature=0, stream=True))
    assert "paris" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).lower()


def test_proxy_passes_tools_through(proxied) -> None:
    _, client = proxied
    call = _forced_weather_call(client, "smollm2-upstream")
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)


def test_models_list_includes_upstream(proxied) -> None:
    _, client = proxied
    ids = {m.id for m in client.models.list()}
    assert "smollm2-upstream" in ids and "whisper-tiny.en" in ids


def test_upstream_errors_passed_through(proxied) -> None:
    url, client = proxied
    with pytest.raises(openai.BadRequestError) as info:  # the upstream's own 400, status and code kept
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "word " * 3000}])
    assert info.value.body["code"] == "context_length_exceeded"  # type: ignore[index]
    # llama.cpp's server answers a 500 to a message it cannot validate (a role it does not know, which the types
    # checked here let through): an upstream failure is a 502 here, message kept.
    response = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                          json={"model": "m", "messages": [{"role": "bogus", "content": "hi"}]})
    assert response.status_code == 502 and "validation" in response.json()["error"]["message"]
    # A wrong type never reaches the upstream: it is our own 400, naming the field.
    response = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": 5}]},
                          timeout=60)
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages[0].content"


@pytest.mark.parametrize(
    ("behaviour", "status", "code"),
    [("down", 502, "upstream_unreachable"), ("hang", 504, "upstream_timeout"), ("garbage", 502, None)],
)
def test_upstream_failures(tmp_path, behaviour: str, status: int, code: str | None) -> None:
    def check(upstream: str) -> None:
        app = create_app(Settings(cache_dir=tmp_path, chat_base_url=upstream, chat_timeout_seconds=1.0))
        with live_server(app) as url:
            for stream in (False, True):
                response = httpx.post(f"{url}/v1/chat/completions", timeout=30,
                                      json={"model": "m", "messages": QUESTION, "stream": stream})
                assert response.status_code == status, response.text
                error = response.json()["error"]
                assert error["message"] and (code is None or error["code"] == code)
            assert httpx.get(f"{url}/health").status_code == 200

    if behaviour == "down":
        from tests.support.server import free_port

        check(f"http://127.0.0.1:{free_port()}/v1")
    else:
        with broken_upstream(behaviour) as upstream:
            check(upstream)


@pytest.mark.parametrize(
    ("body", "param"),
    [(b"{not json", None), (b"[]", None), (b'{"messages": []}', "model"), (b'{"model": "m", "messages": []}', "messages")],
)
async def test_bad_chat_requests(http: httpx.AsyncClient, body: bytes, param: str | None) -> None:
    response = await http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["param"] == param
