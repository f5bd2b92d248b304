"""Bad input on the Realtime socket, auth the way real clients send it, and cleanup when a client vanishes.

These use the `websockets` client directly: bad frames are exactly what the SDK will not send.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets

from api.settings import RealtimeSettings, Settings
from tests.support.realtime import GA_EVENTS, b64, to_pcm16_24k
from tests.support.server import live_server
from tests.support.speech import speak
from voxloop.app import create_app

pytestmark = pytest.mark.models

API_KEY = "sk-test-realtime"


def ws_url(server_url: str, query: str = "model=gpt-realtime") -> str:
    return server_url.replace("http://", "ws://") + "/v1/realtime?" + query


async def recv(ws: Any, timeout: float = 30.0) -> dict[str, Any]:
    data = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    GA_EVENTS.validate_python(data)
    return data


async def until(ws: Any, type_: str) -> dict[str, Any]:
    while (event := await recv(ws))["type"] != type_:
        pass
    return event


@pytest.fixture
async def ws(server_url: str) -> AsyncIterator[Any]:
    async with websockets.connect(ws_url(server_url), max_size=None) as conn:
        assert (await recv(conn))["type"] == "session.created"
        assert (await recv(conn))["type"] == "conversation.created"
        yield conn


async def assert_error(ws: Any, frame: str, code: str, param: str | None = None, event_id: str | None = None) -> None:
    await ws.send(frame)
    event = await until(ws, "error")
    error = event["error"]
    assert error["code"] == code, error
    assert error["type"] and error["message"]
    if param is not None:
        assert error["param"] == param, error
    assert error["event_id"] == event_id


async def still_usable(ws: Any) -> None:
    await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "hi"}}))
    assert (await until(ws, "session.updated"))["session"]["instructions"] == "hi"


BAD_FRAMES = [
    ("{not json", "invalid_json", None, None),
    ("[1, 2]", "invalid_json", None, None),
    (json.dumps({"event_id": "e1"}), "missing_required_parameter", "type", "e1"),
    (json.dumps({"type": "no.such.event", "event_id": "e2"}), "invalid_value", "type", "e2"),
    (json.dumps({"type": "input_audio_buffer.append", "event_id": "e3"}), "missing_required_parameter", "audio", "e3"),
    (json.dumps({"type": "conversation.item.retrieve"}), "missing_required_parameter", "item_id", None),
    (json.dumps({"type": "input_audio_buffer.append", "audio": "%%%not base64", "event_id": "e4"}),
     "invalid_value", "audio", "e4"),
    (json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x01\x02\x03").decode()}),
     "invalid_audio_format", "audio", None),
    (json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/flac"}}}}}), "invalid_value", "session.audio.input.format.type", None),
    (json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 16000}}}}}), "invalid_value", "session.audio.input.format.rate", None),
    (json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "turn_detection": {"type": "server_vad", "threshold": 7}}}}}), "invalid_value",
     "session.audio.input.turn_detection.threshold", None),
    (json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "transcription": {"model": "no-such-model"}}}}}), "model_not_found",
     "session.audio.input.transcription.model", None),
    (json.dumps({"type": "input_audio_buffer.commit", "event_id": "e5"}), "input_audio_buffer_commit_empty", None,
     "e5"),
    (json.dumps({"type": "conversation.item.truncate", "item_id": "item_nope", "content_index": 0,
                 "audio_end_ms": 10}), "item_truncate_invalid_item_id", "item_id", None),
    (json.dumps({"type": "conversation.item.delete", "item_id": "item_nope"}), "item_delete_invalid_item_id",
     "item_id", None),
    (json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": "robot", "content": []}}),
     "invalid_value", "item.role", None),
    (json.dumps({"type": "conversation.item.create", "previous_item_id": "item_nope", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}}),
     "item_create_invalid_previous_item_id", "previous_item_id", None),
    (json.dumps({"type": "transcription_session.update", "session": {}}), "invalid_request_error", None, None),
    (json.dumps({"type": "response.create", "event_id": "e6", "response": {"conversation": "elsewhere"}}),
     "invalid_value", "response.conversation", "e6"),
    (json.dumps({"type": "response.cancel"}), "response_cancel_not_active", None, None),
]


@pytest.mark.parametrize(("frame", "code", "param", "event_id"), BAD_FRAMES, ids=[f[1] + str(i) for i, f in
                                                                                   enumerate(BAD_FRAMES)])
async def test_bad_input_is_an_error_event_and_the_session_survives(
    ws: Any, frame: str, code: str, param: str | None, event_id: str | None
) -> None:
    await assert_error(ws, frame, code, param, event_id)
    await still_usable(ws)


async def test_append_limit(ws: Any) -> None:
    """Appends up to 15 MiB of base64 work; a larger one is an error event, not a closed socket."""
    await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "turn_detection": None}}}}))
    await until(ws, "session.updated")
    limit = 15 * 1024 * 1024
    await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * limit}))
    await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
    assert (await until(ws, "input_audio_buffer.cleared"))["type"] == "input_audio_buffer.cleared"
    await assert_error(ws, json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (limit + 4)}),
                       "input_audio_buffer_append_too_large", "audio")
    await still_usable(ws)


async def test_append_over_16_mib_is_an_error_event_and_the_session_goes_on(ws: Any, app: Any) -> None:
    """20 MiB of base64 in one append (over uvicorn's default 16 MiB message limit): an `error` event, not a 1009."""
    assert app.state.services.settings.realtime.max_message_bytes == 32 * 1024 * 1024
    await assert_error(ws, json.dumps({"type": "input_audio_buffer.append", "event_id": "big",
                                       "audio": "A" * (20 * 1024 * 1024)}),
                       "input_audio_buffer_append_too_large", "audio", "big")
    await still_usable(ws)


async def test_message_over_the_websocket_limit_closes_with_1009(ws: Any, app: Any) -> None:
    """Beyond VOXLOOP_REALTIME__MAX_MESSAGE_BYTES the server cannot read the message: close 1009, as documented."""
    limit = app.state.services.settings.realtime.max_message_bytes
    await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (limit + 1024)}))
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        while True:
            await recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_binary_frame_is_an_error(ws: Any) -> None:
    await ws.send(b"\x00\x01")
    assert (await until(ws, "error"))["error"]["code"] == "invalid_json"
    await still_usable(ws)


