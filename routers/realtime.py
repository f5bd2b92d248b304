"""WS /v1/realtime: accept the socket and run one `RealtimeSession` on it.

Authentication already happened in `ApiKeyMiddleware` (Bearer header, `openai-insecure-api-key.<key>`
subprotocol, or `?api_key=`), before the socket was accepted. Browsers that offer subprotocols drop the
connection unless the server picks one of them, so the server answers with `realtime` when offered (as OpenAI
does), else with the first one offered.
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from api.realtime.session import RealtimeSession

router = APIRouter(tags=["realtime"])

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"


def _subprotocol(offered: list[str]) -> str | None:
    if "realtime" in offered:
        return "realtime"
    return offered[0] if offered else None


def _is_beta(websocket: WebSocket, offered: list[str]) -> bool:
    return "realtime=v1" in websocket.headers.get("openai-beta", "") or BETA_SUBPROTOCOL in offered


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    await websocket.accept(subprotocol=_subprotocol(offered))
    params = websocket.query_params

    async def receive() -> str | bytes | None:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        return message.get("text") if message.get("text") is not None else message.get("bytes")

    session = RealtimeSession(
        websocket.app.state.services,
        receive,
        websocket.send_text,
        model=params.get("model"),
        transcription_intent=params.get("intent") == "transcription",
        beta=_is_beta(websocket, offered),
    )
    try:
        await session.run()
    finally:
        if websocket.client_state.name == "CONNECTED":
            with contextlib.suppress(RuntimeError):  # the client closed first
                await websocket.close()
