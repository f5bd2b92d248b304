"""The speech use case: validate, clean the text, pick model and voice (directly or through the router), stream.

No FastAPI here. `plan(request)` checks everything a request can get wrong and returns a `SpeechPlan` (so errors
are 4xx before the first byte); `stream(plan)` yields encoded audio bytes while the engine is still speaking,
holding the model lease for the whole stream. Synthesis and encoding both run on the engine's thread through
`Lease.iterate`, so the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field, replace

import numpy as np

from api.custom_voices.service import CustomVoiceService
from api.http.audio_encode import SpeechAudioPipeline
from api.http.errors import InvalidRequestError, ModelNotFoundError
from api.settings import Settings
from api.speech.duet import (
    ROUTER_MODEL_ID,
    DuetRouter,
    RouteDecision,
    RouteRequest,
    emotion_from_instructions,
    normalise_emotion,
)
from api.speech.paralinguistics import apply_tags, find_tags, split_pauses
from api.speech.protocol import OPENAI_VOICES, CustomVoice, SpeechRequest
from api.speech.text_hygiene import clean_for_speech, spoken_cost
from engines.base import CancelToken, SynthesisOptions, SynthesizerCapabilities, Voice, VoiceReference
from engines.manager import ModelManager
from engines.registry import EngineRegistry, EngineSpec, UnknownModel
from engines.speech_text import parse_blend

# Engine chunks are encoded in slices this long, each sent as soon as it is encoded: the first bytes leave after a
# fraction of a phrase is encoded (opus and aac take ~40 ms per second of audio on a small CPU), not all of it.
ENCODE_SLICE_SECONDS = 0.25
SLICED_FORMATS = frozenset({"mp3", "opus", "aac", "flac"})
OPENAI_TTS_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15")


def openai_tts_aliases(settings: Settings) -> dict[str, str]:
    """OpenAI model name -> the model it means here (settings decide)."""
    tts = settings.tts
    return {"tts-1": tts.default_model, "tts-1-hd": tts.hd_model} | {
        name: tts.instructed_model for name in OPENAI_TTS_ALIASES if name.startswith("gpt-4o-mini-tts")
    }


# OpenAI prices gpt-4o-mini-tts audio at ~1250 output tokens a minute; usage reports that rate as an estimate.
AUDIO_TOKENS_PER_SECOND = 20.8
_OPENAI_GENDER = {
    "alloy": "female", "ash": "male", "ballad": "male", "coral": "female", "echo": "male", "fable": "female",
    "onyx": "male", "nova": "female", "sage": "female", "shimmer": "female", "verse": "male", "marin": "female",
    "cedar": "male",
}
KOKORO_OPENAI_VOICES = {
    "alloy": "jf_alpha", "ash": "jm_kumo", "ballad": "jm_kumo", "coral": "jf_gongitsune", "echo": "jm_kumo",
    "fable": "jf_tebukuro", "onyx": "jm_kumo", "nova": "jf_nezumi", "sage": "jf_tebukuro", "shimmer": "jf_nezumi",
    "verse": "jm_kumo", "marin": "jf_alpha", "cedar": "jm_kumo",
}


@dataclass(frozen=True)
class SpeechPlan:
    spec: EngineSpec
    voice: str
    parts: tuple[str | float, ...]  # text to speak, and pauses (seconds) where unrenderable tags were
    engine_speed: float
    tempo: float  # the part of the requested speed the engine cannot do, applied with atempo
    response_format: str
    input_chars: int
    route: RouteDecision | None = None
    tags: dict[str, list[str]] = field(default_factory=dict)
    reference: VoiceReference | None = None  # a custom voice, for a cloning engine
    emotion: str | None = None
    exaggeration: float | None = None
    cfg_weight: float | None = None

    def headers(self) -> dict[str, str]:
        out = {"X-Voxloop-Engine": self.spec.model_id, "X-Voxloop-Voice": self.voice}
        if self.route is not None:
            out |= {
                "X-Voxloop-Route-Role": self.route.role,
                "X-Voxloop-Route-Reason": _header_safe(self.route.reason),
                "X-Voxloop-Emotion": self.route.emotion,
            }
        if self.tags.get("mapped") or self.tags.get("dropped"):
            out["X-Voxloop-Tags-Mapped"] = _header_safe(",".join(self.tags["mapped"] + self.tags["dropped"]))
        return out


@dataclass
class StreamStats:
    """Filled in while a stream runs; read after it ends (for SSE usage)."""

    audio_seconds: float = 0.0


def usage(input_chars: int, audio_seconds: float) -> dict[str, int]:
    input_tokens = max(1, math.ceil(input_chars / 4))
    output_tokens = math.ceil(audio_seconds * AUDIO_TOKENS_PER_SECOND)
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}


def openai_voice_for(name: str, caps: SynthesizerCapabilities) -> str:
    """Map an OpenAI voice name onto one of the engine's voices (by hand for Kokoro, by gender otherwise)."""
    if caps.checks_voices:
        return name  # a remote maps OpenAI names itself
    mapped = KOKORO_OPENAI_VOICES.get(name)
    if mapped and caps.voice(mapped) is not None:
        return mapped
    gender = _OPENAI_GENDER[name]
    same = [v for v in caps.voices if v.gender == gender] or list(caps.voices)
    peers = [n for n in OPENAI_VOICES if _OPENAI_GENDER[n] == gender]
    return same[peers.index(name) % len(same)].id


