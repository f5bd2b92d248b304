"""Remote speech: `/v1/audio/speech` of another server behind the `Synthesizer` protocol.

Audio is asked for as `pcm` (24 kHz s16le, what OpenAI and voxloop both send) and streamed: each piece becomes an
`AudioChunk` as it arrives, so the first audio leaves here as soon as the upstream's first phrase does. Leaving
the iterator (a cancel, a client gone) closes the stream, which stops the upstream too.

Voices live on the upstream. `RemoteVoiceCatalog` stands where a local engine's `SynthesizerCapabilities` stands,
showing the last answer of the upstream's GET /audio/voices; it is refreshed off the event loop (on load, by
/ready, by GET /v1/audio/voices, at startup), so readers never wait on the network. Voice ids are passed on
as given (`checks_voices`): the upstream maps OpenAI names and refuses unknown ids in its own words.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from engines.audio import pcm16_to_float
from engines.base import (
    AudioChunk,
    CancelToken,
    EngineError,
    SynthesisOptions,
    SynthesizerCapabilities,
    UpstreamFailedError,
    Voice,
)
from engines.remote.client import PROBE_TIMEOUT_SECONDS, RemoteClient, probe_endpoint
from engines.settings import RemoteEndpoint

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

PCM_RATE = 24_000
VOICES_MAX_AGE_SECONDS = 60.0  # how stale a catalog may be before a listing or startup asks again


def capabilities_for(voices: tuple[Voice, ...]) -> SynthesizerCapabilities:
    return SynthesizerCapabilities(
        voices=voices,
        sample_rate=PCM_RATE,
        # The upstream does the whole OpenAI range itself: no tempo stretching here.
        min_speed=0.25,
        max_speed=4.0,
        tags=frozenset().union(*(v.tags for v in voices)),
        cloning=any(v.cloning for v in voices),
        checks_voices=True,
    )


def voices_from(body: Any) -> tuple[Voice, ...]:
    """Voices from a voxloop-style `{"data": [{"id", "name", "language", ...}]}` listing, asked for one model.

    Not filtered by the items' `model`: the upstream resolves aliases (`tts-1` lists its engine's id).
    """
    try:
        return tuple(
            Voice(
                id=str(item["id"]),
                name=str(item.get("name") or item["id"]),
                language=str(item.get("language") or "en-us"),
                gender=item.get("gender"),
                description=str(item.get("description") or ""),
                tags=frozenset(item.get("tags") or ()),
                cloning=bool(item.get("cloning")),
                openai_aliases=tuple(item.get("openai_aliases") or ()),
            )
            for item in body["data"]
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise UpstreamFailedError(f"GET /audio/voices answered no voice list: {exc!r}") from exc


class RemoteVoiceCatalog:
    """A remote speech model's capabilities: every attribute of the latest `SynthesizerCapabilities` learnt."""

    def __init__(self, endpoint: RemoteEndpoint, *, transport: httpx.BaseTransport | None = None):
        self._endpoint = endpoint
        self._transport = transport
        self._current = capabilities_for(())
        self._checked_at = -math.inf
        self._lock = threading.Lock()  # one refresh at a time; readers take `_current` without it

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_current"], name)

    def refresh(self, max_age: float = 0.0) -> None:
        """Ask the upstream for its voices unless the last ask is younger than `max_age`. Blocks; never raises."""
        with self._lock:
            if time.monotonic() - self._checked_at < max_age:
                return
            self._checked_at = time.monotonic()
            try:
                with RemoteClient(self._endpoint, transport=self._transport) as client:
                    params = {"model": self._endpoint.model}
                    response = client.request("GET", "/audio/voices", params=params, retry=False,
                                              timeout=min(PROBE_TIMEOUT_SECONDS, self._endpoint.timeout_seconds))
                    voices = voices_from(client.json(response))
            except EngineError as exc:
                # A peer without a voice listing still speaks the voices it knows; keep what was learnt before.
                logger.info("remote speech %s: voices unknown (%s)", self._endpoint.base_url, exc)
                return
            self._current = capabilities_for(voices)


def probe_speech(endpoint: RemoteEndpoint, catalog: RemoteVoiceCatalog) -> str | None:
    """/ready: the upstream serves the model; its voices are learnt again (when stale) while it is asked."""
    problem = probe_endpoint(endpoint)
    if problem is None:
        catalog.refresh(VOICES_MAX_AGE_SECONDS)
    return problem


class RemoteSynthesizer:
    """`Synthesizer` that streams `<base_url>/audio/speech` as pcm."""

    def __init__(
        self,
        endpoint: RemoteEndpoint,
        catalog: RemoteVoiceCatalog,
        *,
        transport: httpx.BaseTransport | None = None,
    ):
        self._http = RemoteClient(endpoint, transport=transport)
        self._endpoint = endpoint
        self.capabilities = catalog
        catalog.refresh(VOICES_MAX_AGE_SECONDS)  # loading is when the voices matter next; on the engine's thread

    def voices(self) -> list[Voice]:
        return list(self.capabilities.voices)

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        cancel.raise_if_cancelled()
        body = {
            "model": self._endpoint.model,
            "input": text,
            "voice": options.voice,
            "response_format": "pcm",
            "speed": options.speed,
        }
        with self._http.stream("POST", "/audio/speech", json=body) as response:
            carry = b""  # a network piece may end inside a 16-bit sample
            for data in self._http.iter_bytes(response):
                cancel.raise_if_cancelled()  # raising here leaves the `with`, which closes the stream
                data, carry = _whole_samples(carry + data)
                if data:
                    yield AudioChunk(pcm16_to_float(data), PCM_RATE)

    def close(self) -> None:
        self._http.close()


def _whole_samples(data: bytes) -> tuple[bytes, bytes]:
    cut = len(data) - len(data) % 2
    return data[:cut], data[cut:]

