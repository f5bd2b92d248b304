"""The OpenAI error envelope, the closed set of API errors, and the handlers that render them.

Every error a client sees is `{"error": {"message", "type", "param", "code"}}` with a status the OpenAI SDK maps
to its exception classes. Services raise `ApiError` subclasses; engines raise `EngineError` subclasses, which
`api_error_from_engine` translates in one table.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engines.base import (
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

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status and the OpenAI error fields."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else type(self).code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


class InvalidRequestError(ApiError):
    status = 400
    type = "invalid_request_error"


class AuthenticationError(ApiError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class NotFoundError(ApiError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowedError(InvalidRequestError):
    status = 405
    code = "method_not_allowed"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class PayloadTooLargeError(ApiError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class UnsupportedMediaError(ApiError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class RateLimitError(ApiError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int, **kw: Any):
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kw)


class UpstreamError(ApiError):
    status = 502
    type = "upstream_error"


class GatewayTimeoutError(ApiError):
    status = 504
    type = "upstream_error"
    code = "upstream_timeout"


class ServiceUnavailableError(ApiError):
    status = 503
    type = "server_error"
    code = "engine_unavailable"


class OutOfMemoryBudgetError(ServiceUnavailableError):
    """The model does not fit its device's memory budget now (Retry-After) or ever (`x-should-retry: false`, which
    the OpenAI SDKs honour, so clients do not retry a request that cannot succeed)."""

    code = "insufficient_memory"

    def __init__(self, message: str, *, retry_after: int | None):
        if retry_after is not None:
            super().__init__(message, headers={"Retry-After": str(retry_after)})
        else:
            super().__init__(message, code="model_exceeds_memory_budget", headers={"x-should-retry": "false"})


class EngineFailureError(ApiError):
    status = 500
    type = "server_error"
    code = "engine_error"


_CLIENT_ERROR_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError, 413: PayloadTooLargeError, 415: UnsupportedMediaError,
}


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def api_error_from_engine(exc: EngineError, *, retry_after: int = 1) -> ApiError:
    """The one place where engine failures become HTTP errors."""
    if isinstance(exc, InvalidAudioError):
        return InvalidRequestError(str(exc), param="file", code="invalid_audio")
    if isinstance(exc, UpstreamRejectedError):
        # A remote engine's 4xx is the client's error there as here: same status class, the remote's own words.
        cls = _CLIENT_ERROR_BY_STATUS.get(exc.status, InvalidRequestError)
        return cls(str(exc), param=exc.param, code=exc.code)
    if isinstance(exc, UnsupportedOptionError):
        return InvalidRequestError(str(exc), param=exc.param, code="unsupported_value")
    if isinstance(exc, EngineOverloadedError):
        return RateLimitError(str(exc), retry_after=retry_after)
    if isinstance(exc, InsufficientMemoryError):
        return OutOfMemoryBudgetError(str(exc), retry_after=retry_after if exc.retryable else None)
    if isinstance(exc, EngineUnavailableError):
        return ServiceUnavailableError(str(exc), headers={"Retry-After": str(retry_after)})
    if isinstance(exc, EngineTimeoutError):
        return GatewayTimeoutError(str(exc))
    if isinstance(exc, UpstreamFailedError):
        return UpstreamError(str(exc), code="upstream_error")
    return EngineFailureError(f"The engine failed: {exc}")


def _param_from_location(loc: tuple[Any, ...]) -> str | None:
    # ("body", "file") -> "file"; ("query", "x") -> "x"; nested fields joined with dots.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form") and not isinstance(p, int)]
    return ".".join(parts) or None


def _validation_message(err: dict[str, Any]) -> str:
    param = _param_from_location(tuple(err.get("loc", ())))
    msg = err.get("msg", "invalid value")
    if err.get("type") == "missing":
        return f"Missing required parameter: '{param}'."
    return f"Invalid value for '{param}': {msg}." if param else f"Invalid request: {msg}."


def validation_error(errors: list[dict[str, Any]]) -> InvalidRequestError:
    """Pydantic/FastAPI validation errors as one OpenAI 400 naming the first bad parameter."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    return InvalidRequestError(_validation_message(first), param=_param_from_location(tuple(first.get("loc", ()))))


def render(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _handle_api_error(request: Request, exc: ApiError) -> JSONResponse:
    return render(exc)


async def _handle_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    return render(validation_error(list(exc.errors())))


async def _handle_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # FastAPI wraps failures while reading the body in a 400; surface our own error when that was the cause.
    if isinstance(exc.__cause__, ApiError):
        return render(exc.__cause__)
    if exc.status_code == 404:
        return render(NotFoundError(f"Unknown path: {request.method} {request.url.path}"))
    if exc.status_code == 405:
        return render(MethodNotAllowedError(f"Method {request.method} is not allowed on {request.url.path}."))
    type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return JSONResponse(
        error_body(str(exc.detail), type_), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _handle_engine(request: Request, exc: EngineError) -> JSONResponse:
    services = getattr(request.app.state, "services", None)
    retry_after = services.settings.retry_after_seconds if services is not None else 1
    return render(api_error_from_engine(exc, retry_after=retry_after))


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return render(EngineFailureError("The server had an internal error while processing the request."))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _handle_api_error)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(EngineError, _handle_engine)
    app.add_exception_handler(Exception, _handle_unexpected)
