"""Every kind of bad transcription request gets a 4xx with the OpenAI error body, and the server keeps serving."""

from __future__ import annotations

import httpx
import numpy as np
import openai
import pytest

from tests.support.speech import encode, speak

pytestmark = pytest.mark.models


def _assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"] and "detail" not in body
    if param is not None:
        assert body["error"]["param"] == param, body
    return body["error"]


@pytest.fixture(scope="module")
def good_wav() -> bytes:
    return encode(speak("Hello there, how are you today?"), "wav")


URL = "/v1/audio/transcriptions"


async def test_empty_file(http: httpx.AsyncClient) -> None:
    error = _assert_openai_error(await http.post(URL, files={"file": ("a.wav", b"")}, data={"model": "whisper-1"}), 400, "file")
    assert "empty" in error["message"]


@pytest.mark.parametrize("payload", [b"\x00" * 10, np.random.default_rng(1).bytes(50_000), b"%PDF-1.4 not audio" * 100])
async def test_random_or_non_audio_bytes(http: httpx.AsyncClient, payload: bytes) -> None:
    error = _assert_openai_error(await http.post(URL, files={"file": ("a.mp3", payload)}, data={"model": "whisper-1"}), 400, "file")
    assert error["code"] == "invalid_audio"


async def test_truncated_header(http: httpx.AsyncClient, good_wav: bytes) -> None:
    _assert_openai_error(await http.post(URL, files={"file": ("a.wav", good_wav[:30])}, data={"model": "whisper-1"}), 400, "file")


async def test_truncated_body_still_transcribes_what_is_there(http: httpx.AsyncClient, good_wav: bytes) -> None:
    # A cut-off recording is still audio: like FFmpeg, decode what arrived rather than refuse it.
    response = await http.post(URL, files={"file": ("a.wav", good_wav[: len(good_wav) // 2])}, data={"model": "whisper-1"})
    assert response.status_code == 200 and "hello" in response.json()["text"].lower()


async def test_video_without_audio_stream(http: httpx.AsyncClient) -> None:
    import io

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    error = _assert_openai_error(await http.post(URL, files={"file": ("v.mp4", buf.getvalue())}, data={"model": "whisper-1"}), 400)
    assert "no audio stream" in error["message"]


async def test_unknown_model(http: httpx.AsyncClient, good_wav: bytes) -> None:
    error = _assert_openai_error(await http.post(URL, files={"file": ("a.wav", good_wav)}, data={"model": "nope"}), 404, "model")
    assert error["code"] == "model_not_found" and "whisper-1" in error["message"]


async def test_missing_model_and_missing_file(http: httpx.AsyncClient, good_wav: bytes) -> None:
    _assert_openai_error(await http.post(URL, files={"file": ("a.wav", good_wav)}), 400, "model")
    _assert_openai_error(await http.post(URL, files={"x": ("a.wav", b"1")}, data={"model": "whisper-1"}), 400, "file")
    _assert_openai_error(await http.post(URL, data={"model": "whisper-1", "file": "not a file"}), 400, "file")


async def test_json_body_to_multipart_endpoint(http: httpx.AsyncClient) -> None:
    error = _assert_openai_error(await http.post(URL, json={"model": "whisper-1", "file": "x"}), 415, "file")
    assert "multipart/form-data" in error["message"]


async def test_malformed_multipart(http: httpx.AsyncClient) -> None:
    response = await http.post(URL, content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"})
    _assert_openai_error(response, 400)


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("response_format", "xml", "response_format"),
        ("timestamp_granularities[]", "char", "timestamp_granularities"),
        ("temperature", "warm", "temperature"),
        ("temperature", "1.5", "temperature"),
        ("language", "klingon", "language"),
        ("language", "fr", "language"),  # tiny.en is English-only
        ("chunking_strategy", "{not json", "chunking_strategy"),
        ("chunking_strategy", '{"type": "server_vad", "threshold": 3}', "chunking_strategy.server_vad.threshold"),
        ("response_format", "diarized_json", "response_format"),
    ],
)
async def test_bad_fields(http: httpx.AsyncClient, good_wav: bytes, field: str, value: str, param: str) -> None:
    response = await http.post(URL, files={"file": ("a.wav", good_wav)}, data={"model": "whisper-1", field: value})
    error = _assert_openai_error(response, 400)
    assert error["param"].startswith(param.split(".")[0]), error


async def test_translation_needs_multilingual_model(http: httpx.AsyncClient, good_wav: bytes) -> None:
    response = await http.post("/v1/audio/translations", files={"file": ("a.wav", good_wav)}, data={"model": "whisper-tiny.en"})
    assert "cannot translate" in _assert_openai_error(response, 400, "model")["message"]


async def test_over_size_limit(http: httpx.AsyncClient, settings) -> None:
    big = b"\0" * (settings.max_upload_bytes + 1)
    error = _assert_openai_error(await http.post(URL, files={"file": ("big.wav", big)}, data={"model": "whisper-1"}), 413)
    assert error["code"] == "payload_too_large"


async def test_over_size_limit_chunked(http: httpx.AsyncClient, settings) -> None:
    async def body():  # no Content-Length: the limit must be enforced while the body streams in
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(settings.max_upload_bytes // 65536 + 2):
            yield b"\0" * 65536

    response = await http.post(URL, content=body(), headers={"content-type": "multipart/form-data; boundary=x"})
    _assert_openai_error(response, 413)


async def test_unknown_route_and_method(http: httpx.AsyncClient) -> None:
    _assert_openai_error(await http.get("/v1/nope"), 404)
    _assert_openai_error(await http.get(URL), 405)


def test_sdk_raises_typed_errors(sdk: openai.OpenAI, good_wav: bytes) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.audio.transcriptions.create(model="does-not-exist", file=("a.wav", good_wav))
    with pytest.raises(openai.BadRequestError) as info:
        sdk.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"garbage" * 50))
    assert info.value.body["code"] == "invalid_audio"  # type: ignore[index]


async def test_server_still_serves_after_bad_input(http: httpx.AsyncClient, good_wav: bytes) -> None:
    for _ in range(3):
        await http.post(URL, files={"file": ("a.wav", b"junk")}, data={"model": "whisper-1"})
    response = await http.post(URL, files={"file": ("a.wav", good_wav)}, data={"model": "whisper-1"})
    assert response.status_code == 200 and "hello" in response.json()["text"].lower()
