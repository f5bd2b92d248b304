"""Chat completions: proxied to the configured OpenAI-compatible upstream (vLLM), or the embedded llama.cpp model.

Both paths speak OpenAI's chat-completion dicts, so the router and the realtime voice loop see one interface:
`complete(body) -> dict` and `stream(body) -> AsyncIterator[dict]` (chunks), for a body `validated` first. Upstream
failures become OpenAI errors: unreachable 502, too slow 504, garbage 502, and the upstream's own 4xx passed through.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from api.chat.protocol import EmbeddedLimits, validate_chat_body
from api.http.errors import ApiError, GatewayTimeoutError, UpstreamError
from api.settings import Settings
from engines.base import CancelToken
from engines.manager import ModelManager
from engines.registry import EngineRegistry, EngineSpec


class UpstreamStatusError(ApiError):
    """The upstream answered with an error status; its status and message are passed on."""

    type = "upstream_error"

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message, param=param, code=code)
        self.status = status if 400 <= status < 500 else 502


def _upstream_error(response: httpx.Response, body: bytes) -> ApiError:
    try:
        error = json.loads(body)["error"]
        if isinstance(error, dict):
            return UpstreamStatusError(response.status_code, str(error.get("message")), error.get("param"), error.get("code"))
        return UpstreamStatusError(response.status_code, str(error))
    except (ValueError, KeyError, TypeError):
        return UpstreamStatusError(response.status_code, f"The upstream LLM answered {response.status_code}: {body[:200]!r}")


class ChatService:
    def __init__(self, registry: EngineRegistry, manager: ModelManager, settings: Settings):
        self._registry = registry
        self._manager = manager
        self._settings = settings
        self._client: httpx.AsyncClient | None = None

    @property
    def upstream(self) -> str | None:
        return self._settings.chat_base_url.rstrip("/") if self._settings.chat_base_url else None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self._settings
            headers = {"Authorization": f"Bearer {s.chat_api_key.get_secret_value()}"} if s.chat_api_key else {}
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(s.chat_timeout_seconds, connect=s.chat_connect_timeout_seconds), headers=headers
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def default_model(self) -> str:
        """The model name to send when the caller (the voice loop) has none of its own."""
        if self._settings.chat_model:
            return self._settings.chat_model
        return self._embedded().model_id if self.upstream is None else "default"

    def _embedded(self) -> EngineSpec:
        return self._registry.specs("chat")[0]

    # --- non-streaming -------------------------------------------------------------------------------------

    def validated(self, body: Any) -> dict[str, Any]:
        """`body` checked as a chat request for where it will go (`api.chat.protocol`), or a 400."""
        limits = EmbeddedLimits(context=self._settings.embedded_llm_context) if self.upstream is None else None
        return validate_chat_body(body, limits)

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """One completion. Cancelling the awaiting task stops the embedded model at its next token."""
        if self.upstream is None:
            async with self._manager.lease(self._embedded()) as lease:
                return await lease.call_cancellable(lambda cancel: lease.engine.complete(body, cancel))
        with _translate_transport_errors():
            response = await self._http().post(f"{self.upstream}/chat/completions", json={**body, "stream": False})
        if response.status_code >= 400:
            raise _upstream_error(response, response.content)
        try:
            result = response.json()
            result["choices"]  # noqa: B018 - a completion without choices is garbage
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError("The upstream LLM returned something that is not a chat completion.") from exc
        return result

    # --- streaming -----------------------------------------------------------------------------------------

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Chunks as dicts. Errors before the first chunk raise; later ones raise too (the caller renders them)."""
        if self.upstream is None:
            async with self._manager.lease(self._embedded()) as lease:
                cancel = CancelToken()
                async with aclosing(lease.iterate(lambda: lease.engine.stream(body, cancel), cancel)) as chunks:
                    async for chunk in chunks:
                        yield chunk
            return
        async for chunk in self._stream_upstream(body):
            yield chunk

    async def _stream_upstream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        with _translate_transport_errors():
            async with self._http().stream("POST", f"{self.upstream}/chat/completions", json={**body, "stream": True}) as response:
                if response.status_code >= 400:
                    raise _upstream_error(response, await response.aread())
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    raise UpstreamError("The upstream LLM did not answer with an event stream.")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # SSE comments, event names and blank separators
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError as exc:
                        raise UpstreamError("The upstream LLM sent a malformed stream chunk.") from exc
                    if isinstance(chunk, dict) and "error" in chunk:
                        error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
                        raise UpstreamError(f"The upstream LLM failed mid-stream: {error.get('message')}")
                    yield chunk
                raise UpstreamError("The upstream LLM's stream ended without [DONE].")

    # --- models --------------------------------------------------------------------------------------------

    async def upstream_models(self) -> list[dict[str, Any]]:
        """The upstream's /models list (empty when unset or unreachable: listing must not fail for it)."""
        if self.upstream is None:
            return []
        try:
            response = await self._http().get(f"{self.upstream}/models", timeout=5)
            return [m for m in response.json().get("data", []) if isinstance(m, dict) and "id" in m]
        except (httpx.HTTPError, ValueError, AttributeError):
            return []


class _translate_transport_errors:
    """httpx transport failures as OpenAI errors: 502 when the upstream is unreachable, 504 when it is too slow."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            raise GatewayTimeoutError("The upstream LLM did not answer in time.") from exc
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            raise UpstreamError("The upstream LLM is unreachable.", code="upstream_unreachable") from exc
        if isinstance(exc, httpx.HTTPError):
            raise UpstreamError(f"The upstream LLM connection failed: {type(exc).__name__}.") from exc
        return False

