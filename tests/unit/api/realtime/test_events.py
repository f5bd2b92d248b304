"""Client event parsing: typed events out, OpenAI-style error details for everything else."""

from __future__ import annotations

import json

import pytest

from api.realtime import events as ev
from api.realtime.events import RealtimeProtocolError, parse_client_event
from api.realtime.server_events import error_event


def test_parses_typed_events_and_tolerates_unknown_fields() -> None:
    event = parse_client_event(json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA", "extra": 1}))
    assert isinstance(event, ev.InputAudioBufferAppend) and event.audio == "AAAA"
    item = parse_client_event(json.dumps({"type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": "c1", "output": "{}"}}))
    assert isinstance(item, ev.ConversationItemCreate) and isinstance(item.item, ev.FunctionCallOutputItem)


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [
        ("nope", "invalid_json", None),
        ('"a string"', "invalid_json", None),
        ('{"type": "x.y"}', "invalid_value", "type"),
        ('{"type": "conversation.item.truncate", "item_id": "i", "content_index": 0}', "missing_required_parameter",
         "audio_end_ms"),
        ('{"type": "conversation.item.truncate", "item_id": "i", "content_index": -1, "audio_end_ms": 0}',
         "invalid_value", "content_index"),
        ('{"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c"}}',
         "missing_required_parameter", "item.output"),
    ],
)
def test_errors(raw: str, code: str, param: str | None) -> None:
    with pytest.raises(RealtimeProtocolError) as info:
        parse_client_event(raw)
    assert (info.value.code, info.value.param) == (code, param)


def test_error_event_carries_the_client_event_id() -> None:
    with pytest.raises(RealtimeProtocolError) as info:
        parse_client_event('{"type": "input_audio_buffer.append", "event_id": "evt_9"}')
    event = error_event(info.value).wire()
    assert event["type"] == "error" and event["error"]["event_id"] == "evt_9"
    assert event["error"]["param"] == "audio" and event["event_id"].startswith("event_")
