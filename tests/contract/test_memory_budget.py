"""A memory budget seen through HTTP: 503 with Retry-After while models in use hold the GPU, a fast 503 that says
not to retry for a model larger than the budget, eviction of the idle model once it is free, and /v1/models and
/metrics telling where the memory went. Stand-in transcribers declare byte-sized footprints on `cuda`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from api.settings import Settings
from engines.base import Segment, TranscriberCapabilities, TranscriptionInfo
from engines.registry import EngineSpec
from tests.support.speech import encode, silence
from tests.unit.api.test_metrics import value
from voxloop.app import create_app


class NamedAsr:
    """Answers with its own model id, so a response shows which model served it."""

    capabilities = TranscriberCapabilities(languages=None, translate=False, word_timestamps=False)

    def __init__(self, name: str):
        self.name = name

    def transcribe(self, audio: Any, options: Any, cancel: Any) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        return TranscriptionInfo("en", audio.duration), iter([Segment(0, 0.0, audio.duration, f" from {self.name}")])

    def close(self) -> None:
        pass


def _asr(model_id: str, memory: int) -> EngineSpec:
    return EngineSpec(model_id, "transcription", lambda: NamedAsr(model_id), capabilities=NamedAsr.capabilities,
                      device="cuda", memory_bytes=memory)


async def test_memory_budget_through_http(tmp_path: Path) -> None:
    app = create_app(Settings(cache_dir=tmp_path, retry_after_seconds=3, models={"gpu_memory_budget": "1KiB"}))
    services = app.state.services
    held, wanted, huge = _asr("held-asr", 600), _asr("wanted-asr", 600), _asr("huge-asr", 4096)
    for spec in (held, wanted, huge):
        services.registry.add(spec)
    wav = encode(silence(1.0))

    async def transcribe(client: httpx.AsyncClient, model: str) -> httpx.Response:
        return await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": model})

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        async with services.manager.lease(held):  # a request in progress on held-asr
            busy = await transcribe(client, "wanted-asr")
        assert busy.status_code == 503 and busy.headers["retry-after"] == "3"
        error = busy.json()["error"]
        assert (error["type"], error["code"], error["param"]) == ("server_error", "insufficient_memory", None)
        assert "'wanted-asr'" in error["message"] and "held-asr" in error["message"] and "cuda:0" in error["message"]

        served = await transcribe(client, "wanted-asr")  # held-asr is idle now: evicted to make room
        assert served.status_code == 200 and served.json()["text"] == "from wanted-asr"
        held_card = (await client.get("/v1/models/held-asr")).json()
        wanted_card = (await client.get("/v1/models/wanted-asr")).json()
        assert held_card["state"] == "not_loaded" and wanted_card["state"] == "loaded"
        assert (wanted_card["device"], wanted_card["memory_bytes"]) == ("cuda", 600)

        too_big = await transcribe(client, "huge-asr")
        assert too_big.status_code == 503 and "retry-after" not in too_big.headers
        assert too_big.headers["x-should-retry"] == "false"
        error = too_big.json()["error"]
        assert (error["type"], error["code"]) == ("server_error", "model_exceeds_memory_budget")
        assert "needs about 4096 bytes on cuda:0, more than the whole budget of 1024 bytes" in error["message"]
        assert (await client.get("/v1/models/wanted-asr")).json()["state"] == "loaded", "nothing evicted for it"

        metrics = (await client.get("/metrics")).text
    assert value(metrics, "voxloop_rejections_total", reason="insufficient_memory") == 2
    assert value(metrics, "voxloop_model_unloads_total", model="held-asr", reason="memory_budget") == 1
    assert value(metrics, "voxloop_model_memory_bytes", model="wanted-asr", device="cuda") == 600
    assert value(metrics, "voxloop_model_memory_bytes", model="held-asr", device="cuda") == 0
    await services.manager.close()
