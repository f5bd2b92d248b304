"""API keys: 401 in the OpenAI shape, open probes, WebSocket paths, constant-time compare, keys never logged, CORS."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from api.settings import Settings
from middleware import auth
from middleware.auth import ApiKeyMiddleware
from tests.support.asgi import Inner, Sent, assert_openai_error, http_scope, no_body, ws_scope
from voxloop.app import create_app

KEY = "sk-test-0123456789"


@pytest.fixture
async def keyed(tmp_path) -> httpx.AsyncClient:
    app = create_app(Settings(cache_dir=tmp_path, api_key=KEY, cors_origins=["https://app.example"]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_no_key_configured_means_open(tmp_path) -> None:
    app = create_app(Settings(cache_dir=tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/v1/models")).status_code == 200
        response = await client.get("/v1/models", headers={"origin": "https://x"})
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": KEY},
                                     {"authorization": f"Basic {KEY}"}, {"authorization": f"Bearer {KEY}x"}])
async def test_missing_or_wrong_key_is_401_openai_shape(keyed: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await keyed.get("/v1/models", headers=headers)
    error = assert_openai_error(response.json(), response.status_code, 401)
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert response.headers["www-authenticate"] == "Bearer" and response.headers["x-request-id"]
    assert KEY not in response.text


async def test_right_key_passes_and_probes_stay_open(keyed: httpx.AsyncClient) -> None:
    assert (await keyed.get("/v1/models", headers={"authorization": f"Bearer {KEY}"})).status_code == 200
    assert (await keyed.get("/health")).status_code == 200
    assert (await keyed.get("/openapi.json")).status_code == 200
    # Only exact open paths: a lookalike prefix must not slip past the check.
    assert (await keyed.get("/healthz")).status_code == 401
    assert (await keyed.get("/metrics")).status_code == 401
    assert (await keyed.get("/metrics", headers={"authorization": f"Bearer {KEY}"})).status_code == 200


async def test_query_key_is_not_accepted_on_http(keyed: httpx.AsyncClient) -> None:
    # ?api_key= is for browsers' WebSockets only; on HTTP it would end up in proxies' logs.
    assert (await keyed.get(f"/v1/models?api_key={KEY}")).status_code == 401


async def test_cors_preflight_answered_without_key(keyed: httpx.AsyncClient) -> None:
    response = await keyed.options(
        "/v1/audio/transcriptions",
        headers={"origin": "https://app.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "authorization"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    refused = await keyed.options("/v1/models", headers={"origin": "https://evil.example",
                                                         "access-control-request-method": "GET"})
    assert "access-control-allow-origin" not in refused.headers


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"authorization": f"Bearer {KEY}"}, ""),
        ({"sec-websocket-protocol": f"realtime, openai-insecure-api-key.{KEY}"}, ""),
        ({}, f"model=x&api_key={KEY}"),
    ],
)
async def test_websocket_key_paths(headers: dict[str, str], query: str) -> None:
    inner = Inner()
    await ApiKeyMiddleware(inner, KEY)(ws_scope(headers=headers, query=query), no_body, Sent())
    assert inner.calls == 1


@pytest.mark.parametrize("headers", [{}, {"sec-websocket-protocol": "openai-insecure-api-key.nope"},
                                     {"authorization": "Bearer nope"}])
async def test_websocket_wrong_key_is_a_401_with_the_openai_body(headers: dict[str, str]) -> None:
    inner, sent, rejected = Inner(), Sent(), []
    middleware = ApiKeyMiddleware(inner, KEY, on_reject=rejected.append)
    await middleware(ws_scope(headers=headers, denial=True), no_body, sent)
    assert inner.calls == 0 and rejected == ["unauthorized"]
    assert [m["type"] for m in sent.messages] == ["websocket.http.response.start", "websocket.http.response.body"]
    error = assert_openai_error(sent.json(), sent.status, 401)
    assert error == {"message": error["message"], "type": "invalid_request_error", "param": None,
                     "code": "invalid_api_key"}
    assert sent.headers["content-type"] == "application/json" and sent.headers["www-authenticate"] == "Bearer"
    assert int(sent.headers["content-length"]) == len(json.dumps(sent.json()).encode())


async def test_websocket_without_the_denial_extension_closes_before_accept() -> None:
    inner, sent = Inner(), Sent()
    await ApiKeyMiddleware(inner, KEY)(ws_scope(headers={"authorization": "Bearer nope"}), no_body, sent)
    assert inner.calls == 0
    assert sent.messages == [{"type": "websocket.close", "code": 1008, "reason": "invalid api key"}]


async def test_keys_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    scope = ws_scope(headers={"authorization": "Bearer a", "sec-websocket-protocol": "openai-insecure-api-key.b"},
                     query=f"api_key={KEY}")
    inner = Inner()
    await ApiKeyMiddleware(inner, KEY)(scope, no_body, Sent())
    # Every presented key went through compare_digest, the wrong ones too (no early exit that leaks which matched).
    assert [a for a, _ in calls] == [b"a", b"b", KEY.encode()] and inner.calls == 1


async def test_keys_never_logged(keyed: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await keyed.get("/v1/models", headers={"authorization": f"Bearer {KEY}"})
    await keyed.get(f"/v1/models?api_key={KEY}", headers={"authorization": f"Bearer {KEY}-wrong"})
    await keyed.get("/metrics", headers={"authorization": f"Bearer {KEY}"})
    assert any(r.name == "voxloop.access" for r in caplog.records)
    for record in caplog.records:
        if record.name.startswith(("httpx", "httpcore")):  # the test's own client, not the server
            continue
        assert KEY not in record.getMessage() and KEY not in repr(vars(record))


async def test_non_http_scopes_pass_through() -> None:
    inner = Inner()
    await ApiKeyMiddleware(inner, KEY)({"type": "lifespan"}, no_body, Sent())
    assert inner.calls == 1


async def test_401_on_real_route_for_http_scope() -> None:
    sent = Sent()
    await ApiKeyMiddleware(Inner(), KEY)(http_scope(), no_body, sent)
    assert sent.status == 401 and int(sent.headers["content-length"]) > 0
    assert_openai_error(sent.json(), sent.status, 401)
