"""Realtime server events as pydantic models, in the GA shape; `RealtimeSession.emit` serializes them (one place).

Each model carries exactly the fields OpenAI's event has (None stays on the wire as null); nested objects (the
session, items, the response, errors) are the dicts built by `session_config`, `conversation` and
`response_events`. Every event validates against openai-python's `RealtimeServerEvent` (GA or, after the session
renames it, beta): the tests check. `voxloop.input_audio_emotion` is this server's one extension event.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.realtime.events import RealtimeProtocolError, new_id


class ServerEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    event_id: str = Field(default_factory=lambda: new_id("event"))

    def wire(self) -> dict[str, Any]:
        """The event as the JSON object sent (before the beta renaming)."""
        return self.model_dump()


# --- errors -----------------------------------------------------------------------------------------------------


class ErrorEvent(ServerEvent):
    type: Literal["error"] = "error"
    error: dict[str, Any]


def error_event(exc: RealtimeProtocolError) -> ErrorEvent:
    return ErrorEvent(error={"type": exc.type, "code": exc.code, "message": exc.message, "param": exc.param,
                             "event_id": exc.event_id})


# --- session and conversation -----------------------------------------------------------------------------------


class SessionEvent(ServerEvent):
    type: Literal["session.created", "session.updated"]
    session: dict[str, Any]


class TranscriptionSessionUpdated(ServerEvent):
    type: Literal["transcription_session.updated"] = "transcription_session.updated"
    session: dict[str, Any]


class ConversationCreated(ServerEvent):
    type: Literal["conversation.created"] = "conversation.created"
    conversation: dict[str, Any]


class ConversationItemAdded(ServerEvent):
    type: Literal["conversation.item.added"] = "conversation.item.added"
    previous_item_id: str | None
    item: dict[str, Any]


class ConversationItemDone(ServerEvent):
    type: Literal["conversation.item.done"] = "conversation.item.done"
    previous_item_id: str | None
    item: dict[str, Any]


class ConversationItemRetrieved(ServerEvent):
    type: Literal["conversation.item.retrieved"] = "conversation.item.retrieved"
    item: dict[str, Any]


class ConversationItemDeleted(ServerEvent):
    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    item_id: str


class ConversationItemTruncated(ServerEvent):
    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str
    content_index: int
    audio_end_ms: int


# --- input audio ------------------------------------------------------------------------------------------------


class SpeechStarted(ServerEvent):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class SpeechStopped(ServerEvent):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class TimeoutTriggered(ServerEvent):
    type: Literal["input_audio_buffer.timeout_triggered"] = "input_audio_buffer.timeout_triggered"
    audio_start_ms: int
    audio_end_ms: int
    item_id: str


class InputAudioCommitted(ServerEvent):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None


class InputAudioCleared(ServerEvent):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class TranscriptionDelta(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta")
    item_id: str
    content_index: int = 0
    delta: str


class TranscriptionCompleted(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed")
    item_id: str
    content_index: int = 0
    transcript: str
    usage: dict[str, Any]


class TranscriptionFailed(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed")
    item_id: str
    content_index: int = 0
    error: dict[str, Any]


class InputAudioEmotion(ServerEvent):
    """voxloop's extension (`?voxloop_events=1`): the emotion heard in a committed user turn."""

    type: Literal["voxloop.input_audio_emotion"] = "voxloop.input_audio_emotion"
    item_id: str
    label: str
    scores: dict[str, float]
    valence: float
    arousal: float
    speech: bool
    model: str


# --- responses --------------------------------------------------------------------------------------------------


class ResponseCreated(ServerEvent):
    type: Literal["response.created"] = "response.created"
    response: dict[str, Any]


class ResponseDone(ServerEvent):
    type: Literal["response.done"] = "response.done"
    response: dict[str, Any]


class OutputItemAdded(ServerEvent):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    response_id: str
    output_index: int
    item: dict[str, Any]


class OutputItemDone(ServerEvent):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    response_id: str
    output_index: int
    item: dict[str, Any]


class FunctionCallArgumentsDelta(ServerEvent):
    type: Literal["response.function_call_arguments.delta"] = "response.function_call_arguments.delta"
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    delta: str


class FunctionCallArgumentsDone(ServerEvent):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    name: str
    arguments: str


class _ContentEvent(ServerEvent):
    """An event about the content part of a response's message item (always part 0)."""

    response_id: str
    item_id: str
    output_index: int
    content_index: int = 0


class ContentPartAdded(_ContentEvent):
    type: Literal["response.content_part.added"] = "response.content_part.added"
    part: dict[str, Any]


class ContentPartDone(_ContentEvent):
    type: Literal["response.content_part.done"] = "response.content_part.done"
    part: dict[str, Any]


class OutputAudioDelta(_ContentEvent):
    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"
    delta: str  # base64 audio in the session's output format


class OutputAudioDone(_ContentEvent):
    type: Literal["response.output_audio.done"] = "response.output_audio.done"


class OutputAudioTranscriptDelta(_ContentEvent):
    type: Literal["response.output_audio_transcript.delta"] = "response.output_audio_transcript.delta"
    delta: str


class OutputAudioTranscriptDone(_ContentEvent):
    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    transcript: str


class OutputTextDelta(_ContentEvent):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    delta: str


class OutputTextDone(_ContentEvent):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    text: str
