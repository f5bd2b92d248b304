"""What a realtime session uses: the capability services (never the registry or the model manager) and its settings.

Built once per app by the composition root (`voxloop/app.py`) from the same service instances the HTTP routes use,
so a realtime turn and an HTTP request share models, leases and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.chat.service import ChatService
from api.emotion.service import EmotionService
from api.metrics import Metrics
from api.settings import RealtimeSettings
from api.speech.service import SpeechService
from api.transcription.service import TranscriptionService
from engines.silero_vad import SileroVadPool


@dataclass(frozen=True)
class RealtimeServices:
    settings: RealtimeSettings
    transcription: TranscriptionService
    speech: SpeechService
    chat: ChatService
    emotion: EmotionService
    metrics: Metrics
    vad_pool: SileroVadPool
