"""The chat service: the embedded model through the model manager, or an OpenAI-compatible upstream over HTTP
(a scripted one on a loopback port), with every upstream failure turned into an OpenAI error."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.chat.service import ChatService, UpstreamStatusError
from api.http.errors import GatewayTimeoutError, InvalidRequestError, UpstreamError
from api.settings import Settings
from engines.manager import ModelManager
from engines.registry import EngineRegistry, EngineSpec
from tests.support.fakes import ScriptedChatEngine, ScriptedUpstream, UpstreamAnswer, chat_chunk, scripted_upstream
from tests.support.llm_server import broken_upstream

BODY = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
COMPLETION = {"id": "c", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": "Hello"}}]}


def _service(tmp_path: Path, engine: ScriptedChatEngine | None = None, **settings) -> ChatService:
    engine = engine or ScriptedChatEngine()
    registry = EngineRegistry([EngineSpec("tiny-llm", "chat", lambda: engine)])
    return ChatService(registry, ModelManager(registry), Settings(cache_dir=tmp_path, **settings))


async def test_embedded_model_completes_and_streams(tmp_path: Path) -> None:
    engine = ScriptedChatEngine("Hello there, friend.")
    service = _service(tmp_path, engine)
    assert service.upstream is None and service.default_model() == "tiny-llm"
    completion = await service.complete(service.validated(BODY))
    assert completion["choices"][0]["message"]["content"] == "Hello there, friend."
    chunks = [c async for c in service.stream(service.validated({**BODY, "stream": True}))]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Hello there, friend." and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert [b["messages"] for b in engine.bodies] == [BODY["messages"]] * 2


def test_validation_knows_where_the_request_goes(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError) as err:
        _service(tmp_path).validated({"model": "m"})
    assert err.value.param == "messages"
    too_long = {**BODY, "max_tokens": 10_000}
    with pytest.raises(InvalidRequestError):  # the embedded model's context is the limit
        _service(tmp_path, embedded_llm_context=2048).validated(too_long)
    assert _service(tmp_path, chat_base_url="http://upstream/v1").validated(too_long) is too_long  # theirs to judge


def test_default_model_names(tmp_path: Path) -> None:
    assert _service(tmp_path, chat_base_url="http://u/v1").default_model() == "default"
    assert _service(tmp_path, chat_base_url="http://u/v1", chat_model="llama-70b").default_model() == "llama-70b"


async def test_upstream_completion_and_stream_pass_through(tmp_path: Path) -> None:
    stream = UpstreamAnswer.sse(chat_chunk("Hel"), chat_chunk("lo"), "[DONE]")
    upstream = ScriptedUpstream({"/chat/completions": UpstreamAnswer.json(COMPLETION)})
    with scripted_upstream(upstream) as url:
        service = _service(tmp_path, chat_base_url=url + "/", chat_api_key="sk-up")
        assert service.upstream == url
        assert await service.complete(BODY) == COMPLETION
        upstream.answers["/chat/completions"] = stream
        chunks = [c async for c in service.stream({**BODY, "stream": True})]
        await service.close()
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["Hel", "lo"]
    (_, first, headers), (_, second, _) = upstream.requests
    assert first["stream"] is False and second["stream"] is True and first["messages"] == BODY["messages"]
    assert headers["Authorization"] == "Bearer sk-up"


@pytest.mark.parametrize(
    ("answer", "error", "status", "expected"),
    [
        (UpstreamAnswer.json({"error": {"message": "bad role", "param": "messages", "code": "x"}}, 400),
         UpstreamStatusError, 400, {"message": "bad role", "param": "messages", "code": "x"}),
        (UpstreamAnswer.json({"error": "overloaded"}, 503), UpstreamStatusError, 502, {"message": "overloaded"}),
        (UpstreamAnswer(500, b"<html>oops</html>", "text/html"), UpstreamStatusError, 502, {"code": None}),
        (UpstreamAnswer.json({"no": "choices"}), UpstreamError, 502, {"type": "upstream_error"}),
    ],
)
async def test_upstream_completion_failures(tmp_path: Path, answer, error, status, expected) -> None:
    with scripted_upstream(ScriptedUpstream({"/chat/completions": answer})) as url:
        service = _service(tmp_path, chat_base_url=url)
        with pytest.raises(error) as info:
            await service.complete(BODY)
        await service.close()
    assert info.value.status == status
    assert {k: info.value.body()["error"][k] for k in expected} == expected


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (UpstreamAnswer.sse(chat_chunk("Hel"), {"error": {"message": "GPU fell off"}}), "GPU fell off"),
        (UpstreamAnswer.sse(chat_chunk("Hel"), "{not json"), "malformed"),
        (UpstreamAnswer.sse(chat_chunk("Hel")), "without [DONE]"),
        (UpstreamAnswer.json(COMPLETION), "not answer with an event stream"),
    ],
)
async def test_upstream_stream_failures(tmp_path: Path, answer: UpstreamAnswer, words: str) -> None:
    with scripted_upstream(ScriptedUpstream({"/chat/completions": answer})) as url:
        service = _service(tmp_path, chat_base_url=url)
        received = []
        with pytest.raises(UpstreamError) as info:
            async for chunk in service.stream({**BODY, "stream": True}):
                received.append(chunk)
        await service.close()
    assert info.value.status == 502 and words in info.value.message
    assert len(received) == (0 if "event stream" in words else 1)


async def test_unreachable_and_slow_upstreams(tmp_path: Path) -> None:
    with broken_upstream("hang") as url:
        slow = _service(tmp_path, chat_base_url=url, chat_timeout_seconds=0.3)
        with pytest.raises(GatewayTimeoutError):
            await slow.complete(BODY)
        await slow.close()
    gone = _service(tmp_path, chat_base_url=url)  # the port is closed now
    with pytest.raises(UpstreamError) as info:
        await gone.complete(BODY)
    assert info.value.code == "upstream_unreachable"
    assert await gone.upstream_models() == []  # listing models never fails for the upstream


async def test_upstream_models_are_listed(tmp_path: Path) -> None:
    models = {"object": "list", "data": [{"id": "llama-70b", "object": "model"}, {"no": "id"}, "junk"]}
    with scripted_upstream(ScriptedUpstream({"/models": UpstreamAnswer.json(models)})) as url:
        service = _service(tmp_path, chat_base_url=url)
        assert await service.upstream_models() == [{"id": "llama-70b", "object": "model"}]
        await service.close()
    assert await _service(tmp_path).upstream_models() == []
