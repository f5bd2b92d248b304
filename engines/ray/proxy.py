"""Engines that live in Ray Serve deployments, behind the same Protocols as in-process engines.

`RayTranscriber`, `RaySynthesizer` and `RayEmotionRecognizer` are what the model manager loads when voxloop runs on
Ray (voxloop/ray.py swaps them into the registry): the services, routers and the wire do not change. Each call goes
through a deployment handle; streaming calls use `stream=True`, so segments and speech chunks arrive one by one.
They run on the manager's engine threads (never on an event loop), so blocking on a handle is fine here.

Ray's failures become engine errors the API already maps (api/http/errors.py):
- a replica that died or cannot be reached -> `ReplicaUnavailableError` (an `EngineUnavailableError`: 503 with
  Retry-After; Serve routes the next requests to the other replicas while the controller restarts it);
- the deployment's queue is full (`max_queued_requests`) -> `EngineOverloadedError` (429);
- no answer within the timeout -> `EngineTimeoutError` (504);
- an engine error raised in the replica -> that same error, re-raised here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from engines.base import (
    AudioBuffer,
    AudioChunk,
    CancelToken,
    EmotionOptions,
    EmotionScores,
    EngineError,
    EngineOverloadedError,
    EngineTimeoutError,
    EngineUnavailableError,
    Segment,
    StreamingUpdate,
    SynthesisOptions,
    TranscriptionInfo,
    TranscriptionOptions,
    Voice,
)

# How long one engine call may take end to end before the request gets a 504.
DEFAULT_TIMEOUT_SECONDS = 300.0


class ReplicaUnavailableError(EngineUnavailableError):
    """The replica serving the request died or could not be reached; another one (or its restart) will answer."""


def engine_error(exc: BaseException, deployment: str) -> BaseException:
    """Ray's exception as the engine error the API maps; anything else is returned unchanged."""
    import ray.exceptions as rex
    from ray.serve.exceptions import BackPressureError

    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, BackPressureError):
        return EngineOverloadedError(f"The '{deployment}' deployment's queue is full; try again shortly.")
    if isinstance(exc, (rex.GetTimeoutError, TimeoutError)):
        return EngineTimeoutError(f"The '{deployment}' deployment did not answer in time.")
    if isinstance(exc, rex.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, EngineError):
            return cause
        if isinstance(cause, (rex.RayActorError, rex.ActorUnavailableError)):
            return ReplicaUnavailableError(f"A replica of '{deployment}' failed mid-request: {cause}")
        return exc
    if isinstance(exc, (rex.RayActorError, rex.ActorUnavailableError, rex.WorkerCrashedError,
                        rex.NodeDiedError, rex.ObjectLostError)):
        return ReplicaUnavailableError(f"The replica of '{deployment}' serving this request died; it is restarting.")
    return exc


class DeploymentClient:
    """A lazily made handle to one deployment of one Serve application, with error mapping. It counts the calls
    in flight through it (`ongoing`), which the deployment's state reports (engines/ray/state.py)."""

    def __init__(self, deployment: str, app_name: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 get_handle: Callable[[str, str], Any] | None = None):
        self.deployment = deployment
        self.app_name = app_name
        self.timeout = timeout
        self._get_handle = get_handle
        self._handle: Any = None
        self._methods: dict[tuple[str, bool], Any] = {}  # (method, stream) -> its handle, made once
        self._lock = threading.Lock()
        self._ongoing = 0

    @property
    def ongoing(self) -> int:
        return self._ongoing

    @contextmanager
    def _counted(self) -> Iterator[None]:
        with self._lock:
            self._ongoing += 1
        try:
            yield
        finally:
            with self._lock:
                self._ongoing -= 1

    @property
    def handle(self) -> Any:
        if self._handle is None:
            if self._get_handle is None:
                from ray import serve

                self._handle = serve.get_deployment_handle(self.deployment, self.app_name)
            else:
                self._handle = self._get_handle(self.deployment, self.app_name)
        return self._handle

    def method(self, name: str, *, stream: bool = False) -> Any:
        """The handle for one method, made once: `handle.method` and `.options()` each build a new handle object
        (and log it) on every call; these share the deployment's router."""
        key = (name, stream)
        handle = self._methods.get(key)
        if handle is None:
            handle = self._methods[key] = self.handle.options(method_name=name, stream=stream)
        return handle

    def call(self, method: str, *args: Any) -> Any:
        with self._counted():
            try:
                return self.method(method).remote(*args).result(timeout_s=self.timeout)
            except BaseException as exc:
                _raise_mapped(exc, self.deployment)

    def stream(self, method: str, *args: Any, cancel: CancelToken) -> Iterator[Any]:
        with self._counted():
            yield from self._stream(method, *args, cancel=cancel)

    def _stream(self, method: str, *args: Any, cancel: CancelToken) -> Iterator[Any]:
        try:
            response = self.method(method, stream=True).remote(*args)
        except BaseException as exc:
            _raise_mapped(exc, self.deployment)
        try:
            while True:
                cancel.raise_if_cancelled()
                try:
                    item = next(response)
                except StopIteration:
                    return
                except BaseException as exc:
                    _raise_mapped(exc, self.deployment)
                yield item
        finally:
            cancel_response = getattr(response, "cancel", None)
            if cancel_response is not None:
                cancel_response()  # a consumer that left early (or a cancel) stops the replica's generator


