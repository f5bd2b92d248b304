"""The app factory: `create_app(settings)` builds the registry, the model manager, the services and the routes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from api.chat.service import ChatService
from api.custom_voices.service import CustomVoiceService
from api.deps import Services
from api.emotion.service import EmotionService
from api.http.errors import install_error_handlers
from api.metrics import Metrics, MetricsMiddleware
from api.native_memory import MallocTrimmer
from api.realtime.client_secrets import ClientSecretStore
from api.realtime.services import RealtimeServices
from api.realtime.sessions import RealtimeSessions
from api.realtime.webrtc.calls import CallRegistry
from api.settings import Settings
from api.speech.duet import duet_spec
from api.speech.service import SpeechService, openai_tts_aliases
from api.transcription.service import OPENAI_ASR_ALIASES, TranscriptionService
from api.warmup import WarmUp
from engines.chatterbox import chatterbox_specs
from engines.emotion2vec import emotion2vec_specs
from engines.kokoro_onnx import kokoro_specs
from engines.kokoro_torch import kokoro_torch_specs
from engines.llama_cpp_chat import llama_cpp_specs
from engines.manager import ModelManager
from engines.nemo import nemo_specs
from engines.piper import piper_specs
from engines.placement import MemoryBudget
from engines.prosody_baseline import baseline_spec
from engines.registry import EngineRegistry
from engines.remote.specs import remote_specs
from engines.silero_vad import SileroVadPool
from engines.whisper import whisper_specs
from engines.whisperx_engine import whisperx_specs
from middleware.access_log import AccessLogMiddleware
from middleware.auth import ApiKeyMiddleware
from middleware.json_depth import JsonDepthLimitMiddleware
from middleware.limits import BodySizeLimitMiddleware, ConcurrencyLimitMiddleware
from middleware.request_id import RequestIdMiddleware
from routers import (
    chat,
    custom_voices,
    emotion,
    health,
    metrics,
    models,
    realtime,
    realtime_calls,
    speech,
    transcription,
)
from routers.docs import mount_docs
from routers.playground import mount_playground
from voxloop.tracing import install_tracing

logger = logging.getLogger(__name__)

DESCRIPTION = """A self-hosted, OpenAI-compatible speech server.

