"""POST /v1/chat/completions: HTTP glue around the chat service (upstream proxy or embedded model)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.chat import stream as chat_stream
from api.deps import ServicesDep
from api.http.disconnect import CLIENT_CLOSED_REQUEST, unless_disconnected
from api.http.errors import InvalidRequestError
from api.http.schemas import ERROR_RESPONSES

router = APIRouter(tags=["chat"])

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
    return await chat_stream.sse(chat.stream(body))
