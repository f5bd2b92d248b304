"""/v1/models (list, retrieve with load state, unload) and the health probes."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.speech import encode, speak

pytestmark = pytest.mark.models


def test_list_models_with_sdk(sdk: openai.OpenAI) -> None:
    models = {m.id: m for m in sdk.models.list()}
    assert {"whisper-tiny.en", "whisper-base"} <= set(models)
    card = models["whisper-tiny.en"]
    assert card.object == "model" and card.owned_by and card.created > 0


async def test_retrieve_by_alias_shows_load_state_and_unload(http: httpx.AsyncClient) -> None:
    wav = encode(speak("Loading state check."), "wav")
    assert (await http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": "whisper-1"})).status_code == 200
    card = (await http.get("/v1/models/whisper-1")).json()
    assert card["id"] == "whisper-tiny.en" and card["state"] == "loaded" and card["capability"] == "transcription"
    deleted = (await http.delete("/v1/models/whisper-tiny.en")).json()
    assert deleted == {"id": "whisper-tiny.en", "object": "model", "deleted": True}
    assert (await http.get("/v1/models/whisper-tiny.en")).json()["state"] == "not_loaded"
    assert (await http.delete("/v1/models/whisper-tiny.en")).json()["deleted"] is False
    # It loads again on the next request.
    response = await http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": "whisper-1"})
    # Piper's synthesis is random (VITS noise), and tiny.en sometimes hears "Loading" as "Voting": check the rest.
    assert "state check" in response.json()["text"].lower()


async def test_unknown_model_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/models/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


async def test_health_and_ready(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}
    ready = (await http.get("/ready")).json()
    assert ready["status"] == "ready" and "whisper-tiny.en" in ready["models"] and ready["problems"] == {}


async def test_request_id_echoed(http: httpx.AsyncClient) -> None:
    response = await http.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert (await http.get("/health")).headers["x-request-id"].startswith("req_")