Point any OpenAI client at `http://<host>:<port>/v1`. Errors use OpenAI's body:
`{"error": {"message", "type", "param", "code"}}`."""


def build_registry(settings: Settings) -> EngineRegistry:
    registry = EngineRegistry(
        [
            *whisper_specs(settings),
            *llama_cpp_specs(settings),
            # Optional GPU engines (issue 7): registered only when configured; their libraries load lazily.
            *nemo_specs(settings),
            *whisperx_specs(settings),
            # Remote engines of every capability, before the aliases that may point at them (tts-1-hd -> a remote).
            *remote_specs(settings),
        ]
    )
    for alias in OPENAI_ASR_ALIASES:
        registry.alias("transcription", alias, settings.whisper.default_model)
    for spec in (baseline_spec(), *emotion2vec_specs(settings)):
        registry.add(spec)
    registry.alias("emotion", "default", settings.emotion.default_model)
    # Extras registered only when configured: the torch Kokoro (beside the embedded ONNX one) and Chatterbox (the
    # one engine that clones).
    for spec in [*piper_specs(settings), *kokoro_specs(settings), *kokoro_torch_specs(settings),
                 *chatterbox_specs(settings)]:
        registry.add(spec)
    registry.add(duet_spec(settings.tts.fast_model, settings.tts.expressive_model))
    for alias, target in openai_tts_aliases(settings).items():
        registry.alias("speech", alias, target)
    return registry


def build_services(settings: Settings,
                   adapt_registry: Callable[[EngineRegistry], None] | None = None) -> Services:
    registry = build_registry(settings)
    if adapt_registry is not None:  # voxloop on Ray: engines become proxies to deployments (voxloop/ray.py)
        adapt_registry(registry)
    metrics = Metrics()
    manager = ModelManager(
        registry,
        ttl_seconds=settings.model_ttl_seconds,
        max_concurrent=settings.max_concurrent_per_model,
        on_event=metrics.model_event,
        budget=MemoryBudget(
            gpu=settings.models.gpu_memory_budget,
            cpu=settings.models.cpu_memory_budget,
            estimates=dict(settings.models.memory_estimates),
        ),
    )
    metrics.watch_models(registry, manager)
    transcription = TranscriptionService(registry, manager, settings)
    voices = CustomVoiceService(settings, registry)
    trimmer = MallocTrimmer(settings.malloc_trim_interval_seconds)
    realtime_sessions = RealtimeSessions(
        settings.realtime.max_sessions,
        retry_after=settings.retry_after_seconds,
        on_count=metrics.realtime_sessions.set,
        on_reject=metrics.reject,
        # An ended session leaves megabytes of freed native memory that glibc would keep (api/native_memory.py).
        on_release=trimmer.request,
    )
    chat = ChatService(registry, manager, settings)
    emotion = EmotionService(registry, manager, transcription, settings)
    speech = SpeechService(registry, manager, settings, voices)
    vad_pool = SileroVadPool(max_idle=settings.realtime.max_sessions)
    realtime = RealtimeServices(settings=settings.realtime, transcription=transcription, speech=speech, chat=chat,
                                emotion=emotion, metrics=metrics, vad_pool=vad_pool)
    return Services(
        settings=settings,
        registry=registry,
        manager=manager,
        transcription=transcription,
        chat=chat,
        emotion=emotion,
        speech=speech,
        voices=voices,
        realtime_sessions=realtime_sessions,
        vad_pool=vad_pool,
        trimmer=trimmer,
        realtime=realtime,
        started_at=int(time.time()),
        metrics=metrics,
    )


def create_app(settings: Settings | None = None,
               adapt_registry: Callable[[EngineRegistry], None] | None = None) -> FastAPI:
    settings = settings or Settings()
    services = build_services(settings, adapt_registry)
    services.warmup = warmup = WarmUp(services, settings.warmup)
    services.webrtc_calls = calls = CallRegistry(services.realtime, services.realtime_sessions)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.manager.start()
        # Remote voices are learnt in the background, so the first request can use their tags; startup never waits.
        discovery = asyncio.create_task(services.speech.refresh_remote_voices())
        # The voice loop's models load and run once in the background: the server answers at once, /ready says
        # 503 until they are warm (api/warmup.py).
        warming = asyncio.create_task(warmup.run())
        try:
            yield
        finally:
            discovery.cancel()
            warming.cancel()
            if app.state.tracer_provider is not None:
                app.state.tracer_provider.shutdown()  # flushes spans still batched
            await calls.close()
            await services.chat.close()
            await services.trimmer.close()
            await services.manager.close()

    # /docs and /redoc come from mount_docs: the same pages with their assets served here, not from a CDN.
    app = FastAPI(title="voxloop", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.services = services
    install_error_handlers(app)
    for router in (transcription.router, speech.router, custom_voices.router, emotion.router, chat.router,
                   models.router, health.router, realtime_calls.router, realtime.router):
        app.include_router(router)
    mount_docs(app)  # Swagger UI and ReDoc, usable offline (issue 17)
    mount_playground(app)  # the browser page at / (issue 9)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    # Requests free native memory too (decoders, engine buffers): give it back once the server goes idle.
    add_middlewares(app, settings, services.metrics, on_idle=services.trimmer.request,
                    client_secrets=services.client_secrets)
    app.state.tracer_provider = install_tracing(app, settings.otel_endpoint)
    return app


def add_middlewares(app: FastAPI, settings: Settings, metrics: Metrics,
                    on_idle: Callable[[], None] | None = None, client_secrets: ClientSecretStore | None = None) -> None:
    """Outermost last: request id -> access log -> metrics -> CORS -> auth -> global limit -> body limit -> JSON depth
    limit -> app.

    Metrics sit outside the refusals so 401/413/429 are counted; CORS sits outside auth so browsers' preflight
    requests (which carry no key) are answered.
    """
    app.add_middleware(JsonDepthLimitMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_upload_bytes, on_reject=metrics.reject)
    app.add_middleware(
        ConcurrencyLimitMiddleware,
        max_concurrent=settings.max_concurrent_requests,
        retry_after=settings.retry_after_seconds,
        on_reject=metrics.reject,
        on_idle=on_idle,
    )
    if settings.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key.get_secret_value(), on_reject=metrics.reject,
                           client_secrets=client_secrets)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            # Location names a WebRTC call (POST /v1/realtime/calls): browser SDKs read the call id from it.
            expose_headers=["x-request-id", "retry-after", "location"],
        )
    if settings.metrics_enabled:
        app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
