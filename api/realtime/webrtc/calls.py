"""Live WebRTC calls: each is a peer connection, its `CallTransport`, and a `RealtimeSession` run on it.

A call is made from a validated offer (offer.py) and answered at once (aiortc gathers its host candidates while
setting the answer). If ICE has not connected within `realtime.webrtc_ice_timeout_seconds`, or the peer fails or
closes, or someone hangs up, the call ends: the session is cancelled, the peer connection closed, the id forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from api.realtime.events import new_id
from api.realtime.services import RealtimeServices
from api.realtime.session import RealtimeSession
from api.realtime.sessions import RealtimeSessions
from api.realtime.webrtc.offer import InvalidOfferError, Offer
from api.realtime.webrtc.transport import CallTransport

logger = logging.getLogger(__name__)


def ice_servers(urls: list[str]) -> list[RTCIceServer]:
    """`turn:user:pass@host:port` → a TURN server with credentials; other URLs as they are."""
    servers = []
    for url in urls:
        scheme, _, rest = url.partition(":")
        if scheme in ("turn", "turns") and "@" in rest:
            creds, _, host = rest.rpartition("@")
            user, _, password = creds.partition(":")
            servers.append(RTCIceServer(urls=f"{scheme}:{host}", username=user, credential=password))
        else:
            servers.append(RTCIceServer(urls=url))
    return servers


@dataclass
class Call:
    id: str
    pc: RTCPeerConnection
    transport: CallTransport
    session: RealtimeSession | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)  # audio feed, ICE deadline: cancelled at hang-up
    runner: asyncio.Task[None] | None = None  # the session: ends by itself once the transport closes
    connected: asyncio.Event = field(default_factory=asyncio.Event)


class CallRegistry:
    def __init__(self, services: RealtimeServices, sessions: RealtimeSessions):
        self._services = services
        self._sessions = sessions
        self._calls: dict[str, Call] = {}

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def __len__(self) -> int:
        return len(self._calls)

    async def start(self, offer: Offer, *, model: str | None, beta: bool, session: dict[str, Any] | None,
                    extension_events: bool = False) -> tuple[str, str]:
        """Answer the offer and start the call's session: (call id, SDP answer). Admission is the caller's job."""
        settings = self._services.settings
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers(settings.webrtc_ice_servers)))
        transport = CallTransport()
        call = Call(new_id("rtc"), pc, transport)

        @pc.on("datachannel")
        def _channel(channel: Any) -> None:
            transport.attach_channel(channel)

        @pc.on("track")
        def _track(track: Any) -> None:
            if track.kind == "audio":
                call.tasks.append(asyncio.create_task(transport.feed_audio(track)))

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState == "connected":
                call.connected.set()
            elif pc.connectionState in ("failed", "closed"):
                await self.hang_up(call.id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
            pc.addTrack(transport.out)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc refuses what the syntax check let through (no ICE credentials, no DTLS)
            await pc.close()
            raise InvalidOfferError(f"The SDP offer could not be negotiated: {exc or type(exc).__name__}.",
                                    "invalid_offer") from None
        self._calls[call.id] = call
        if session:
            transcription = session.get("type") == "transcription" and beta
            kind = "transcription_session.update" if transcription else "session.update"
            transport.inject(json.dumps({"type": kind, "session": session}))
        call.session = RealtimeSession(self._services, transport.receive, transport.send, model=model, beta=beta,
                                       transcription_intent=(session or {}).get("type") == "transcription",
                                       extension_events=extension_events)
        self._sessions.track(call.session)
        call.runner = asyncio.create_task(self._run(call))
        call.tasks.append(asyncio.create_task(self._ice_deadline(call, settings.webrtc_ice_timeout_seconds)))
        return call.id, pc.localDescription.sdp

    async def _run(self, call: Call) -> None:
        try:
            await call.session.run()
        except Exception:
            logger.exception("realtime call %s failed", call.id)
        finally:
            self._sessions.release(call.session)
            call.session = None
            await self.hang_up(call.id)

    async def _ice_deadline(self, call: Call, seconds: float) -> None:
        try:
            await asyncio.wait_for(call.connected.wait(), seconds)
        except TimeoutError:
            logger.info("realtime call %s: ICE did not connect in %.0f s; hanging up", call.id, seconds)
            await self.hang_up(call.id)

    async def hang_up(self, call_id: str) -> bool:
        call = self._calls.pop(call_id, None)
        if call is None:
            return False
        call.transport.close()  # the session's reader sees the end and the session finishes
        call.transport.out.stop()
        current = asyncio.current_task()
        for task in call.tasks:
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await call.pc.close()
        return True

    async def close(self) -> None:
        for call_id in list(self._calls):
            await self.hang_up(call_id)
