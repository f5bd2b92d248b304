"""The `oai-events` data channel and the audio tracks of one call, seen by `RealtimeSession` as receive()/send().

The session is the WebSocket's (api/realtime/session.py); this adapter is all that differs:
- in: data-channel text goes to the session as it is (a message that is not an event gets the session's own `error`
  event); binary messages get an `error` event here; the caller's audio becomes `input_audio_buffer.append` events.
- out: audio deltas go to the out track instead of the channel (OpenAI sends no audio on the channel); everything
  else goes on the channel, and to any control socket watching the call.
- OpenAI's WebRTC-only events: `output_audio_buffer.started` / `stopped` / `cleared`, and the client's
  `output_audio_buffer.clear`. Barge-in: when the caller starts speaking over the reply, what is not yet sent is
  dropped and the assistant item is truncated at what was sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from api.realtime.events import new_id
from api.realtime.webrtc.audio import PcmOutTrack, pcm_chunks

logger = logging.getLogger(__name__)

CHANNEL_LABEL = "oai-events"
_AUDIO_DELTAS = frozenset({"response.output_audio.delta", "response.audio.delta"})
_AUDIO_DONE = frozenset({"response.output_audio.done", "response.audio.done"})

Watcher = Callable[[str], Awaitable[None]]


def _event(type_: str, **fields: Any) -> str:
    return json.dumps({"event_id": new_id("event"), "type": type_, **fields})


class CallTransport:
    def __init__(self) -> None:
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._channel: Any = None
        self._unsent: list[str] = []  # server events before the data channel opened
        self.watchers: set[Watcher] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._last_response = ""  # the latest response with audio: what a clear with nothing playing names
        self._dropped: set[str] = set()  # responses cut off by barge-in or clear: their late audio is not played
        self.out = PcmOutTrack(on_started=self._started, on_stopped=self._stopped)

    # --- the session's side ---------------------------------------------------------------------------------

    async def receive(self) -> str | bytes | None:
        return await self._inbox.get()

    async def send(self, text: str) -> None:
        event = json.loads(text)
        kind = event.get("type")
        if kind in _AUDIO_DELTAS:
            if event.get("response_id") in self._dropped:
                return
            self._last_response = event.get("response_id", "")
            self.out.push(base64.b64decode(event.get("delta", "")), event.get("response_id", ""),
                          event.get("item_id", ""))
            return
        if kind in _AUDIO_DONE:
            self.out.finish(event.get("response_id", ""))
        elif kind == "input_audio_buffer.speech_started" and (self.out.pending or self.out.playout is not None):
            self._barge_in()
        self._post(text)

    # --- the peer's side ------------------------------------------------------------------------------------

    def attach_channel(self, channel: Any) -> None:
        if channel.label != CHANNEL_LABEL:
            return
        self._channel = channel

        @channel.on("open")
        def _open() -> None:
            self._flush()

        @channel.on("message")
        def _message(message: str | bytes) -> None:
            self.inject(message)

        if channel.readyState == "open":
            self._flush()

    def inject(self, message: str | bytes) -> None:
        """A client event from the data channel or a control socket."""
        if isinstance(message, bytes):
            self._post(_event("error", error={
                "type": "invalid_request_error", "code": "invalid_event", "param": None, "event_id": None,
                "message": "Data-channel messages must be JSON events sent as text, not binary."}))
            return
        try:
            kind = json.loads(message).get("type")
        except (ValueError, AttributeError):
            kind = None
        if kind == "output_audio_buffer.clear":
            playing = self.out.clear()
            if playing is not None:
                self._dropped.add(playing.response_id)
            self._post(_event("output_audio_buffer.cleared",
                              response_id=playing.response_id if playing else self._last_response))
            return
        self._inbox.put_nowait(message)

    async def feed_audio(self, track: Any) -> None:
        async for pcm in pcm_chunks(track):
            self._inbox.put_nowait(json.dumps({"type": "input_audio_buffer.append",
                                               "audio": base64.b64encode(pcm).decode()}))

    def close(self) -> None:
        self._inbox.put_nowait(None)

    # --- internals ------------------------------------------------------------------------------------------

    def _barge_in(self) -> None:
        playing = self.out.clear()
        if playing is None:
            return
        self._dropped.add(playing.response_id)
        self._post(_event("output_audio_buffer.cleared", response_id=playing.response_id))
        if playing.item_id:
            self._inbox.put_nowait(json.dumps({"type": "conversation.item.truncate", "item_id": playing.item_id,
                                               "content_index": 0, "audio_end_ms": playing.played_ms}))

    def _started(self, response_id: str) -> None:
        self._post(_event("output_audio_buffer.started", response_id=response_id))

    def _stopped(self, response_id: str) -> None:
        self._post(_event("output_audio_buffer.stopped", response_id=response_id))

    def _post(self, text: str) -> None:
        for watcher in list(self.watchers):
            task = asyncio.ensure_future(watcher(text))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.send(text)
        else:
            self._unsent.append(text)

    def _flush(self) -> None:
        for text in self._unsent:
            self._channel.send(text)
        self._unsent.clear()
