"""POST /v1/chat/completions: HTTP glue around the chat service (upstream proxy or embedded model)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse

from api.deps import ServicesDep
from api.http.disconnect import CLIENT_CLOSED_REQUEST, unless_disconnected
from api.http.errors import ApiError, EngineFailureError, InvalidRequestError, api_error_from_engine
from api.http.schemas import ERROR_RESPONSES
from engines.base import EngineError

router = APIRouter(tags=["chat"])
logger = logging.getLogger(__name__)

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "messages"],
                    "properties": {
                        "model": {"type": "string"},
                        "messages": {"type": "array", "items": {"type": "object"}},
                        "stream": {"type": "boolean", "default": False},
                        "tools": {"type": "array", "items": {"type": "object"}},
                        "stream_options": {"type": "object"},
                    },
                    "additionalProperties": True,
                },
                "example": {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Say hi."}]},
            }
        },
    }
}


@router.post("/v1/chat/completions", summary="Chat completion (proxied or embedded)", responses=ERROR_RESPONSES,
             openapi_extra=_BODY_DOC)
async def create_chat_completion(request: Request, services: ServicesDep) -> Response:
    chat = services.chat
    try:
        body = chat.validated(await request.json())
    except ValueError as exc:
        raise InvalidRequestError(f"The request body is not valid JSON: {exc}") from exc
    if not body.get("stream"):
        answered, completion = await unless_disconnected(request, chat.complete(body))
        return JSONResponse(completion) if answered else Response(status_code=CLIENT_CLOSED_REQUEST)
    chunks = chat.stream(body)
    first = await anext(chunks)  # errors before the first chunk keep their HTTP status
    return EventSourceResponse(_sse(first, chunks), ping=15, headers={"X-Accel-Buffering": "no"})


async def _sse(first: dict[str, Any], chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, str]]:
    try:
        yield {"data": json.dumps(first)}
        async for chunk in chunks:
            yield {"data": json.dumps(chunk)}
        yield {"data": "[DONE]"}
    except (ApiError, EngineError) as exc:
        error = exc if isinstance(exc, ApiError) else api_error_from_engine(exc)
        yield {"data": json.dumps(error.body())}
    except Exception:
        logger.exception("chat stream failed")
        yield {"data": json.dumps(EngineFailureError("The chat completion failed.").body())}
    finally:
        await chunks.aclose()
