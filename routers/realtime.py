"""WS /v1/realtime: accept the socket and run one `RealtimeSession` on it.

Authentication already happened in `ApiKeyMiddleware` (Bearer header, `openai-insecure-api-key.<key>`
subprotocol, or `?api_key=`), before the socket was accepted. Beyond the session cap, or during shutdown, the
socket gets one `error` event and a close code instead of a session. Browsers that offer subprotocols drop the
connection unless the server picks one of them, so the server answers with `realtime` when offered (as OpenAI
does), else with the first one offered.
"""

from __future__ import annotations

import contextlib
import json

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from api.realtime.client_secrets import PREFIX as EPHEMERAL_KEY_PREFIX
from api.realtime.client_secrets import EphemeralKeyError
from api.realtime.events import RealtimeProtocolError
from api.realtime.session import RealtimeSession
from api.realtime.sessions import Refusal
from middleware.auth import presented_keys

router = APIRouter(tags=["realtime"])

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"


def _subprotocol(offered: list[str]) -> str | None:
    if "realtime" in offered:
        return "realtime"
    return offered[0] if offered else None


def _is_beta(websocket: WebSocket, offered: list[str]) -> bool:
    return "realtime=v1" in websocket.headers.get("openai-beta", "") or BETA_SUBPROTOCOL in offered


async def _refuse(websocket: WebSocket, subprotocol: str | None, refusal: Refusal) -> None:
    """No session for this connection: accept, send one `error` event, close (see api/realtime/sessions.py)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):  # the client may already be gone
        await websocket.accept(subprotocol=subprotocol)
        await websocket.send_text(refusal.event_text())
        await websocket.close(code=refusal.close_code, reason=refusal.reason)


def _ephemeral(websocket: WebSocket, services) -> tuple[dict | None, Refusal | None]:
    """An `ek_` key presented: redeem it (single use) for the session config it carries, or the refusal."""
    for key in presented_keys(websocket.scope):
        if key.startswith(EPHEMERAL_KEY_PREFIX):
            try:
                return services.client_secrets.redeem(key).session, None
            except EphemeralKeyError as exc:
                return None, Refusal(RealtimeProtocolError(str(exc), code="invalid_api_key"), 1008, "invalid api key")
    return None, None


async def _control(websocket: WebSocket, services, call_id: str, subprotocol: str | None) -> None:
    """`/v1/realtime?call_id=…`: an app server watches a WebRTC call's server events and sends it client events."""
    call = services.webrtc_calls.get(call_id) if services.webrtc_calls is not None else None
    if call is None:
        error = RealtimeProtocolError(f"No realtime call with id '{call_id}'.", code="call_not_found",
                                      param="call_id")
        await _refuse(websocket, subprotocol, Refusal(error, 1008, "unknown call"))
        return
    await websocket.accept(subprotocol=subprotocol)
    call.transport.watchers.add(websocket.send_text)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect" or services.webrtc_calls.get(call_id) is None:
                break
            call.transport.inject(message.get("text") if message.get("text") is not None else message.get("bytes"))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        call.transport.watchers.discard(websocket.send_text)


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    services = websocket.app.state.services
    if call_id := websocket.query_params.get("call_id"):
        await _control(websocket, services, call_id, _subprotocol(offered))
        return
    carried, refused = _ephemeral(websocket, services)
    if refused is not None:
        await _refuse(websocket, _subprotocol(offered), refused)
        return
    sessions = services.realtime_sessions
    refusal = sessions.admit()
    if refusal is not None:
        await _refuse(websocket, _subprotocol(offered), refusal)
        return
    session: RealtimeSession | None = None
    params = websocket.query_params

    first = [json.dumps({"type": "session.update", "session": carried})] if carried else []

    async def receive() -> str | bytes | None:
        if first:  # the config the ephemeral key was minted with, applied as the session's first update
            return first.pop()
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        return message.get("text") if message.get("text") is not None else message.get("bytes")

    try:
        await websocket.accept(subprotocol=_subprotocol(offered))
        session = RealtimeSession(
            services.realtime,
            receive,
            websocket.send_text,
            model=params.get("model"),
            transcription_intent=params.get("intent") == "transcription",
            beta=_is_beta(websocket, offered),
            extension_events=params.get("voxloop_events", "").lower() in ("1", "true", "yes"),
        )
        sessions.track(session)
        await session.run()
    finally:
        sessions.release(session)  # before the close, so a client that saw the close can reconnect at once
        if websocket.client_state.name == "CONNECTED":
            with contextlib.suppress(RuntimeError):  # the client closed first
                await websocket.close(code=session.close_code if session is not None else 1011)
