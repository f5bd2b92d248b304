"""What routers may depend on: the per-app services container, as Annotated dependency aliases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from api.chat.service import ChatService
from api.custom_voices.service import CustomVoiceService
from api.emotion.service import EmotionService
from api.metrics import Metrics
from api.native_memory import MallocTrimmer
from api.realtime.client_secrets import ClientSecretStore
from api.realtime.services import RealtimeServices
from api.realtime.sessions import RealtimeSessions
from api.settings import Settings
from api.speech.service import SpeechService
from api.transcription.service import TranscriptionService
from api.warmup import WarmUp
from engines.manager import ModelManager
from engines.registry import EngineRegistry, EngineSpec
from engines.silero_vad import SileroVadPool

if TYPE_CHECKING:
    from api.realtime.webrtc.calls import CallRegistry


@dataclass
class Services:
    """Everything one app instance owns. Built by `create_app`; there is no module-level state."""

    settings: Settings
    registry: EngineRegistry
    manager: ModelManager
    transcription: TranscriptionService
    chat: ChatService
    started_at: int
    emotion: EmotionService
    speech: SpeechService
    voices: CustomVoiceService
    realtime_sessions: RealtimeSessions
    vad_pool: SileroVadPool
    trimmer: MallocTrimmer
    realtime: RealtimeServices  # what a realtime session uses: the services above, typed
    metrics: Metrics = field(default_factory=Metrics)
    warmup: WarmUp | None = None  # set by create_app; run by its lifespan
    client_secrets: ClientSecretStore = field(default_factory=ClientSecretStore)  # ephemeral realtime keys
    webrtc_calls: CallRegistry | None = None  # set by create_app (aiortc is imported there, not here)

    def default_specs(self) -> list[EngineSpec]:
        """The models the server uses when a client names an OpenAI alias."""
        specs = [self.registry.resolve(self.settings.whisper.default_model, "transcription")]
        if self.chat.upstream is None:
            specs += self.registry.specs("chat")
        return specs


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_metrics(request: Request) -> Metrics:
    return request.app.state.services.metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]
