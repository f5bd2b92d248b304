"""voxloop's settings: one pydantic-settings model, read from `VOXLOOP_*` environment variables.

Nested groups use `__` (for example `VOXLOOP_WHISPER__COMPUTE_TYPE=int8`). Nothing else in the code base reads
the environment: `create_app(settings)` receives this object and passes it down.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engines.settings import EngineSettings

# What a warm start loads and runs once (api/warmup.py).
WarmRole = Literal["vad", "transcription", "chat", "speech", "emotion"]
WARM_ROLES: tuple[WarmRole, ...] = ("vad", "transcription", "chat", "speech", "emotion")

logger = logging.getLogger(__name__)

ENV_PREFIX = "VOXLOOP_"
# Room for the JSON around the largest `audio` of an append (type, event_id), in a WebSocket message.
APPEND_ENVELOPE_BYTES = 64 * 1024


class RealtimeSettings(BaseModel):
    """The Realtime WebSocket (`/v1/realtime`)."""

    default_transcription_model: str | None = Field(
        None,
        description="Input transcription a new session starts with (e.g. `whisper-1`); None starts with it off, "
        "as OpenAI does. Transcription-only sessions always start with it on.",
    )
    temperature: float = Field(
        0.8, ge=0.0, le=2.0, description="Sampling temperature a new session's replies start with (OpenAI's "
        "default, 0.8); a client's `session.update` or `response.create` overrides it. Small local models call "
        "tools more reliably at a lower one; 0 is greedy (the same reply to the same conversation).",
    )
    max_sessions: int = Field(
        32, ge=1, description="Realtime sessions open at once; a connection beyond it gets an `error` event "
        "(`session_limit_reached`) and close code 1013 (try again later). Each session may buffer up to "
        "`max_buffer_seconds` of 16 kHz audio (57.6 MB at the default) and holds one Silero VAD (~10 MB)."
    )
    outbound_queue: int = Field(256, ge=8, description="Server events queued per session before reading pauses.")
    max_append_chars: int = Field(
        15 * 1024 * 1024, ge=1024, description="Largest base64 `audio` in one append (OpenAI's limit, 15 MiB)."
    )
    max_message_bytes: int = Field(
        32 * 1024 * 1024, ge=1024 * 1024,
        description="Largest WebSocket message the server reads (uvicorn's `ws_max_size`). Above `max_append_chars`, "
        "so an append over that limit is an `error` event and the session goes on; a message larger than this one "
        "closes the socket with 1009 (message too big), as the server cannot read it.",
    )
    max_buffer_seconds: float = Field(900.0, gt=0, description="Longest uncommitted input audio buffer.")
    client_secret_ttl_seconds: int = Field(
        60, ge=10, le=7200,
        description="Default lifetime of an ephemeral `ek_` key (POST /v1/realtime/client_secrets); a request may "
        "ask for 10-7200 s with `expires_after.seconds`, as OpenAI allows. Single-use, realtime only."
    )
    webrtc_ice_timeout_seconds: float = Field(
        15.0, gt=0, description="A WebRTC call whose ICE has not connected this long after its answer is hung up and "
        "freed."
    )
    webrtc_ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN/TURN URLs for WebRTC calls behind NAT, e.g. `stun:stun.example.org:3478` or "
        "`turn:user:pass@turn.example.org:3478`; empty uses the host's own addresses only (LAN, localhost)."
    )
    partial_interval_seconds: float = Field(
        0.7, ge=0.2, description="New audio between live re-transcriptions of a turn being spoken."
    )
    speech_model: str = Field(
        "voxloop-duet", description="Speech model of spoken replies; the duet router picks fast or expressive per turn."
    )
    llm_model: str | None = Field(None, description="LLM of spoken replies (default: VOXLOOP_CHAT_MODEL or embedded).")
    max_history_messages: int = Field(
        12, ge=2, description="Conversation messages the LLM sees (oldest dropped, half a window at a time). Small by "
        "default: on 2 CPU cores the embedded model reads ~300 prompt tokens a second."
    )
    max_history_chars: int = Field(3000, ge=200, description="Characters of history the LLM sees at most.")
    emotion_wait_seconds: float = Field(
        0.15, ge=0.0, le=10.0, description="How long after a turn's transcript its reply waits for the emotion of the "
        "turn (the prosody baseline needs ~30 ms); a later emotion does not hold the reply up: it is routed and "
        "prompted without it (response.done metadata voxloop_emotion_state: ready, late or none)."
    )
    speculation: bool = Field(
        True, description="Speculative replies: at a turn's first pause (200 ms, before the VAD commits it) run its "
        "transcription, LLM and first phrase of speech and hold them; when the committed turn's reply would send the "
        "same request, the held audio is released at once, else it is dropped unseen (response.done metadata and "
        "/metrics: voxloop_speculation hit, miss or none)."
    )
    server_vad_eager_ms: int | None = Field(
        None, ge=100, le=10_000, description="Eager turn ends for `server_vad` (opt-in; semantic_vad always has them): "
        "a turn whose transcript so far is a finished question or exclamation ends after this much silence instead of "
        "the session's `silence_duration_ms`; a statement (which may be a clause the speaker goes on from) or an "
        "unfinished one (ending on 'and', 'because', a comma...) still waits the full silence. Needs input "
        "transcription on. None waits `silence_duration_ms` always, as OpenAI does."
    )
    extension_events: bool = Field(
        False, description="Send voxloop.* events (emotion of each user turn) to every session; a session can also "
        "ask with ?voxloop_events=true."
    )

    @model_validator(mode="after")
    def _an_oversized_append_is_readable(self) -> RealtimeSettings:
        if self.max_message_bytes < self.max_append_chars + APPEND_ENVELOPE_BYTES:
            raise ValueError(
                f"realtime.max_message_bytes ({self.max_message_bytes}) must exceed realtime.max_append_chars "
                f"({self.max_append_chars}) by at least {APPEND_ENVELOPE_BYTES} bytes, or an append over the limit "
                "would close the socket instead of getting an error event."
            )
        return self


class CustomVoiceSettings(BaseModel):
    """Custom voices (`POST /v1/audio/voices`) and the consent recordings they need (`/v1/audio/voice_consents`)."""

    dir: Path | None = Field(
        None, description="Where voices and consents are kept (a wav + JSON per record); default <cache_dir>/voices."
    )
    min_seconds: float = Field(
        6.0, ge=1.0, description="Shortest voice sample. Chatterbox needs more than 5 s of reference audio."
    )
    max_seconds: float = Field(30.0, gt=0, description="Longest voice sample (cloning engines use the first 10-15 s).")
    min_speech_seconds: float = Field(
        2.0, ge=0.0, description="Audible audio a sample or consent recording must hold (else: silent, refused)."
    )
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest sample or recording (OpenAI: 10 MiB).")
    max_records: int = Field(1000, ge=1, description="Voices (and, separately, consents) kept at most.")




class Settings(BaseSettings, EngineSettings):
    """Every setting of the server. Each field maps to `VOXLOOP_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    profile: Literal["cpu", "gpu"] = Field(
        "cpu",
        description="The engine stack. `cpu`: the embedded models (the defaults below). `gpu`: Parakeet (NeMo) for "
        "transcription, Nemotron streaming, Kokoro (torch) and Chatterbox-Turbo as the duet's voices, emotion2vec+ "
        "on CUDA, weights from `profile_models_dir` (voxloop/profiles.py); any setting given still wins. `voxloop "
        "serve` refuses to start (exit 2) when CUDA, an extra or a weight file the profile needs is missing.",
    )
    profile_models_dir: Path = Field(
        Path("/models"), description="Where the `gpu` profile looks for its weights (file names in the README)."
    )
    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind.")
    log_level: str = Field("info", description="Python log level.")
    api_key: SecretStr | None = Field(None, description="If set, every request needs `Authorization: Bearer <key>`.")
    allow_insecure_public: bool = Field(
        False, description="Serve on a non-loopback address without an API key (refused otherwise)."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins allowed by CORS, as JSON (["https://app.example"] or ["*"]); empty: no CORS.',
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object per line, with request ids."
    )
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics (behind the API key if set).")
    otel_endpoint: str | None = Field(
        None, description="OTLP/HTTP collector for traces (e.g. http://otel-collector:4318); needs the otel extra."
    )
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM, wait this long for in-flight requests and realtime responses before "
        "closing connections (realtime sessions get an `error` event `server_shutting_down`, then close code 1001)."
    )

    malloc_arena_max: int = Field(
        2, ge=0, description="`voxloop serve` caps glibc's malloc arenas at this (as MALLOC_ARENA_MAX does); fewer "
        "arenas keep less freed memory. 0: glibc's default (8 per core)."
    )
    malloc_trim_interval_seconds: float = Field(
        10.0, ge=0, description="After realtime sessions end and when the server goes idle, give freed native "
        "memory back to the OS (glibc malloc_trim) at most this often; 0: never."
    )

    warmup: list[WarmRole] = Field(
        default_factory=list,
        description="What to load and run once in the background at startup, so the first spoken turn is as fast as "
        "the next: `vad`, `transcription` (the default Whisper), `chat` (the embedded LLM), `speech` (both duet "
        "voices), `emotion`. `/ready` answers 503 until they are warm. `voxloop serve` warms all five unless "
        "VOXLOOP_WARMUP says otherwise (`[]`: none); an app built in-process (tests) warms nothing by default.",
    )
    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1, description="Largest accepted request body (413 above).")
    max_audio_seconds: float = Field(
        4 * 3600, gt=0, description="Longest audio accepted for transcription and translation; longer uploads get a 400."
    )
    max_emotion_seconds: float = Field(
        600, gt=0, description="Longest audio accepted by POST /v1/emotion (it decodes the whole file at once)."
    )
    decode_window_seconds: float = Field(
        600.0, ge=30, description="Long audio is decoded and transcribed in windows of this length to bound memory."
    )

    model_ttl_seconds: int = Field(
        -1, ge=-1, description="Unload a model after this many idle seconds; -1 never, 0 right after each use."
    )
    max_concurrent_per_model: int = Field(
        8, ge=1, description="Requests admitted at once per model; further requests get 429 with Retry-After."
    )
    max_concurrent_requests: int = Field(
        64, ge=1, description="API requests in flight at once over all models; further requests get 429 with Retry-After."
    )
    retry_after_seconds: int = Field(1, ge=1, description="Retry-After sent with 429 and 503 answers.")
    voices: CustomVoiceSettings = Field(default_factory=CustomVoiceSettings)

    chat_base_url: str | None = Field(
        None, description="OpenAI-compatible LLM to proxy /v1/chat/completions to (e.g. vLLM at http://127.0.0.1:8001/v1). "
        "Unset: the embedded llama.cpp model answers."
    )
    chat_api_key: SecretStr | None = Field(None, description="Bearer key sent to the upstream LLM.")
    chat_model: str | None = Field(None, description="Model name the voice loop asks the LLM for (vLLM's served name).")
    chat_timeout_seconds: float = Field(120.0, gt=0, description="Upstream read timeout; 504 when exceeded.")
    chat_connect_timeout_seconds: float = Field(5.0, gt=0, description="Upstream connect timeout; 502 when unreachable.")
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)

    def voices_dir(self) -> Path:
        return self.voices.dir if self.voices.dir is not None else self.cache_dir / "voices"

    def public_bind_problem(self) -> str | None:
        """Why serving on `host` would be unsafe, or None. A LAN or public address needs a key or an explicit opt-out."""
        if self.api_key is not None or self.allow_insecure_public or is_loopback(self.host):
            return None
        return (
            f"refusing to serve on {self.host} without an API key: set VOXLOOP_API_KEY, or set "
            "VOXLOOP_ALLOW_INSECURE_PUBLIC=true if a firewall or proxy in front already restricts access"
        )

    def warn_unknown_env(self) -> None:
        """Log VOXLOOP_* variables that match no setting: a typo would otherwise be silently ignored."""
        known = {f"{ENV_PREFIX}{name}".upper() for name in type(self).model_fields}
        for key in os.environ:
            if key.startswith(ENV_PREFIX) and key.split("__")[0] not in known:
                logger.warning("unknown setting %s (ignored)", key)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses; wildcard (0.0.0.0, ::), LAN and unknown names count as public."""
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
