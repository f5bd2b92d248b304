"""The JSON nesting limit: deep bodies are an OpenAI 400 on every JSON route, before any parser sees them."""

from __future__ import annotations

import json

import httpx
import pytest

from api.settings import Settings
from middleware import json_depth as depth_module
from middleware.json_depth import MAX_JSON_DEPTH, JsonDepthLimitMiddleware, json_depth
from tests.support.asgi import Sent, assert_openai_error, http_scope
from voxloop.app import create_app

DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ("1", 0),
        ("{}", 1),
        ('{"a": [1, [2, {"b": []}]]}', 5),
        ('{"a": "[[[{{{"}', 1),  # brackets in strings do not count
        ('["\\"[[[", "\\\\", ["x"]]', 2),  # escaped quotes and backslashes do not end or start strings early
        (DEEP_ARRAY, 100_000),
        (DEEP_OBJECT, 100_000),
    ],
)
def test_depth(text: str, depth: int) -> None:
    assert json_depth(text.encode()) == depth


def test_depth_across_scan_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(depth_module, "_BLOCK", 7)  # the running depth must carry from one block to the next
    text = '{"x": ' + "[" * 30 + '"]]]"' + "]" * 30 + ', "y": [[[1]]]}'
    assert json_depth(text.encode()) == 31


def _app(tmp_path):
    return create_app(Settings(cache_dir=tmp_path))


@pytest.mark.parametrize("deep", [DEEP_ARRAY, DEEP_OBJECT, '{"model": "tts-1", "input": ' + DEEP_ARRAY + "}"])
@pytest.mark.parametrize(
    "path", ["/v1/audio/speech", "/v1/chat/completions", "/v1/audio/voice_consents/cons_123", "/v1/models"]
)
async def test_deep_bodies_are_a_400_on_every_route(tmp_path, path: str, deep: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(tmp_path)), base_url="http://t") as client:
        response = await client.post(path, content=deep, headers={"content-type": "application/json"})
    if path == "/v1/models":  # no POST there: refused before the body is read, as before
        assert response.status_code == 405
        return
    error = assert_openai_error(response.json(), response.status_code, 400)
    assert error["type"] == "invalid_request_error" and error["code"] == "json_too_deep" and error["param"] is None
    assert str(MAX_JSON_DEPTH) in error["message"]


async def test_chat_without_a_content_type_is_checked_too(tmp_path) -> None:
    # The chat route parses any body as JSON, whatever its content type claims.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(tmp_path)), base_url="http://t") as client:
        response = await client.post("/v1/chat/completions", content=DEEP_ARRAY, headers={"content-type": "text/plain"})
    assert assert_openai_error(response.json(), response.status_code, 400)["code"] == "json_too_deep"


async def test_depth_up_to_the_limit_is_parsed(tmp_path) -> None:
    nested: object = "x"
    for _ in range(MAX_JSON_DEPTH - 1):  # the body object is one more level
        nested = [nested]
    body = {"model": "m", "messages": nested}
    assert json_depth(json.dumps(body).encode()) == MAX_JSON_DEPTH
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(tmp_path)), base_url="http://t") as client:
        response = await client.post("/v1/chat/completions", json=body)
    error = assert_openai_error(response.json(), response.status_code, 400)
    assert error["param"] == "messages[0]"  # parsed, then refused by the chat checks, not by the depth limit


async def test_forms_are_not_scanned() -> None:
    seen: list[bytes] = []

    async def inner(scope, receive, send) -> None:
        seen.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        return {"type": "http.request", "body": b"[" * 1000, "more_body": False}

    scope = http_scope("/v1/audio/transcriptions", headers={"content-type": "multipart/form-data; boundary=x"})
    sent = Sent()
    await JsonDepthLimitMiddleware(inner)(scope, receive, sent)
    assert sent.status == 200 and seen == [b"[" * 1000]


async def test_a_body_in_parts_is_checked_when_complete() -> None:
    parts = [{"type": "http.request", "body": b"[" * 40, "more_body": True},
             {"type": "http.request", "body": b"[" * 40 + b"]" * 80, "more_body": False}]
    received: list[dict] = []

    async def receive():
        return parts.pop(0)

    async def inner(scope, receive, send) -> None:
        received.append(await receive())  # the first part passes: the depth is known only at the end
        await receive()

    with pytest.raises(Exception) as caught:
        await JsonDepthLimitMiddleware(inner)(http_scope(headers={"content-type": "application/json"}), receive, Sent())
    assert len(received) == 1 and getattr(caught.value, "code", None) == "json_too_deep"


def test_a_too_deep_json_string_in_a_form_field_is_a_validation_error() -> None:
    from pydantic import ValidationError

    from api.transcription.protocol import TranscriptionRequest

    with pytest.raises(ValidationError, match="nested too deeply"):
        TranscriptionRequest.model_validate(
            {"model": "whisper-1", "chunking_strategy": '{"a":' * 100_000 + "1" + "}" * 100_000}
        )
