"""RemoteSynthesizer and its voice catalog without a network: the request, streamed pcm, cancel, learnt voices."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from engines.base import CancelledByClient, CancelToken, SynthesisOptions, UpstreamRejectedError
from engines.remote.speech import PCM_RATE, RemoteSynthesizer, RemoteVoiceCatalog
from engines.settings import RemoteEndpoint

ENDPOINT = RemoteEndpoint(base_url="http://up/v1", model="chatterbox-turbo")
VOICES = {
    "data": [
        {"id": "anna", "name": "Anna", "model": "chatterbox-turbo", "language": "en-us", "gender": "female",
         "tags": ["laugh", "sigh"], "cloning": True, "openai_aliases": ["alloy", "nova"]},
        {"id": "ben", "name": "Ben", "model": "chatterbox-turbo", "language": "en-gb", "tags": ["laugh"]},
    ],
    "tag_vocabulary": ["laugh", "sigh"],
}


class Pieces(httpx.SyncByteStream):
    """A response body that arrives in the given pieces, and records how far it was read and whether closed."""

    def __init__(self, pieces: list[bytes]):
        self.pieces, self.sent, self.closed = pieces, 0, False

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            self.sent += 1
            yield piece

    def close(self) -> None:
        self.closed = True


def upstream(pieces: list[bytes] | None = None, voices: dict | httpx.Response = VOICES):
    seen: list[httpx.Request] = []
    body = Pieces(pieces or [])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/audio/voices":
            return voices if isinstance(voices, httpx.Response) else httpx.Response(200, json=voices)
        return httpx.Response(200, stream=body, headers={"content-type": "audio/pcm"})

    return httpx.MockTransport(handler), seen, body


def pcm(values: list[int]) -> bytes:
    return np.array(values, "<i2").tobytes()


def test_catalog_learns_voices_tags_and_cloning_from_the_remote() -> None:
    transport, seen, _ = upstream()
    catalog = RemoteVoiceCatalog(ENDPOINT, transport=transport)
    assert catalog.voices == () and catalog.default_voice() == "alloy"
    catalog.refresh()
    assert [v.id for v in catalog.voices] == ["anna", "ben"]
    assert catalog.voice("ben").language == "en-gb"
    assert catalog.tags == frozenset({"laugh", "sigh"}) and catalog.cloning is True
    assert catalog.voice("anna").openai_aliases == ("alloy", "nova")
    assert catalog.checks_voices is True and catalog.sample_rate == PCM_RATE
    assert seen[0].url.params["model"] == "chatterbox-turbo"


def test_catalog_keeps_what_it_knew_when_the_remote_has_no_listing() -> None:
    answers = [httpx.Response(200, json=VOICES), httpx.Response(404, json={"error": {"message": "no route"}})]
    catalog = RemoteVoiceCatalog(ENDPOINT, transport=httpx.MockTransport(lambda request: answers.pop(0)))
    catalog.refresh()
    catalog.refresh()
    assert not answers and [v.id for v in catalog.voices] == ["anna", "ben"]


def test_catalog_does_not_ask_again_within_max_age() -> None:
    transport, seen, _ = upstream()
    catalog = RemoteVoiceCatalog(ENDPOINT, transport=transport)
    catalog.refresh()
    catalog.refresh(max_age=3600)
    assert len(seen) == 1


def test_streams_pcm_as_chunks_as_it_arrives_and_sends_the_request() -> None:
    # Pieces end inside a sample: the odd byte waits for the next piece.
    raw = pcm([0, 16384, -16384, 32767, -32768])
    transport, seen, _ = upstream([raw[:3], raw[3:7], raw[7:]])
    engine = RemoteSynthesizer(ENDPOINT, RemoteVoiceCatalog(ENDPOINT, transport=transport), transport=transport)
    chunks = list(engine.synthesize("Hello there.", SynthesisOptions(voice="anna", speed=1.5), CancelToken()))
    assert len(chunks) == 3 and all(c.sample_rate == PCM_RATE for c in chunks)
    samples = np.concatenate([c.samples for c in chunks])
    np.testing.assert_allclose(samples, [0, 0.5, -0.5, 32767 / 32768, -1.0])
    speech = next(r for r in seen if r.url.path == "/v1/audio/speech")
    assert json.loads(speech.content) == {
        "model": "chatterbox-turbo", "input": "Hello there.", "voice": "anna", "response_format": "pcm", "speed": 1.5,
    }


def test_cancel_closes_the_stream() -> None:
    transport, _, body = upstream([pcm([1] * 10)] * 5)
    engine = RemoteSynthesizer(ENDPOINT, RemoteVoiceCatalog(ENDPOINT, transport=transport), transport=transport)
    cancel = CancelToken()
    chunks = engine.synthesize("Hello.", SynthesisOptions(voice="anna"), cancel)
    next(chunks)
    cancel.cancel()
    with pytest.raises(CancelledByClient):
        next(chunks)
    assert body.closed and body.sent < 5


def test_an_unknown_voice_is_refused_in_the_remotes_words() -> None:
    refusal = httpx.Response(400, json={"error": {"message": "Unknown voice 'zed'.", "param": "voice"}})
    catalog = RemoteVoiceCatalog(ENDPOINT, transport=upstream()[0])
    engine = RemoteSynthesizer(ENDPOINT, catalog, transport=httpx.MockTransport(lambda request: refusal))
    with pytest.raises(UpstreamRejectedError, match="Unknown voice 'zed'") as caught:
        list(engine.synthesize("Hi.", SynthesisOptions(voice="zed"), CancelToken()))
    assert caught.value.param == "voice"
