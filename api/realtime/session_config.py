"""A realtime session's configuration: one internal model, read from and rendered to both wire shapes.

GA clients send a nested session (`audio.input.format`, `audio.input.turn_detection`, `output_modalities`, ...);
beta clients (`OpenAI-Beta: realtime=v1`) send flat fields (`input_audio_format`, `turn_detection`, `modalities`).
Both become a *patch* of `SessionConfig` fields holding only what the client sent, so `session.update` changes
exactly those fields (a `null` clears one). Objects such as `turn_detection` and `transcription` are replaced as a
whole, with defaults for the fields left out, the way OpenAI applies them.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.speech.protocol import CustomVoice

logger = logging.getLogger(__name__)

AudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
Dialect = Literal["ga", "beta"]
SessionKind = Literal["realtime", "transcription"]
PCM_RATE = 24_000

_GA_FORMATS: dict[str, AudioFormat] = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
_GA_FORMAT_NAMES = {v: k for k, v in _GA_FORMATS.items()}
# Flat keys only the beta session has; a session.update carrying one of them (and no GA `audio`/`type`) is beta.
_BETA_KEYS = frozenset(
    {"modalities", "input_audio_format", "output_audio_format", "input_audio_transcription", "turn_detection",
     "voice", "temperature", "max_response_output_tokens", "speed", "input_audio_noise_reduction"}
)


_GA_KEYS = frozenset(
    {"type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice", "max_output_tokens",
     "include", "tracing", "truncation", "prompt", "reasoning", "parallel_tool_calls", "id", "object"}
)


class InvalidSessionError(ValueError):
    """A session.update the server cannot apply; `param` names the offending field as the client spelt it."""

    def __init__(self, message: str, param: str | None, code: str = "invalid_value"):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ServerVad(_Strict):
    type: Literal["server_vad"] = "server_vad"
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    prefix_padding_ms: int = Field(300, ge=0, le=10_000)
    silence_duration_ms: int = Field(500, ge=0, le=10_000)
    idle_timeout_ms: int | None = Field(None, ge=5_000, le=30_000)
    create_response: bool = True
    interrupt_response: bool = True


class SemanticVad(_Strict):
    type: Literal["semantic_vad"] = "semantic_vad"
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    create_response: bool = True
    interrupt_response: bool = True


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class TranscriptionConfig(_Strict):
    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None


class NoiseReduction(_Strict):
    type: Literal["near_field", "far_field"] | None = None


class SessionConfig(BaseModel):
    """Everything a session carries, in one shape independent of the wire dialect."""

    model_config = ConfigDict(validate_assignment=True)

    kind: SessionKind = "realtime"
    model: str | None = None
    instructions: str = ""
    output_modalities: list[Literal["text", "audio"]] = Field(default_factory=lambda: ["audio"])
    input_format: AudioFormat = "pcm16"
    output_format: AudioFormat = "pcm16"
    voice: str | CustomVoice = "alloy"  # a custom voice is `{"id": "voice_..."}` on the wire
    speed: float = Field(1.0, ge=0.25, le=1.5)
    transcription: TranscriptionConfig | None = None
    noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = Field(default_factory=ServerVad)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    max_output_tokens: int | Literal["inf"] = "inf"
    include: list[str] | None = None
    tracing: Any = None


def is_beta_shaped(session: dict[str, Any]) -> bool:
    return "type" not in session and "audio" not in session and bool(_BETA_KEYS & session.keys())


def _ga_format(value: Any, param: str) -> AudioFormat:
    if not isinstance(value, dict) or value.get("type") not in _GA_FORMATS:
        raise InvalidSessionError(
            f"Invalid audio format {value!r}: expected type 'audio/pcm', 'audio/pcmu' or 'audio/pcma'.", f"{param}.type"
        )
    if value["type"] == "audio/pcm" and value.get("rate", PCM_RATE) != PCM_RATE:
        raise InvalidSessionError(f"audio/pcm supports rate {PCM_RATE} only, not {value.get('rate')}.", f"{param}.rate")
    return _GA_FORMATS[value["type"]]


def wire_voice(voice: str | CustomVoice) -> str | dict[str, str]:
    """The voice as the client wrote it: a name, or `{"id": ...}` for a custom voice."""
    return {"id": voice.id} if isinstance(voice, CustomVoice) else voice


def _ga_patch(session: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Internal field -> value for what a GA session object sets, and internal field -> wire param name."""
    patch: dict[str, Any] = {}
    names: dict[str, str] = {}

    def put(field: str, value: Any, wire: str) -> None:
        patch[field], names[field] = value, f"session.{wire}"

    for key in ("model", "instructions", "output_modalities", "tools", "tool_choice", "max_output_tokens",
                "include", "tracing"):
        if key in session:
            put(key, session[key], key)
    if "type" in session:
        put("kind", session["type"], "type")
    audio = session.get("audio") or {}
    if not isinstance(audio, dict):
        raise InvalidSessionError("'audio' must be an object.", "session.audio")
    inp, out = audio.get("input") or {}, audio.get("output") or {}
    if "format" in inp:
        put("input_format", _ga_format(inp["format"], "session.audio.input.format"), "audio.input.format")
    for key, field in (("transcription", "transcription"), ("noise_reduction", "noise_reduction"),
                       ("turn_detection", "turn_detection")):
        if key in inp:
            put(field, inp[key], f"audio.input.{key}")
    if "format" in out:
        put("output_format", _ga_format(out["format"], "session.audio.output.format"), "audio.output.format")
    if "voice" in out:
        put("voice", out["voice"], "audio.output.voice")
    if "speed" in out:
        put("speed", out["speed"], "audio.output.speed")
    return patch, names