async def test_vanished_client_frees_the_model_lease(server_url: str, app: Any) -> None:
    manager = app.state.services.manager
    pcm = to_pcm16_24k(speak("This sentence is cut off when the client goes away without saying goodbye."))
    async with websockets.connect(ws_url(server_url), max_size=None) as conn:
        await conn.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "transcription": {"model": "whisper-1"}, "turn_detection": {"type": "server_vad"}}}}}))
        await until(conn, "session.updated")
        for offset in range(0, len(pcm), 4800):
            append = {"type": "input_audio_buffer.append", "audio": b64(pcm[offset : offset + 4800])}
            await conn.send(json.dumps(append))
        await until(conn, "input_audio_buffer.speech_started")
        conn.transport.abort()  # vanish: no close frame
    deadline = time.monotonic() + 30
    while manager.in_flight("whisper-tiny.en") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # polling a condition with a deadline, not waiting a fixed time
    assert manager.in_flight("whisper-tiny.en") == 0


# --- session cap ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capped_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(cache_dir=tmp_path_factory.mktemp("cache"), realtime=RealtimeSettings(max_sessions=1))
    with live_server(create_app(settings)) as url:
        yield url


def _metric(url: str, line_prefix: str) -> float:
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    return next((float(x.split()[-1]) for x in lines if x.startswith(line_prefix + " ")), 0.0)


