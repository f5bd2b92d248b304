"""Ray proxies' error mapping and streaming, against a stand-in handle (the real cluster: tests/e2e/test_ray_serve.py).

`StandInHandle` is a test double for a Serve deployment handle (its `.remote(...).result()` and streamed
iteration), so each Ray failure can be raised on cue; the mapping to HTTP is api/http/errors.py's own.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray", reason="needs the ray extra")
import ray.exceptions as rex  # noqa: E402
from ray.serve.exceptions import BackPressureError  # noqa: E402

from api.http.errors import api_error_from_engine  # noqa: E402
from engines.base import (  # noqa: E402
    AudioChunk,
    CancelledByClient,
    CancelToken,
    EngineOverloadedError,
    EngineTimeoutError,
    InvalidAudioError,
    SynthesisOptions,
    SynthesizerCapabilities,
)
from engines.ray.proxy import DeploymentClient, RaySynthesizer, ReplicaUnavailableError  # noqa: E402
from engines.registry import EngineRegistry, EngineSpec  # noqa: E402

pytestmark = pytest.mark.ray


class StandInResponse:
    def __init__(self, outcome):
        self._outcome = outcome
        self.cancelled = False

    def result(self, timeout_s=None):
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome

    def __next__(self):
        item = next(self._outcome)
        if isinstance(item, BaseException):
            raise item
        return item

    def cancel(self):
        self.cancelled = True


class StandInHandle:
    """Test double for a Serve DeploymentHandle: each method call answers the next scripted outcome."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.responses: list[StandInResponse] = []

    def options(self, method_name=None, **_):
        return self if method_name is None else getattr(self, method_name)

    def __getattr__(self, method):
        handle = self

        class Method:
            def remote(self, *args):
                response = StandInResponse(handle.outcome)
                handle.responses.append(response)
                return response

        return Method()


def client(outcome) -> tuple[DeploymentClient, StandInHandle]:
    handle = StandInHandle(outcome)
    return DeploymentClient("engine-x", "voxloop", get_handle=lambda *_: handle), handle


@pytest.mark.parametrize(
    ("raised", "mapped", "status"),
    [
        (rex.ActorDiedError(), ReplicaUnavailableError, 503),
        (rex.ActorUnavailableError("gone", None), ReplicaUnavailableError, 503),
        (BackPressureError(num_queued_requests=64, max_queued_requests=64), EngineOverloadedError, 429),
        (rex.GetTimeoutError("slow"), EngineTimeoutError, 504),
        (InvalidAudioError("not audio"), InvalidAudioError, 400),
    ],
)
def test_ray_failures_become_engine_errors_the_api_maps(raised, mapped, status) -> None:
    deployment, _ = client(raised)
    with pytest.raises(mapped) as caught:
        deployment.call("recognize", object(), object())
    error = api_error_from_engine(caught.value, retry_after=2)
    assert error.status == status
    if status in (503, 429):
        assert error.headers["Retry-After"] == "2"


def test_speech_streams_chunk_by_chunk_and_a_death_mid_stream_is_retryable() -> None:
    chunk = AudioChunk(np.zeros(240, dtype=np.float32), 24_000, "hi")
    deployment, handle = client(iter([chunk, chunk, rex.ActorDiedError()]))
    caps = SynthesizerCapabilities(voices=(), sample_rate=24_000)
    chunks = RaySynthesizer(deployment, caps).synthesize("hi", SynthesisOptions(voice="v"), CancelToken())
    assert next(chunks) is chunk and next(chunks) is chunk
    with pytest.raises(ReplicaUnavailableError):
        next(chunks)
    assert handle.responses[0].cancelled


def test_a_cancel_stops_the_stream_and_cancels_the_replica_call() -> None:
    chunk = AudioChunk(np.zeros(240, dtype=np.float32), 24_000)
    deployment, handle = client(iter([chunk] * 5))
    cancel = CancelToken()
    chunks = RaySynthesizer(deployment, SynthesizerCapabilities(voices=(), sample_rate=24_000)).synthesize(
        "hi", SynthesisOptions(voice="v"), cancel)
    next(chunks)
    cancel.cancel()
    with pytest.raises(CancelledByClient):
        next(chunks)
    assert handle.responses[0].cancelled


def test_registry_replace_swaps_a_specs_factory() -> None:
    registry = EngineRegistry([EngineSpec("m", "speech", factory=lambda: "local", aliases=("tts-1",))])
    registry.replace("m", factory=lambda: "ray", device="remote")
    assert registry.resolve("tts-1", "speech").factory() == "ray"
    assert registry.resolve("m").device == "remote"


def test_chat_streams_token_chunks_and_completes_through_the_llm_deployment() -> None:
    from engines.ray.proxy import PROXIES, RayChat

    chunks = [{"choices": [{"delta": {"content": word}}]} for word in ("Paris", " is", " it")]
    deployment, handle = client(iter(chunks))
    chat = PROXIES["chat"](deployment, None)
    assert isinstance(chat, RayChat)
    stream = chat.stream({"messages": []}, CancelToken())
    assert next(stream) is chunks[0] and deployment.ongoing == 1  # in flight while the replica still streams
    assert list(stream) == chunks[1:] and deployment.ongoing == 0
    deployment, _ = client({"choices": [{"message": {"content": "Paris"}}]})
    assert RayChat(deployment, None).complete({"messages": []})["choices"][0]["message"]["content"] == "Paris"
    deployment, _ = client(rex.ActorDiedError())
    with pytest.raises(ReplicaUnavailableError):
        RayChat(deployment, None).complete({"messages": []}, CancelToken())
