"""Realtime client events as a pydantic discriminated union, and the protocol error they raise.

Client events tolerate fields OpenAI may add (extra is allowed) but insist on the ones they need. Anything that
does not parse becomes a `RealtimeProtocolError`, which the session turns into an `error` event
(`server_events.error_event`); it never ends the connection. Server events are in `server_events.py`.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class RealtimeProtocolError(Exception):
    """A client mistake reported as an `error` event; the session carries on."""

    def __init__(self, message: str, *, code: str, param: str | None = None, event_id: str | None = None,
                 type_: str = "invalid_request_error"):
        super().__init__(message)
        self.message, self.code, self.param, self.event_id, self.type = message, code, param, event_id, type_


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(11)}"


# --- client events ----------------------------------------------------------------------------------------------


class _ClientEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    event_id: str | None = None


class SessionUpdate(_ClientEvent):
    type: Literal["session.update"]
    session: dict[str, Any]


class TranscriptionSessionUpdate(_ClientEvent):
    type: Literal["transcription_session.update"]
    session: dict[str, Any]


class InputAudioBufferAppend(_ClientEvent):
    type: Literal["input_audio_buffer.append"]
    audio: str


class InputAudioBufferCommit(_ClientEvent):
    type: Literal["input_audio_buffer.commit"]


class InputAudioBufferClear(_ClientEvent):
    type: Literal["input_audio_buffer.clear"]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["input_text", "input_audio", "input_image", "item_reference", "text", "audio", "output_text",
                  "output_audio"]
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None
    id: str | None = None
    image_url: str | None = None


class MessageItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["message"]
    id: str | None = None
    role: Literal["user", "assistant", "system"]
    content: list[ContentPart]
    status: str | None = None


class FunctionCallItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["function_call"]
    id: str | None = None
    call_id: str | None = None
    name: str
    arguments: str = ""
    status: str | None = None


class FunctionCallOutputItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: str
    output: str
    status: str | None = None


ConversationItemIn = Annotated[MessageItem | FunctionCallItem | FunctionCallOutputItem, Field(discriminator="type")]


class ConversationItemCreate(_ClientEvent):
    type: Literal["conversation.item.create"]
    previous_item_id: str | None = None
    item: ConversationItemIn


class ConversationItemRetrieve(_ClientEvent):
    type: Literal["conversation.item.retrieve"]
    item_id: str


class ConversationItemDelete(_ClientEvent):
    type: Literal["conversation.item.delete"]
    item_id: str


class ConversationItemTruncate(_ClientEvent):
    type: Literal["conversation.item.truncate"]
    item_id: str
    content_index: int = Field(ge=0)
    audio_end_ms: int = Field(ge=0)


class ResponseCreate(_ClientEvent):
    type: Literal["response.create"]
    response: dict[str, Any] | None = None


class ResponseCancel(_ClientEvent):
    type: Literal["response.cancel"]
    response_id: str | None = None


class OutputAudioBufferClear(_ClientEvent):
    type: Literal["output_audio_buffer.clear"]


ClientEvent = Annotated[
    SessionUpdate
    | TranscriptionSessionUpdate
    | InputAudioBufferAppend
    | InputAudioBufferCommit
    | InputAudioBufferClear
    | ConversationItemCreate
    | ConversationItemRetrieve
    | ConversationItemDelete
    | ConversationItemTruncate
    | ResponseCreate
    | ResponseCancel
    | OutputAudioBufferClear,
    Field(discriminator="type"),
]
CLIENT_EVENT = TypeAdapter(ClientEvent)
CLIENT_EVENT_TYPES = (
    "session.update", "transcription_session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
    "input_audio_buffer.clear", "conversation.item.create", "conversation.item.retrieve",
    "conversation.item.delete", "conversation.item.truncate", "response.create", "response.cancel",
    "output_audio_buffer.clear",
)


def parse_client_event(raw: str | bytes) -> ClientEvent:
    """One client event from a text frame, or a `RealtimeProtocolError` saying exactly what is wrong."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise RealtimeProtocolError(f"The event is not valid JSON: {exc}.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise RealtimeProtocolError("An event must be a JSON object.", code="invalid_json")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    kind = data.get("type")
    if kind is None:
        raise RealtimeProtocolError("Missing required parameter: 'type'.", code="missing_required_parameter",
                                    param="type", event_id=event_id)
    if kind not in CLIENT_EVENT_TYPES:
        raise RealtimeProtocolError(
            f"Invalid value: '{kind}'. Supported values are: {', '.join(CLIENT_EVENT_TYPES)}.",
            code="invalid_value", param="type", event_id=event_id,
        )
    try:
        return CLIENT_EVENT.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Drop the union tag pydantic puts first, and tags of nested discriminated unions.
        loc = [str(p) for p in first["loc"][1:] if not isinstance(p, int)]
        loc = [p for p in loc if p not in ("message", "function_call", "function_call_output")]
        param = ".".join(loc) or None
        if first["type"] == "missing":
            message, code = f"Missing required parameter: '{param}'.", "missing_required_parameter"
        else:
            message, code = f"Invalid value for '{param}': {first['msg']}.", "invalid_value"
        raise RealtimeProtocolError(message, code=code, param=param, event_id=event_id) from None
