"""A failure after the first byte, over a real socket: a broken transfer (audio) or an `error` event (SSE)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from api.settings import Settings
from engines.base import EngineError
from tests.support.server import live_server
from voxloop.app import create_app

BODY = {"model": "tts-1", "input": "Hello there.", "voice": "alloy"}


@pytest.fixture(scope="module")
def failing_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(Settings(cache_dir=tmp_path_factory.mktemp("cache")))

    async def stream(plan, stats=None) -> AsyncIterator[bytes]:
        yield b"\x00" * 4800
        raise EngineError("the engine fell over mid-sentence")

    app.state.services.speech.stream = stream
    with live_server(app) as url:
        yield url


async def test_audio_stream_is_cut_off_not_completed(failing_url: str) -> None:
    async with httpx.AsyncClient(base_url=failing_url, timeout=30) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", "/v1/audio/speech", json={**BODY, "response_format": "pcm"}) as r:
                assert r.status_code == 200
                async for _ in r.aiter_raw():
                    pass


async def test_sse_stream_ends_with_an_error_event(failing_url: str) -> None:
    async with httpx.AsyncClient(base_url=failing_url, timeout=30) as client:
        response = await client.post("/v1/audio/speech", json={**BODY, "stream_format": "sse"})
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["speech.audio.delta", "error"]
    assert "fell over" in events[-1]["error"]["message"]
