"""Bad speech requests: every one is a 4xx with OpenAI's error body, before any audio is made."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

OK = {"model": "tts-1", "input": "Hello.", "voice": "alloy"}


@pytest.mark.parametrize(
    ("change", "status", "param", "code"),
    [
        ({"input": ""}, 400, "input", None),
        ({"input": "   \n "}, 400, "input", None),
        ({"input": "a" * 4097}, 400, "input", "string_too_long"),
        ({"input": "🎉🎉 [laugh]"}, 400, "input", None),
        ({"voice": "nobody"}, 400, "voice", "invalid_voice"),
        ({"model": "piper-joe", "voice": "jf_alpha"}, 400, "voice", "unsupported_voice"),
        ({"model": "kokoro-82m", "voice": "jf_alpha:x+jm_kumo"}, 400, "voice", "invalid_voice"),
        ({"voice": {"id": "voice_1234"}}, 400, "voice", "voice_not_found"),
        ({"model": "no-such-model"}, 404, "model", "model_not_found"),
        ({"model": "whisper-1"}, 404, "model", "model_not_found"),
        ({"response_format": "ogg"}, 400, "response_format", None),
        ({"speed": 0.1}, 400, "speed", None),
        ({"speed": 4.5}, 400, "speed", None),
        ({"stream_format": "chunks"}, 400, "stream_format", None),
        ({"instructions": "x" * 4097}, 400, "instructions", None),
        ({"input": None}, 400, "input", None),
    ],
)
async def test_bad_fields(http: httpx.AsyncClient, change: dict[str, Any], status: int, param: str,
                          code: str | None) -> None:
    body = {**OK, **change}
    response = await http.post("/v1/audio/speech", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]
    if code:
        assert error["code"] == code


async def test_missing_field(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input"


async def test_wrong_content_type(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/audio/speech", content=b"model=tts-1", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_malformed_json(http: httpx.AsyncClient, raw: bytes) -> None:
    response = await http.post("/v1/audio/speech", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_sdk_raises_typed_errors(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.audio.speech.create(model="tts-1", voice="nobody", input="Hi.")  # type: ignore[arg-type]
    assert bad.value.body["param"] == "voice"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        sdk.audio.speech.create(model="tts-9", voice="alloy", input="Hi.")


async def test_openai_voice_names_and_aliases_are_all_accepted(http: httpx.AsyncClient) -> None:
    from api.speech.protocol import OPENAI_VOICES

    voices = (await http.get("/v1/audio/voices")).json()["data"]
    for model in ("piper-joe", "kokoro-82m"):
        names = {a for v in voices if v["model"] == model for a in v["openai_aliases"]}
        assert names == set(OPENAI_VOICES)


async def test_speech_models_and_openai_aliases_are_listed(http: httpx.AsyncClient) -> None:
    ids = {m["id"] for m in (await http.get("/v1/models")).json()["data"]}
    assert {"piper-joe", "kokoro-82m", "voxloop-duet"} <= ids
    assert (await http.get("/v1/models/tts-1")).json()["id"] == "piper-joe"
    assert (await http.get("/v1/models/tts-1-hd")).json()["id"] == "kokoro-82m"
    assert (await http.get("/v1/models/gpt-4o-mini-tts")).json()["id"] == "voxloop-duet"


def test_router_service_for_the_voice_loop(app) -> None:
    speech = app.state.services.speech
    decision = speech.route("<think>hmm</think>That is hilarious [laugh]!")
    assert (decision.role, decision.model, decision.emotion) == ("expressive", "kokoro-82m", "happy")
    assert "laugh" in decision.reason
    assert speech.route("Your order has shipped.").model == "piper-joe"