def openai_aliases(voice: Voice, caps: SynthesizerCapabilities) -> list[str]:
    if caps.checks_voices:
        return list(voice.openai_aliases)
    return [n for n in OPENAI_VOICES if openai_voice_for(n, caps) == voice.id]


def _g2p_language(plan: SpeechPlan) -> str:
    """espeak-style language of the voice (a blend speaks its first voice's language); English by default."""
    first = plan.voice.split("+")[0].split(":")[0]
    voice = plan.spec.capabilities.voice(first)
    return voice.language.lower() if voice is not None else "en-us"


def _header_safe(text: str) -> str:
    return text.encode("ascii", "replace").decode()[:300]


class SpeechService:
    def __init__(
        self,
        registry: EngineRegistry,
        manager: ModelManager,
        settings: Settings,
        custom_voices: CustomVoiceService | None = None,
    ):
        self._registry = registry
        self._manager = manager
        self._settings = settings
        self._custom = custom_voices if custom_voices is not None else CustomVoiceService(settings, registry)

    # --- resolution ---------------------------------------------------------------------------------------

    def resolve_model(self, model: str) -> EngineSpec:
        # The OpenAI names are registry aliases (see `openai_tts_aliases`); later dated gpt-4o-mini-tts snapshots
        # are accepted by prefix.
        if model.startswith("gpt-4o-mini-tts-"):
            model = self._settings.tts.instructed_model
        try:
            return self._registry.resolve(model, "speech")
        except UnknownModel as exc:
            raise ModelNotFoundError(str(exc), param="model") from exc

    def route(self, text: str, emotion: str | None = None, instructions: str | None = None) -> RouteDecision:
        """The router's choice for one turn of raw text (for the voice loop): hygiene and tags are applied first."""
        cleaned = clean_for_speech(text)
        return self.duet().route(RouteRequest(cleaned, emotion, tuple(find_tags(cleaned)), instructions))

    def duet(self) -> DuetRouter:
        tts = self._settings.tts
        fast, expressive = self.resolve_model(tts.fast_model), self.resolve_model(tts.expressive_model)
        return DuetRouter(fast.model_id, fast.capabilities, expressive.model_id, expressive.capabilities)

    def expressive_tags(self) -> frozenset[str]:
        """Paralinguistic tags the router's expressive engine renders as sound (offered to the LLM)."""
        try:
            spec = self._registry.resolve(self._settings.tts.expressive_model, "speech")
        except UnknownModel:
            return frozenset()
        return spec.capabilities.tags if spec.capabilities is not None else frozenset()

    async def refresh_remote_voices(self) -> None:
        """Learn again the voices of remote speech models whose last answer is stale (threads: it is network I/O)."""
        refreshes = [s.refresh for s in self._registry.specs("speech") if s.refresh is not None]
        await asyncio.gather(*(asyncio.to_thread(refresh) for refresh in refreshes))

    def voices(self) -> list[tuple[EngineSpec, Voice]]:
        return [(s, v) for s in self._registry.specs("speech") if s.capabilities for v in s.capabilities.voices]

    def _voice(self, voice: str, spec: EngineSpec) -> str:
        caps: SynthesizerCapabilities = spec.capabilities
        if caps.checks_voices:
            return voice  # the engine (a remote) refuses unknown voices itself, in its own words
        if voice.lower() in OPENAI_VOICES and caps.voices:  # no voices (a model dir without packs): nothing to map to
            return openai_voice_for(voice.lower(), caps)
        if caps.voice(voice) is not None:
            return voice
        if caps.blending and "+" in voice:
            try:
                names = [n for n, _ in parse_blend(voice)]
            except ValueError as exc:
                raise InvalidRequestError(str(exc), param="voice", code="invalid_voice") from exc
            if all(caps.voice(n) is not None for n in names):
                return voice
        owners = [s.model_id for s, v in self.voices() if v.id == voice]
        if owners:
            raise InvalidRequestError(
                f"The model '{spec.model_id}' cannot speak with voice '{voice}' (it belongs to {', '.join(owners)}). "
                f"Its voices: {', '.join(v.id for v in caps.voices)}.",
                param="voice",
                code="unsupported_voice",
            )
        raise InvalidRequestError(
            f"Unknown voice '{voice}'. Use an OpenAI voice ({', '.join(OPENAI_VOICES)}) or one listed by "
            f"GET /v1/audio/voices.",
            param="voice",
            code="invalid_voice",
        )

    # --- planning -----------------------------------------------------------------------------------------

    def plan(self, req: SpeechRequest) -> SpeechPlan:
        """Everything a request can get wrong is found here, before any audio is made."""
        limit = self._settings.tts.max_input_chars
        if not req.input.strip():
            raise InvalidRequestError("'input' is empty: there is nothing to speak.", param="input")
        if len(req.input) > limit:
            raise InvalidRequestError(
                f"'input' is {len(req.input)} characters; the limit is {limit}.", param="input", code="string_too_long"
            )
        spec = self.resolve_model(req.model)
        requested, route, reference = spec, None, None
        cleaned = clean_for_speech(req.input)
        cost = spoken_cost(cleaned)
        if cost > self._settings.tts.max_spoken_chars:
            raise InvalidRequestError(
                f"'input' takes as long to speak as {cost} characters of prose once numbers, dates, abbreviations "
                f"and spelled-out letters are counted; the limit is {self._settings.tts.max_spoken_chars}. "
                f"Send it in smaller parts.",
                param="input",
                code="string_too_long",
            )
        if isinstance(req.voice, CustomVoice):
            reference = self._custom.reference(req.voice.id)  # an unknown id is a 400 whatever the model
        if spec.model_id == ROUTER_MODEL_ID:
            route = self.route(req.input, req.emotion, req.instructions)
            if reference is not None:
                route = self._cloning_route(route)
            spec = self.resolve_model(route.model)
        caps: SynthesizerCapabilities = spec.capabilities
        if reference is not None:
            voice = reference.voice_id
            if not caps.cloning:
                raise self._cannot_clone(requested, spec, reference)
        elif route is not None:
            voice = self._routed_voice(req.voice, spec, route)  # type: ignore[arg-type]
        else:
            voice = self._voice(req.voice, spec)  # type: ignore[arg-type]
        self._check_controls(req, spec)
        emotion = route.emotion if route else (
            normalise_emotion(req.emotion) or emotion_from_instructions(req.instructions)[0]
        )
        text, report = apply_tags(cleaned, caps.tags)
        # A piece with no letters or digits (a lone "." between two tags) has nothing to say.
        parts = tuple(p for p in split_pauses(text) if not isinstance(p, str) or any(c.isalnum() for c in p))
        if not any(isinstance(p, str) for p in parts):
            raise InvalidRequestError(
                "'input' has nothing speakable once markup, emojis and tags are removed.", param="input"
            )
        speed = req.speed * (route.speed_factor if route else 1.0)
        engine_speed = min(max(speed, caps.min_speed), caps.max_speed)
        return SpeechPlan(
            spec=spec,
            voice=voice,
            parts=parts,
            engine_speed=engine_speed,
            tempo=speed / engine_speed,
            response_format=req.response_format,
            input_chars=len(req.input),
            route=route,
            tags={"rendered": report.rendered, "mapped": report.mapped, "dropped": report.dropped},
            reference=reference,
            emotion=emotion,
            exaggeration=req.exaggeration,
            cfg_weight=req.cfg_weight,
        )

    def _routed_voice(self, voice: str, spec: EngineSpec, route: RouteDecision) -> str:
        """The router picks the voice; a local voice of the chosen engine, if the client named one, wins."""
        if spec.capabilities.voice(voice) is not None:
            return voice
        if voice.lower() in OPENAI_VOICES and route.role == "fast":
            return openai_voice_for(voice.lower(), spec.capabilities)
        if not (voice.lower() in OPENAI_VOICES or any(v.id == voice for _, v in self.voices())):
            self._voice(voice, spec)  # raises the usual unknown-voice error
        return route.voice

    # --- custom voices and expressive controls ----------------------------------------------------------------

    def _cloning_route(self, route: RouteDecision) -> RouteDecision:
        """A custom voice goes to whichever router role can clone (the expressive one first), whatever the mood."""
        tts = self._settings.tts
        for role, model in (("expressive", tts.expressive_model), ("fast", tts.fast_model)):
            spec = self.resolve_model(model)
            if spec.capabilities is not None and spec.capabilities.cloning:
                reason = f"{role}: custom voice, spoken by the role that clones ({route.reason})"
                return replace(route, role=role, model=spec.model_id, reason=reason)  # type: ignore[arg-type]
        return route

    def check_custom_voice(self, voice: CustomVoice, model: str) -> None:
        """The 400 that speaking `voice` on `model` would give, raised now (the realtime session checks early)."""
        reference = self._custom.reference(voice.id)
        requested = spec = self.resolve_model(model)
        if spec.model_id == ROUTER_MODEL_ID:
            plain = RouteDecision("fast", self._settings.tts.fast_model, "", "neutral", 1.0, "")
            spec = self.resolve_model(self._cloning_route(plain).model)
        if not spec.capabilities.cloning:
            raise self._cannot_clone(requested, spec, reference)

    def _cannot_clone(self, requested: EngineSpec, spec: EngineSpec, ref: VoiceReference) -> InvalidRequestError:
        who = f"'{requested.model_id}'"
        if requested.model_id != spec.model_id:
            tts = self._settings.tts
            who += f" (whose roles are {tts.fast_model} and {tts.expressive_model})"
        return InvalidRequestError(
            f"The model {who} cannot clone a voice, so it cannot speak the custom voice '{ref.voice_id}'. "
            f"{self._custom.cloning_hint()}",
            param="voice",
            code="voice_cloning_unsupported",
        )

    def _check_controls(self, req: SpeechRequest, spec: EngineSpec) -> None:
        if spec.capabilities.expressive_controls or (req.exaggeration is None and req.cfg_weight is None):
            return
        param = "exaggeration" if req.exaggeration is not None else "cfg_weight"
        specs = self._registry.specs("speech")
        able = [s.model_id for s in specs if s.capabilities and s.capabilities.expressive_controls]
        raise InvalidRequestError(
            f"The model '{spec.model_id}' has no '{param}' control. Models that have it: "
            f"{', '.join(able) or 'none on this server (the original Chatterbox does)'}.",
            param=param,
            code="unsupported_value",
        )

    # --- streaming ----------------------------------------------------------------------------------------

    async def stream(self, plan: SpeechPlan, stats: StreamStats | None = None) -> AsyncIterator[bytes]:
        """Encoded audio, chunk by chunk. Closing the iterator early cancels the synthesis."""
        stats = stats if stats is not None else StreamStats()
        async with self._manager.lease(plan.spec) as lease:
            engine = lease.engine
            options = SynthesisOptions(
                voice=plan.voice, speed=plan.engine_speed, language=_g2p_language(plan), reference=plan.reference,
                emotion=plan.emotion, exaggeration=plan.exaggeration, cfg_weight=plan.cfg_weight,
            )

            def work() -> Iterator[bytes]:
                pipeline = SpeechAudioPipeline(plan.response_format, plan.tempo)  # type: ignore[arg-type]
                try:
                    for part in plan.parts:
                        if isinstance(part, float):
                            rate = engine.capabilities.sample_rate
                            data = pipeline.push(np.zeros(int(part * rate), np.float32), rate)
                            if data:
                                yield data
                            continue
                        for chunk in engine.synthesize(part, options, cancel):
                            step = len(chunk.samples) or 1  # pcm and wav cost nothing to encode: one piece
                            if plan.response_format in SLICED_FORMATS:
                                step = max(1, int(chunk.sample_rate * ENCODE_SLICE_SECONDS))
                            for start in range(0, len(chunk.samples), step):
                                data = pipeline.push(chunk.samples[start:start + step], chunk.sample_rate)
                                stats.audio_seconds = pipeline.seconds
                                if data:
                                    yield data
                    tail = pipeline.finish()
                    stats.audio_seconds = pipeline.seconds
                    if tail:
                        yield tail
                finally:
                    pipeline.encoder.close()

            cancel = CancelToken()
            # aclosing: when our consumer stops early, the engine must stop (and be awaited) before the lease is
            # released; a bare `async for` would leave the inner generator to the garbage collector, and the
            # abandoned synthesis would keep the engine's thread busy under the next request.
            async with aclosing(lease.iterate(work, cancel)) as chunks:
                async for data in chunks:
                    yield data
