"""The error table: every API error's status and OpenAI fields, every engine error's translation, and the handlers
that render them as `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from api.http.errors import (
    ApiError,
    AuthenticationError,
    EngineFailureError,
    GatewayTimeoutError,
    InvalidRequestError,
    MethodNotAllowedError,
    ModelNotFoundError,
    NotFoundError,
    OutOfMemoryBudgetError,
    PayloadTooLargeError,
    RateLimitError,
    ServiceUnavailableError,
    UnsupportedMediaError,
    UpstreamError,
    api_error_from_engine,
    install_error_handlers,
    validation_error,
)
from engines.base import (
    CancelledByClient,
    EngineError,
    EngineOverloadedError,
    EngineTimeoutError,
    EngineUnavailableError,
    InsufficientMemoryError,
    InvalidAudioError,
    UnsupportedOptionError,
    UpstreamFailedError,
    UpstreamRejectedError,
)

# class -> (status, type, default code)
TABLE: list[tuple[type[ApiError], int, str, str | None]] = [
    (ApiError, 500, "server_error", None),
    (InvalidRequestError, 400, "invalid_request_error", None),
    (AuthenticationError, 401, "invalid_request_error", "invalid_api_key"),
    (NotFoundError, 404, "invalid_request_error", "not_found"),
    (MethodNotAllowedError, 405, "invalid_request_error", "method_not_allowed"),
    (ModelNotFoundError, 404, "invalid_request_error", "model_not_found"),
    (PayloadTooLargeError, 413, "invalid_request_error", "payload_too_large"),
    (UnsupportedMediaError, 415, "invalid_request_error", "unsupported_media_type"),
    (UpstreamError, 502, "upstream_error", None),
    (GatewayTimeoutError, 504, "upstream_error", "upstream_timeout"),
    (ServiceUnavailableError, 503, "server_error", "engine_unavailable"),
    (EngineFailureError, 500, "server_error", "engine_error"),
]


@pytest.mark.parametrize(("cls", "status", "type_", "code"), TABLE, ids=[row[0].__name__ for row in TABLE])
def test_each_api_error_has_its_status_type_and_code(cls, status: int, type_: str, code: str | None) -> None:
    error = cls("Something is off.", param="field")
    assert (error.status, error.type, error.code, error.param) == (status, type_, code, "field")
    assert error.body() == {"error": {"message": "Something is off.", "type": type_, "param": "field", "code": code}}
    assert cls("x", code="own_code").code == "own_code"  # a raise site may name a finer code


def test_rate_limit_and_memory_errors_carry_their_retry_headers() -> None:
    busy = RateLimitError("busy", retry_after=7)
    assert (busy.status, busy.type, busy.code, busy.headers) == (429, "rate_limit_error", "rate_limit_exceeded",
                                                                 {"Retry-After": "7"})
    later = OutOfMemoryBudgetError("full now", retry_after=3)
    assert (later.status, later.code, later.headers) == (503, "insufficient_memory", {"Retry-After": "3"})
    never = OutOfMemoryBudgetError("never fits", retry_after=None)
    assert (never.status, never.code, never.headers) == (503, "model_exceeds_memory_budget",
                                                         {"x-should-retry": "false"})


# engine error -> (class, status, type, code, param, Retry-After)
ENGINE_TABLE = [
    (InvalidAudioError("not audio"), InvalidRequestError, 400, "invalid_request_error", "invalid_audio", "file", None),
    (UnsupportedOptionError("no such voice", param="voice"), InvalidRequestError, 400, "invalid_request_error",
     "unsupported_value", "voice", None),
    (UpstreamRejectedError("too big there", status=413, param="file", code="big"), PayloadTooLargeError, 413,
     "invalid_request_error", "big", "file", None),
    (UpstreamRejectedError("bad type there", status=415), UnsupportedMediaError, 415, "invalid_request_error",
     "unsupported_media_type", None, None),
    (UpstreamRejectedError("odd 4xx there", status=422, param="voice", code="x"), InvalidRequestError, 400,
     "invalid_request_error", "x", "voice", None),
    (EngineOverloadedError("busy"), RateLimitError, 429, "rate_limit_error", "rate_limit_exceeded", None, "5"),
    (InsufficientMemoryError("full", retryable=True), OutOfMemoryBudgetError, 503, "server_error",
     "insufficient_memory", None, "5"),
    (InsufficientMemoryError("huge", retryable=False), OutOfMemoryBudgetError, 503, "server_error",
     "model_exceeds_memory_budget", None, None),
    (EngineUnavailableError("no weights"), ServiceUnavailableError, 503, "server_error", "engine_unavailable", None,
     "5"),
    (EngineTimeoutError("slow"), GatewayTimeoutError, 504, "upstream_error", "upstream_timeout", None, None),
    (UpstreamFailedError("their 500"), UpstreamError, 502, "upstream_error", "upstream_error", None, None),
    (CancelledByClient("gone"), EngineFailureError, 500, "server_error", "engine_error", None, None),
    (EngineError("boom"), EngineFailureError, 500, "server_error", "engine_error", None, None),
]


@pytest.mark.parametrize(("exc", "cls", "status", "type_", "code", "param", "retry"), ENGINE_TABLE,
                         ids=[f"{type(row[0]).__name__}-{i}" for i, row in enumerate(ENGINE_TABLE)])
def test_each_engine_error_becomes_one_api_error(exc, cls, status, type_, code, param, retry) -> None:
    error = api_error_from_engine(exc, retry_after=5)
    assert type(error) is cls
    assert (error.status, error.type, error.code, error.param) == (status, type_, code, param)
    assert error.headers.get("Retry-After") == retry
    assert str(exc) in error.message


class Body(BaseModel):
    model: str
    items: list[int]


def test_validation_errors_name_the_first_bad_parameter() -> None:
    missing = validation_error([{"loc": ("body", "model"), "msg": "Field required", "type": "missing"}])
    assert (missing.status, missing.param, missing.message) == (400, "model", "Missing required parameter: 'model'.")
    nested = validation_error([{"loc": ("body", "items", 2), "msg": "not an int", "type": "int_parsing"}])
    assert nested.param == "items" and nested.message == "Invalid value for 'items': not an int."
    assert validation_error([]).param is None


@pytest.fixture
async def client():
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/body")
    async def body(b: Body) -> dict:
        return {}

    @app.get("/api-error")
    async def api_error() -> None:
        raise RateLimitError("Too busy.", retry_after=2)

    @app.get("/engine-error")
    async def engine_error() -> None:
        raise InvalidAudioError("Not audio.")

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("internal detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "expected"),
    [
        ("GET", "/api-error", None, 429, {"type": "rate_limit_error", "code": "rate_limit_exceeded"}),
        ("GET", "/engine-error", None, 400, {"code": "invalid_audio", "param": "file", "message": "Not audio."}),
        ("POST", "/body", {"model": "m", "items": ["x"]}, 400, {"param": "items", "type": "invalid_request_error"}),
        ("POST", "/body", {"items": []}, 400, {"param": "model", "message": "Missing required parameter: 'model'."}),
        ("GET", "/nowhere", None, 404, {"code": "not_found", "message": "Unknown path: GET /nowhere"}),
        ("DELETE", "/api-error", None, 405, {"code": "method_not_allowed"}),
        ("GET", "/bug", None, 500, {"type": "server_error", "code": "engine_error"}),
    ],
)
async def test_the_handlers_render_the_openai_body(client, method, path, payload, status, expected) -> None:
    response = await client.request(method, path, json=payload)
    assert response.status_code == status
    error = _error(response)
    assert {k: error[k] for k in expected} == expected
    assert "internal detail" not in response.text


async def test_headers_reach_the_client(client) -> None:
    assert (await client.get("/api-error")).headers["retry-after"] == "2"
