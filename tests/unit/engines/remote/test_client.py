"""The shared remote HTTP client: what it retries, and which engine error (hence which status) each failure is."""

from __future__ import annotations

import httpx
import pytest

from api.http.errors import api_error_from_engine
from engines.base import (
    EngineOverloadedError,
    EngineTimeoutError,
    EngineUnavailableError,
    UpstreamFailedError,
    UpstreamRejectedError,
)
from engines.remote.client import RemoteClient, probe_endpoint
from engines.settings import RemoteEndpoint

ENDPOINT = RemoteEndpoint(base_url="http://up/v1", model="m", retries=3)


def client_answering(answer: httpx.Response | Exception) -> tuple[RemoteClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return RemoteClient(ENDPOINT, transport=httpx.MockTransport(handler)), seen


@pytest.mark.parametrize(
    ("answer", "error", "status"),
    [
        (httpx.ReadTimeout("slow"), EngineTimeoutError, 504),
        (httpx.Response(504, text="gateway timeout"), EngineTimeoutError, 504),
        (httpx.Response(500, json={"error": {"message": "boom"}}), UpstreamFailedError, 502),
        (httpx.RemoteProtocolError("peer closed"), UpstreamFailedError, 502),
        (httpx.Response(429, json={"error": {"message": "busy"}}), EngineOverloadedError, 429),
        (httpx.Response(503, text="down"), EngineUnavailableError, 503),
        (httpx.Response(404, json={"error": {"message": "no model m"}}), EngineUnavailableError, 503),
        (httpx.Response(413, json={"error": {"message": "too big"}}), UpstreamRejectedError, 413),
    ],
)
def test_failures_other_than_connecting_are_not_retried(answer, error, status) -> None:
    client, seen = client_answering(answer)
    with pytest.raises(error) as caught:
        client.request("POST", "/audio/speech", json={})
    assert len(seen) == 1
    assert api_error_from_engine(caught.value).status == status


def test_connect_errors_are_retried_then_reported_unreachable() -> None:
    client, seen = client_answering(httpx.ConnectError("refused"))
    with pytest.raises(EngineUnavailableError, match="unreachable"):
        client.request("GET", "/models")
    assert len(seen) == ENDPOINT.retries + 1


def test_retry_false_tries_once() -> None:
    client, seen = client_answering(httpx.ConnectError("refused"))
    with pytest.raises(EngineUnavailableError):
        client.request("GET", "/models", retry=False)
    assert len(seen) == 1


@pytest.mark.parametrize("status", [400, 422])
def test_a_client_error_upstream_is_the_same_400_in_its_own_words(status: int) -> None:
    body = {"error": {"message": "Unknown voice 'zed'.", "type": "invalid_request_error", "param": "voice",
                      "code": "invalid_voice"}}
    client, _ = client_answering(httpx.Response(status, json=body))
    with pytest.raises(UpstreamRejectedError) as caught:
        client.request("POST", "/audio/speech", json={})
    api_error = api_error_from_engine(caught.value)
    assert (api_error.status, api_error.message, api_error.param, api_error.code) == (
        400, "Unknown voice 'zed'.", "voice", "invalid_voice"
    )


def test_a_streamed_error_answer_is_read_for_its_message() -> None:
    body = {"error": {"message": "Unknown voice 'zed'.", "param": "voice"}}
    client, _ = client_answering(httpx.Response(400, json=body))
    with pytest.raises(UpstreamRejectedError, match="Unknown voice 'zed'"):
        with client.stream("POST", "/audio/speech", json={}):
            pass


def test_the_bearer_key_goes_upstream() -> None:
    seen: list[httpx.Request] = []
    endpoint = RemoteEndpoint(base_url="http://up/v1", model="m", api_key="sk-up")

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [{"id": "m"}]})

    assert probe_endpoint(endpoint, transport=httpx.MockTransport(handler)) is None
    assert seen[0].headers["authorization"] == "Bearer sk-up"
    assert seen[0].url.path == "/v1/models"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (httpx.Response(200, json={"data": [{"id": "other"}]}), "does not serve 'm'"),
        (httpx.Response(200, text="<html>"), "non-JSON"),
        (httpx.Response(200, json={"data": 3}), "no model list"),
        (httpx.ConnectError("refused"), "unreachable"),
    ],
)
def test_probe_names_the_problem(answer, problem: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert problem in probe_endpoint(ENDPOINT, transport=httpx.MockTransport(handler))
