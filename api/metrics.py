"""Prometheus metrics for one app instance: built by `create_app` on its own `CollectorRegistry`.

Nothing here is module-global, so two apps in one process (tests, benches) never share or double-register
series. Code that knows about engine work records it through the `observe_*` helpers; the HTTP middleware records
requests; the model manager reports loads, unloads (with their reason: idle, requested, shutdown, memory_budget) and
per-model rejections through its `on_event` callback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from engines.manager import ModelManager
    from engines.registry import EngineRegistry, ServingState

T = TypeVar("T")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Request latencies run from milliseconds (health, errors) to minutes (hour-long uploads).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# Realtime factors: processing time / audio time; below 1 is faster than real time.
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5)
# Voice-loop stages (VAD, ASR, LLM first token, TTS first audio) live between 10 ms and a few seconds.
STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)


class _ModelStateCollector(Collector):
    """Per-model gauges read at scrape time from the manager, so they can never drift from the truth."""

    def __init__(self, registry: EngineRegistry, manager: ModelManager):
        self._registry = registry
        self._manager = manager

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loaded = GaugeMetricFamily(
            "voxloop_model_loaded", "1 when the model's weights are in memory.", labels=["model"]
        )
        in_flight = GaugeMetricFamily(
            "voxloop_model_requests_in_flight", "Requests admitted to the model (queue depth).", labels=["model"]
        )
        memory = GaugeMetricFamily(
            "voxloop_model_memory_bytes",
            "Memory a loaded model is counted for on its device (measured, else estimated); 0 when not loaded.",
            labels=["model", "device"],
        )
        for spec in self._registry.specs():
            is_loaded = self._manager.state(spec.model_id) == "loaded"
            loaded.add_metric([spec.model_id], 1.0 if is_loaded else 0.0)
            in_flight.add_metric([spec.model_id], float(self._manager.in_flight(spec.model_id)))
            memory.add_metric([spec.model_id, spec.device], float(self._manager.memory(spec)) if is_loaded else 0.0)
        yield loaded
        yield in_flight
        yield memory


class _ServingCollector(Collector):
    """Per-deployment gauges (`voxloop ray`) from states the caller read off the event loop for this scrape."""

    def __init__(self, serving: Mapping[str, ServingState | str]):
        self._serving = serving

    def collect(self) -> Iterator[GaugeMetricFamily]:
        replicas = GaugeMetricFamily(
            "voxloop_deployment_replicas",
            "Replicas of a model's own deployment: running now, and the target its controller scales to.",
            labels=["model", "deployment", "kind"],
        )
        ongoing = GaugeMetricFamily(
            "voxloop_deployment_ongoing_requests", "Requests this server has in flight to the deployment.",
            labels=["model", "deployment"],
        )
        queued = GaugeMetricFamily(
            "voxloop_deployment_queued_requests", "Requests waiting for a free replica slot of the deployment.",
            labels=["model", "deployment"],
        )
        loaded = GaugeMetricFamily(
            "voxloop_deployment_loaded", "1 while a replica of the deployment runs (its weights loaded).",
            labels=["model", "deployment"],
        )
        for model, state in self._serving.items():
            if isinstance(state, str):  # its controller could not be read: no series rather than a wrong one
                continue
            labels = [model, state.deployment]
            replicas.add_metric([*labels, "running"], float(state.replicas_running))
            replicas.add_metric([*labels, "target"], float(state.replicas_target))
            ongoing.add_metric(labels, float(state.ongoing))
            queued.add_metric(labels, float(state.queued))
            loaded.add_metric(labels, 1.0 if state.state == "loaded" else 0.0)
        yield from (replicas, ongoing, queued, loaded)


class Metrics:
    """All of voxloop's series, registered on one registry owned by one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "voxloop_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "voxloop_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("voxloop_http_requests_in_flight", "HTTP requests being served.", registry=r)
        self.rejections = Counter(
            "voxloop_rejections", "Requests refused before any work: limits, overload, auth.", ["reason"], registry=r
        )
        self.model_loads = Counter("voxloop_model_loads", "Models loaded.", ["model"], registry=r)
        self.model_unloads = Counter(
            "voxloop_model_unloads",
            "Models unloaded, by reason: idle (TTL), requested (DELETE), shutdown, memory_budget (evicted).",
            ["model", "reason"],
            registry=r,
        )
        self.model_load_seconds = Histogram(
            "voxloop_model_load_seconds", "Time to load a model.", ["model"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.engine_latency = Histogram(
            "voxloop_engine_duration_seconds",
            "Engine work per request, by endpoint and engine.",
            ["endpoint", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rtf = Histogram(
            "voxloop_realtime_factor", "Processing seconds per audio second.", ["endpoint", "model"],
            buckets=RTF_BUCKETS, registry=r,
        )
        self.audio_seconds = Counter(
            "voxloop_audio_seconds", "Audio processed or produced, in seconds.", ["endpoint", "model"], registry=r
        )
        self.first_audio = Histogram(
            "voxloop_time_to_first_audio_seconds", "Time from request to the first audio byte of speech.", ["model"],
            buckets=STAGE_BUCKETS, registry=r,
        )
        self.realtime_stage = Histogram(
            "voxloop_realtime_stage_seconds", "Latency of each realtime voice-loop stage.", ["stage"],
            buckets=STAGE_BUCKETS, registry=r,
        )
        self.speculation = Counter(
            "voxloop_realtime_speculation_total", "Replies to user turns by speculation outcome: hit (the reply "
            "prepared during the pause was released), miss (it was dropped), none (no pause to speculate on).",
            ["outcome"], registry=r,
        )
        self.speculation_dropped_total = Counter(
            "voxloop_realtime_speculations_dropped_total", "Speculative replies dropped unseen, by reason: resumed "
            "(the user went on speaking), cleared (the turn was cleared or the session changed), differs (the "
            "committed turn's transcript or request differed), late (not ready when the reply started).",
            ["reason"], registry=r,
        )
        self.realtime_sessions = Gauge("voxloop_realtime_sessions", "Open realtime sessions.", registry=r)
        # Leak detectors for long runs: process RSS, open fds, threads (process_*), and live asyncio tasks.
        ProcessCollector(registry=r)
        Gauge("voxloop_asyncio_tasks", "Live asyncio tasks in the server's loop.", registry=r).set_function(_task_count)

    def watch_models(self, registry: EngineRegistry, manager: ModelManager) -> None:
        self.registry.register(_ModelStateCollector(registry, manager))

    # Helpers for the code that does the work. All are cheap and never raise into the request path.

    def reject(self, reason: str) -> None:
        self.rejections.labels(reason).inc()

    def model_event(self, kind: str, model_id: str, seconds: float = 0.0, reason: str = "") -> None:
        """The model manager's `on_event` callback: ("load", id, seconds), ("unload", id, 0, reason), and
        ("reject", id, 0, reason) with reason model_concurrency (429) or insufficient_memory (503)."""
        if kind == "load":
            self.model_loads.labels(model_id).inc()
            self.model_load_seconds.labels(model_id).observe(seconds)
        elif kind == "unload":
            self.model_unloads.labels(model_id, reason or "requested").inc()
        elif kind == "reject":
            self.rejections.labels(reason or "model_concurrency").inc()

    def observe_engine(self, endpoint: str, model: str, seconds: float, audio_seconds: float | None = None) -> None:
        """One engine call: its duration and, for audio in or out, the audio length and the realtime factor."""
        self.engine_latency.labels(endpoint, model).observe(seconds)
        if audio_seconds:
            self.audio_seconds.labels(endpoint, model).inc(audio_seconds)
            self.rtf.labels(endpoint, model).observe(seconds / audio_seconds)

    def observe_first_audio(self, model: str, seconds: float) -> None:
        self.first_audio.labels(model).observe(seconds)

    def observe_realtime_stage(self, stage: str, seconds: float) -> None:
        """Stages: e.g. `vad`, `asr`, `llm_first_token`, `tts_first_audio`, `end_to_end`."""
        self.realtime_stage.labels(stage).observe(seconds)

    def observe_speculation(self, outcome: str) -> None:
        self.speculation.labels(outcome).inc()

    def speculation_dropped(self, reason: str) -> None:
        self.speculation_dropped_total.labels(reason).inc()

    def render(self, serving: Mapping[str, ServingState | str] | None = None) -> bytes:
        """The exposition; `serving` adds the per-deployment series (api/models/service.py `serving_states`)."""
        text = generate_latest(self.registry)
        if serving:
            extra = CollectorRegistry(auto_describe=False)
            extra.register(_ServingCollector(serving))
            text += generate_latest(extra)
        return text


def _task_count() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # scraped outside the event loop (a direct render() call)
        return float("nan")


def route_label(scope: Scope) -> str:
    """The matched route's template (`/v1/models/{model_id}`), never the raw path: bounded label cardinality."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics, clock: Callable[[], float] = time.perf_counter):
        self.app = app
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, capture)
        finally:
            self.metrics.in_flight.dec()
            route, method = route_label(scope), scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(self.clock() - started)


async def timed_first(chunks: AsyncIterator[T], observe: Callable[[float], None]) -> AsyncIterator[T]:
    """Pass `chunks` through, reporting the seconds until the first one (time to first audio)."""
    started = time.perf_counter()
    first = True
    async with aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            if first:
                observe(time.perf_counter() - started)
                first = False
            yield chunk