async def test_session_over_the_cap_gets_an_error_event_then_1013(capped_url: str) -> None:
    async with websockets.connect(ws_url(capped_url), max_size=None) as first:
        assert (await recv(first))["type"] == "session.created"
        assert _metric(capped_url, "voxloop_realtime_sessions") == 1
        async with websockets.connect(ws_url(capped_url), max_size=None) as second:
            refused = await recv(second)  # validated as the SDK's ErrorEvent
            assert refused["type"] == "error"
            assert refused["error"]["type"] == "rate_limit_error"
            assert refused["error"]["code"] == "session_limit_reached"
            assert "maximum of 1 realtime sessions" in refused["error"]["message"]
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await second.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert closed.value.rcvd.reason == "session limit reached"
        await recv(first)  # conversation.created: the admitted session is untouched
        await still_usable(first)
    assert _metric(capped_url, 'voxloop_rejections_total{reason="realtime_sessions"}') == 1
    # The slot is released when the first session ends: a new connection gets a session again.
    deadline = time.monotonic() + 30
    while _metric(capped_url, "voxloop_realtime_sessions") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # polling a condition with a deadline, not waiting a fixed time
    async with websockets.connect(ws_url(capped_url), max_size=None) as third:
        assert (await recv(third))["type"] == "session.created"


# --- auth ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(cache_dir=tmp_path_factory.mktemp("cache"), api_key=API_KEY)
    with live_server(create_app(settings)) as url:
        yield url


async def _first_event(url: str, **kw: Any) -> tuple[dict[str, Any], str | None]:
    async with websockets.connect(url, max_size=None, **kw) as conn:
        return await recv(conn), conn.response.headers.get("sec-websocket-protocol")


async def test_auth_bearer(secured_url: str) -> None:
    event, _ = await _first_event(ws_url(secured_url), additional_headers={"Authorization": f"Bearer {API_KEY}"})
    assert event["type"] == "session.created"


async def test_auth_browser_subprotocol_is_echoed(secured_url: str) -> None:
    event, chosen = await _first_event(
        ws_url(secured_url), subprotocols=["realtime", f"openai-insecure-api-key.{API_KEY}"]
    )
    assert event["type"] == "session.created" and chosen == "realtime"


async def test_auth_query_parameter(secured_url: str) -> None:
    event, _ = await _first_event(ws_url(secured_url, f"model=gpt-realtime&api_key={API_KEY}"))
    assert event["type"] == "session.created"


@pytest.mark.parametrize("kw", [{"additional_headers": {"Authorization": "Bearer wrong"}},
                                {"subprotocols": ["realtime", "openai-insecure-api-key.wrong"]}, {}],
                         ids=["wrong_bearer", "wrong_subprotocol", "missing"])
async def test_auth_refusal_is_a_401_with_the_openai_body(secured_url: str, kw: dict[str, Any]) -> None:
    """As over HTTP: 401 and OpenAI's error body on the handshake itself (not a bare 403), before any socket opens."""
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        await _first_event(ws_url(secured_url), **kw)
    response = refused.value.response
    assert response.status_code == 401, response
    assert response.headers["content-type"] == "application/json" and response.headers["x-request-id"]
    error = json.loads(response.body)["error"]
    assert error == {"message": error["message"], "type": "invalid_request_error", "param": None,
                     "code": "invalid_api_key"}
    assert "API key" in error["message"]


@pytest.mark.parametrize("moment", ["response.created", "response.output_audio.delta"])
async def test_client_leaving_mid_response_leaves_no_traceback(
    server_url: str, app: Any, caplog: pytest.LogCaptureFixture, moment: str
) -> None:
    """A client that goes away while a reply is generated or spoken: the response task ends as a cancellation, not
    as an 'Exception in ASGI application' with a BaseExceptionGroup (issue 17)."""
    sessions = app.state.services.realtime_sessions
    before = sessions.count
    with caplog.at_level("INFO"):
        async with websockets.connect(ws_url(server_url), max_size=None) as conn:
            await until(conn, "session.created")
            await conn.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a story."}]}}))
            await conn.send(json.dumps({"type": "response.create"}))
            await until(conn, moment)
            conn.transport.abort()
        deadline = time.monotonic() + 30
        while sessions.count > before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    assert sessions.count == before, "the session was not released"
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "Exception in ASGI application" not in logged and "Traceback" not in logged, logged[-2000:]