def _beta_patch(session: dict[str, Any], kind: SessionKind | None) -> tuple[dict[str, Any], dict[str, str]]:
    patch: dict[str, Any] = {}
    names: dict[str, str] = {}
    fields = {
        "model": "model", "instructions": "instructions", "voice": "voice", "speed": "speed", "tools": "tools",
        "tool_choice": "tool_choice", "temperature": "temperature", "max_response_output_tokens": "max_output_tokens",
        "input_audio_format": "input_format", "output_audio_format": "output_format",
        "input_audio_transcription": "transcription", "input_audio_noise_reduction": "noise_reduction",
        "turn_detection": "turn_detection", "include": "include", "tracing": "tracing",
    }
    for wire, field in fields.items():
        if wire in session:
            patch[field], names[field] = session[wire], f"session.{wire}"
    if "modalities" in session:
        modalities = session["modalities"] or []
        # Beta's ["text", "audio"] is GA's ["audio"] (audio always comes with its transcript).
        patch["output_modalities"] = ["audio"] if "audio" in modalities else ["text"]
        names["output_modalities"] = "session.modalities"
    if kind is not None:
        patch["kind"] = kind
    return patch, names


def apply_update(
    current: SessionConfig, session: dict[str, Any], *, beta: bool, kind: SessionKind | None = None
) -> SessionConfig:
    """The config after applying a client's session object (GA nested or beta flat). Raises InvalidSessionError."""
    if not isinstance(session, dict):
        raise InvalidSessionError("'session' must be an object.", "session")
    patch, names = _beta_patch(session, kind) if beta else _ga_patch(session)
    unknown = sorted(session.keys() - (_BETA_KEYS | _GA_KEYS))
    if unknown:  # tolerated, as OpenAI adds fields over time, but visible to whoever runs the server
        logger.info("session.update: ignoring fields %s", unknown)
    merged = current.model_dump()
    merged.update(patch)
    try:
        return SessionConfig.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        param = names.get(field, f"session.{field}" if field else "session")
        tags = ("server_vad", "semantic_vad")  # pydantic's union tags, not field names
        rest = ".".join(str(p) for p in first["loc"][1:] if not isinstance(p, int) and p not in tags)
        param = f"{param}.{rest}" if rest else param
        raise InvalidSessionError(f"Invalid value for '{param}': {first['msg']}.", param) from None


# --- rendering ------------------------------------------------------------------------------------------------


def _format_ga(fmt: AudioFormat) -> dict[str, Any]:
    return {"type": "audio/pcm", "rate": PCM_RATE} if fmt == "pcm16" else {"type": _GA_FORMAT_NAMES[fmt]}


def _dump(value: BaseModel | None) -> dict[str, Any] | None:
    return None if value is None else value.model_dump()


def render_ga(config: SessionConfig, session_id: str) -> dict[str, Any]:
    audio_input = {
        "format": _format_ga(config.input_format),
        "transcription": _dump(config.transcription),
        "noise_reduction": _dump(config.noise_reduction),
        "turn_detection": _dump(config.turn_detection),
    }
    if config.kind == "transcription":
        return {
            "type": "transcription", "object": "realtime.transcription_session", "id": session_id,
            "audio": {"input": audio_input}, "include": config.include,
        }
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": config.model or "gpt-realtime",
        "output_modalities": list(config.output_modalities),
        "instructions": config.instructions,
        "audio": {
            "input": audio_input,
            "output": {"format": _format_ga(config.output_format), "voice": wire_voice(config.voice),
                       "speed": config.speed},
        },
        "tools": config.tools,
        "tool_choice": config.tool_choice,
        "max_output_tokens": config.max_output_tokens,
        "tracing": config.tracing,
        "include": config.include,
    }


def _beta_turn_detection(config: SessionConfig) -> dict[str, Any] | None:
    td = _dump(config.turn_detection)
    if td is not None and td.get("idle_timeout_ms") is None:
        td.pop("idle_timeout_ms", None)
    return td


def render_beta(config: SessionConfig, session_id: str) -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "realtime.session",
        "model": config.model or "gpt-4o-realtime-preview",
        "modalities": ["text", "audio"] if "audio" in config.output_modalities else ["text"],
        "instructions": config.instructions,
        "voice": wire_voice(config.voice),
        "input_audio_format": config.input_format,
        "output_audio_format": config.output_format,
        "input_audio_transcription": _dump(config.transcription),
        "input_audio_noise_reduction": _dump(config.noise_reduction),
        "turn_detection": _beta_turn_detection(config),
        "tools": config.tools,
        "tool_choice": config.tool_choice if isinstance(config.tool_choice, str) else "auto",
        "temperature": config.temperature,
        "max_response_output_tokens": config.max_output_tokens,
        "speed": config.speed,
    }


def render_beta_transcription(config: SessionConfig, session_id: str) -> dict[str, Any]:
    td = _beta_turn_detection(config)
    if td is not None:
        td = {k: v for k, v in td.items() if k in ("type", "threshold", "prefix_padding_ms", "silence_duration_ms")}
    return {
        "id": session_id,
        "object": "realtime.transcription_session",
        # Beta transcription sessions always carried an ephemeral secret; a local server has none to hand out.
        "client_secret": {"value": "", "expires_at": 0},
        "input_audio_format": config.input_format,
        "input_audio_transcription": _dump(config.transcription),
        "input_audio_noise_reduction": _dump(config.noise_reduction),
        "modalities": ["text"],
        "turn_detection": td,
    }