def _raise_mapped(exc: BaseException, deployment: str) -> None:
    mapped = engine_error(exc, deployment)
    if mapped is exc:
        raise exc
    raise mapped from exc


def deployment_problem(deployment: str, app_name: str) -> str | None:
    """/ready's probe for a deployed model: None while a replica runs, else what the Serve controller says."""
    from ray import serve

    app = serve.status().applications.get(app_name)
    info = app.deployments.get(deployment) if app is not None else None
    if info is None:
        return f"the Ray deployment '{deployment}' is not deployed"
    running = sum(n for state, n in info.replica_states.items() if str(getattr(state, "value", state)) == "RUNNING")
    if running == 0:
        return f"the Ray deployment '{deployment}' has no running replica ({getattr(info.status, 'value', info.status)})"
    return None


class RayTranscriber:
    """`Transcriber` (and `StreamingTranscriber` when the model streams) served by a deployment."""

    def __init__(self, client: DeploymentClient, capabilities: Any):
        self._client = client
        self.capabilities = capabilities

    def transcribe(
        self, audio: AudioBuffer, options: TranscriptionOptions, cancel: CancelToken
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        cancel.raise_if_cancelled()
        items = self._client.stream("transcribe", audio, options, cancel=cancel)
        info = next(items)  # the replica yields the info first
        return info, items

    def stream_transcribe(
        self, chunks: Iterable[AudioBuffer], options: TranscriptionOptions, cancel: CancelToken
    ) -> Iterator[StreamingUpdate]:
        """Live audio in, updates out. A handle takes its arguments whole, so the audio goes through a Ray queue (a
        small actor owned by this process) that a feeder thread fills as `chunks` yields; the replica reads it
        while its updates stream back here."""
        from ray.util.queue import Queue

        audio = Queue(actor_options={"num_cpus": 0})
        feeder = threading.Thread(target=_feed, args=(chunks, audio, cancel), daemon=True,
                                  name="ray-stream-audio")
        feeder.start()
        try:
            yield from self._client.stream("stream_transcribe", audio, options, cancel=cancel)
        finally:
            audio.shutdown(force=True)  # a feeder still running finds the queue gone and stops

    def close(self) -> None:
        pass


def _feed(chunks: Iterable[AudioBuffer], audio: Any, cancel: CancelToken) -> None:
    """Put each chunk on the queue as it comes, then None (the end); a queue gone (the call ended) stops it."""
    try:
        for chunk in chunks:
            if cancel.cancelled:
                return
            audio.put(chunk)
        audio.put(None)
    except Exception:  # the queue's actor is gone: the call ended and nobody reads any more
        return


class RaySynthesizer:
    """`Synthesizer` served by a deployment; chunks stream back phrase by phrase."""

    def __init__(self, client: DeploymentClient, capabilities: Any):
        self._client = client
        self.capabilities = capabilities

    def voices(self) -> list[Voice]:
        return list(self.capabilities.voices)

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        cancel.raise_if_cancelled()
        yield from self._client.stream("synthesize", text, options, cancel=cancel)

    def close(self) -> None:
        pass


class RayEmotionRecognizer:
    """`EmotionRecognizer` served by a deployment."""

    def __init__(self, client: DeploymentClient, capabilities: Any):
        self._client = client
        self.capabilities = capabilities

    def recognize(self, audio: AudioBuffer, options: EmotionOptions, cancel: CancelToken) -> EmotionScores:
        cancel.raise_if_cancelled()
        return self._client.call("recognize", audio, options)

    def close(self) -> None:
        pass


class RayChat:
    """The embedded LLM (llama.cpp) served by a deployment: `complete` and `stream` as `LlamaCppChat` has them;
    streamed chunks (one per token) arrive as the replica makes them."""

    def __init__(self, client: DeploymentClient, capabilities: Any):
        self._client = client
        self.capabilities = capabilities

    def complete(self, body: dict[str, Any], cancel: CancelToken | None = None) -> dict[str, Any]:
        (cancel or CancelToken()).raise_if_cancelled()  # a whole-result call runs to its end in the replica
        return self._client.call("complete", body)

    def stream(self, body: dict[str, Any], cancel: CancelToken) -> Iterator[dict[str, Any]]:
        cancel.raise_if_cancelled()
        yield from self._client.stream("stream_chat", body, cancel=cancel)

    def close(self) -> None:
        pass


PROXIES: dict[str, type] = {
    "transcription": RayTranscriber,
    "speech": RaySynthesizer,
    "emotion": RayEmotionRecognizer,
    "chat": RayChat,
}
