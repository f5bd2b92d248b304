"""Settings of the optional engines (the GPU extras and remote servers): part of `Settings`, split out to keep
each settings module small. Read through `Settings`, never from the environment directly.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

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
    timeout_seconds: float = Field(
        600.0, gt=0, description="Read timeout: the longest wait for the next bytes of an answer (504 past it)."
    )
    connect_timeout_seconds: float = Field(5.0, gt=0, description="Connect timeout.")
    retries: int = Field(2, ge=0, le=10, description="Retries on connection errors only (never after a request was sent).")

class RemoteTranscriptionEndpoint(RemoteEndpoint):
    """A remote transcription model, with what it can do (a remote cannot be asked before it is reached)."""

    languages: list[str] | None = Field(None, description="Languages the upstream model knows; unset: any.")
    translate: bool = Field(False, description="Whether the upstream model can translate.")
    diarization: bool = Field(False, description="Whether the upstream model answers diarized_json.")

class ChatterboxSettings(BaseModel):
    """Resemble AI Chatterbox (extra `voxloop[chatterbox]`): Turbo/Nano (paralinguistic tags) and the original
    Chatterbox (exaggeration and cfg_weight); all clone a voice from a few seconds of reference audio."""

    models: dict[str, str] = Field(
        default_factory=dict,
        description='id -> local checkpoint directory or hub id, e.g. {"chatterbox-turbo": "/models/chatterbox-turbo"} '
        "(ResembleAI/chatterbox-turbo, ResembleAI/chatterbox-nano, ResembleAI/chatterbox).",
    )
    device: str = Field("cuda", description="Torch device: `cuda`, `cuda:1`, `cpu` or `mps`.")
    allow_downloads: bool = Field(False, description="Let hub ids download weights (needs a network).")
    exaggeration: float = Field(0.5, ge=0.0, le=2.0, description="Original Chatterbox: emotion intensity by default.")
    cfg_weight: float = Field(0.5, ge=0.0, le=1.0, description="Original Chatterbox: guidance weight by default.")
    temperature: float = Field(0.8, gt=0.0, le=2.0, description="Sampling temperature of the speech tokens.")
    cached_voices: int = Field(16, ge=1, description="Cloned voices whose conditioning is kept in memory.")
    max_speech_tokens: int = Field(
        1000, ge=1, le=4000, description="Most speech tokens one phrase may generate (25 a second: 1000 is 40 s, the "
        "library's own fixed cap). Bounds a model that never emits its stop token.",
    )

class RemoteSettings(BaseModel):
    """Engines that are other servers, per capability. Model ids must be unique over all capabilities."""

    transcription: dict[str, RemoteTranscriptionEndpoint] = Field(
        default_factory=dict,
        description='id -> endpoint, e.g. {"parakeet-remote": {"base_url": "http://gpu-box:8000/v1", '
        '"model": "parakeet-tdt-0.6b-v2"}}.',
    )
    speech: dict[str, RemoteEndpoint] = Field(
        default_factory=dict,
        description='id -> endpoint for /v1/audio/speech, e.g. {"chatterbox-remote": {"base_url": '
        '"http://127.0.0.1:8001/v1", "model": "chatterbox-turbo"}}. Voices come from the remote\'s GET /audio/voices.',
    )
    emotion: dict[str, RemoteEndpoint] = Field(
        default_factory=dict,
        description='id -> endpoint for /v1/emotion (another voxloop), e.g. {"e2v-remote": {"base_url": '
        '"http://gpu-box:8000/v1", "model": "emotion2vec_plus_large"}}.',
    )

    def model_ids(self) -> set[str]:
        return {*self.transcription, *self.speech, *self.emotion}

