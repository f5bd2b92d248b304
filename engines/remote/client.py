"""One upstream OpenAI-compatible server over HTTP, shared by every remote engine.

It owns what all of them need alike: the bearer key, the read and connect timeouts, retrying only when the
connection could not be made (the request never reached the upstream, so nothing runs twice), and turning the
upstream's failures into the engine errors the API maps to statuses: its 4xx with an OpenAI body -> the same 4xx
in its own words, unreachable -> 503, too slow -> 504, its 5xx or a broken answer -> 502.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from engines.base import (
    EngineError,
    EngineOverloadedError,
    EngineTimeoutError,
    EngineUnavailableError,
    UpstreamFailedError,
    UpstreamRejectedError,
)
from engines.settings import RemoteEndpoint

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

RETRY_BACKOFF_SECONDS = 0.5
PROBE_TIMEOUT_SECONDS = 3.0
# The upstream's refusals that are the client's fault, passed on with their status (422: FastAPI-style validation).
_CLIENT_STATUSES = (400, 413, 415, 422)
# The upstream cannot serve us at all: our key, our model name or the upstream itself is wrong or down.
_UNAVAILABLE_STATUSES = (401, 403, 404, 502, 503)


def auth_headers(endpoint: RemoteEndpoint) -> dict[str, str]:
    return {"Authorization": f"Bearer {endpoint.api_key.get_secret_value()}"} if endpoint.api_key else {}


class RemoteClient:
    """Requests to one `RemoteEndpoint`; every failure comes out as an `EngineError`."""

    def __init__(self, endpoint: RemoteEndpoint, *, transport: httpx.BaseTransport | None = None):
        import httpx

        self.endpoint = endpoint
        self._client = httpx.Client(
            base_url=endpoint.base_url.rstrip("/"),
            timeout=httpx.Timeout(endpoint.timeout_seconds, connect=endpoint.connect_timeout_seconds),
            headers=auth_headers(endpoint),
            transport=transport,
        )

    def request(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> httpx.Response:
        """Send and read the whole answer (kwargs as httpx's `build_request`)."""
        return self._send(method, path, stream=False, retry=retry, **kwargs)

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """Send and hand over the answer unread; leaving the block closes it (and so stops the upstream)."""
        response = self._send(method, path, stream=True, retry=True, **kwargs)
        try:
            yield response
        finally:
            response.close()

    def iter_bytes(self, response: httpx.Response) -> Iterator[bytes]:
        """The body of a streamed answer as it arrives."""
        import httpx

        try:
            yield from response.iter_bytes()
        except httpx.TimeoutException as exc:
            raise EngineTimeoutError(f"{self._who} stopped sending for {self.endpoint.timeout_seconds:g} s.") from exc
        except httpx.HTTPError as exc:
            raise UpstreamFailedError(f"{self._who} broke off its answer: {exc}") from exc

    def json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamFailedError(f"{self._who} answered non-JSON.") from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _who(self) -> str:
        return f"The remote engine at {self.endpoint.base_url}"

    def _send(self, method: str, path: str, *, stream: bool, retry: bool, **kwargs: Any) -> httpx.Response:
        import httpx

        attempts = self.endpoint.retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                response = self._client.send(self._client.build_request(method, path, **kwargs), stream=stream)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Only failures to connect are retried: the request never reached the upstream, so a retry cannot
                # run the (expensive, possibly billed) work twice.
                if attempt == attempts - 1:
                    raise EngineUnavailableError(f"{self._who} is unreachable: {exc}") from exc
                logger.warning("remote engine %s: connect failed (%s), retrying", self.endpoint.base_url, exc)
                time.sleep(RETRY_BACKOFF_SECONDS * (attempt + 1))
            except httpx.TimeoutException as exc:
                raise EngineTimeoutError(f"{self._who} timed out: {exc}") from exc
            except httpx.HTTPError as exc:
                raise UpstreamFailedError(f"{self._who} failed: {exc}") from exc
        if response.status_code >= 400:
            if stream:
                try:
                    response.read()  # the error body, to pass its message on
                except httpx.HTTPError:
                    pass
                response.close()
            raise error_for_status(response, self.endpoint.base_url)
        return response


def error_for_status(response: httpx.Response, base_url: str) -> Exception:
    """The engine error for an upstream's 4xx/5xx answer, keeping its OpenAI error fields."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    status = response.status_code
    said = error.get("message") or response.text[:200]
    if status in _CLIENT_STATUSES:
        return UpstreamRejectedError(
            said, status=400 if status == 422 else status, param=error.get("param"), code=error.get("code")
        )
    message = f"Remote engine at {base_url} answered {status}: {said}"
    if status == 429:
        return EngineOverloadedError(message)
    if status in _UNAVAILABLE_STATUSES:
        return EngineUnavailableError(message)
    if status in (408, 504):
        return EngineTimeoutError(message)
    return UpstreamFailedError(message)


def probe_endpoint(endpoint: RemoteEndpoint, *, transport: httpx.BaseTransport | None = None) -> str | None:
    """Health for /ready: the upstream answers GET /models, at once, and lists the model. None when fine."""
    with RemoteClient(endpoint, transport=transport) as client:
        try:
            timeout = min(PROBE_TIMEOUT_SECONDS, endpoint.timeout_seconds)
            body = client.json(client.request("GET", "/models", retry=False, timeout=timeout))
        except EngineError as exc:
            return str(exc)
    try:
        ids = {m.get("id") for m in body.get("data", [])}
    except (AttributeError, TypeError):
        return f"remote engine at {endpoint.base_url} answered GET /models with no model list"
    return None if endpoint.model in ids else f"remote engine at {endpoint.base_url} does not serve '{endpoint.model}'"
