"""The remote engines the settings name, as registry specs (one per model id, per capability)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engines.base import Engine
from engines.registry import Capability, EngineSpec
from engines.remote.client import probe_endpoint
from engines.remote.emotion import RemoteEmotionRecognizer
from engines.remote.speech import VOICES_MAX_AGE_SECONDS, RemoteSynthesizer, RemoteVoiceCatalog, probe_speech
from engines.remote.transcription import RemoteTranscriber, remote_capabilities
from engines.settings import EngineSettings, RemoteEndpoint


def remote_specs(settings: EngineSettings) -> list[EngineSpec]:
    remote = settings.remote
    specs = [
        _spec(settings, model_id, "transcription", endpoint, lambda e=endpoint: RemoteTranscriber(e),
              remote_capabilities(endpoint))
        for model_id, endpoint in remote.transcription.items()
    ]
    for model_id, endpoint in remote.speech.items():
        catalog = RemoteVoiceCatalog(endpoint)
        specs.append(
            _spec(settings, model_id, "speech", endpoint, lambda e=endpoint, c=catalog: RemoteSynthesizer(e, c),
                  catalog, probe=lambda e=endpoint, c=catalog: probe_speech(e, c),
                  refresh=lambda c=catalog: c.refresh(VOICES_MAX_AGE_SECONDS))
        )
    specs += [
        _spec(settings, model_id, "emotion", endpoint, lambda e=endpoint: RemoteEmotionRecognizer(e),
              RemoteEmotionRecognizer.capabilities)
        for model_id, endpoint in remote.emotion.items()
    ]
    return specs


def _spec(
    settings: EngineSettings,
    model_id: str,
    capability: Capability,
    endpoint: RemoteEndpoint,
    factory: Callable[[], Engine],
    capabilities: Any,
    *,
    probe: Callable[[], str | None] | None = None,
    refresh: Callable[[], None] | None = None,
) -> EngineSpec:
    return EngineSpec(
        model_id,
        capability,
        factory,
        owned_by="remote",
        description=f"Remote: '{endpoint.model}' at {endpoint.base_url}.",
        capabilities=capabilities,
        probe=probe or (lambda: probe_endpoint(endpoint)),
        refresh=refresh,
        # The upstream does the work; let as many requests through as the admission limit allows.
        workers=max(1, settings.max_concurrent_per_model),
        # Its memory is the other server's to budget.
        device="remote",
    )
