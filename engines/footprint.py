"""How much memory a model takes: declared estimates per engine family, and a measurement for torch engines.

The model manager budgets memory per device before a model loads, so every `EngineSpec` declares an estimate.
Estimates are weights (parameter count x bytes per parameter, or the size of the weight file) plus a margin; the
sources of the figures are noted beside them. After loading, an engine may report what it really took
(`memory_bytes()`); torch engines on CUDA measure it with `CudaAllocation`. Nothing here imports torch.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import TracebackType

MIB = 1024**2

# Weights are most of a loaded model; runtimes add workspace on top (cuBLAS/cuDNN handles, CTranslate2 and
# onnxruntime arenas, one batch of activations). 20% is a rough allowance, not a measurement: the budget is a
# guard against overcommitting a GPU, and a measured figure replaces the estimate where the engine has one.
RUNTIME_MARGIN = 1.2

# Whisper parameter counts, from the table in openai/whisper's README (tiny..large, turbo) and the
# distil-whisper model cards. Checked in this order: the first name that occurs in the model id or path wins.
WHISPER_PARAMS = (
    ("distil-large", 756_000_000),
    ("distil-medium", 394_000_000),
    ("distil-small", 166_000_000),
    ("turbo", 809_000_000),
    ("large", 1_550_000_000),
    ("medium", 769_000_000),
    ("small", 244_000_000),
    ("base", 74_000_000),
    ("tiny", 39_000_000),
)
# CTranslate2 keeps weights in the compute type: int8 variants store 1 byte per weight; `default`/`auto` keep the
# converted model's type, which is float16 for the released faster-whisper conversions.
CT2_BYTES_PER_PARAM = {"int8": 1, "int8_float16": 1, "int8_bfloat16": 1, "int8_float32": 1, "float16": 2,
                       "bfloat16": 2, "float32": 4, "default": 2, "auto": 2}

# NeMo restores checkpoints in float32. Parakeet TDT 0.6B v2/v3 have 600M parameters (model cards); a NeMo id
# without a size in its name is assumed to be the 1.1B Parakeet, the largest of the family (an overestimate
# refuses early rather than overcommitting).
NEMO_DEFAULT_PARAMS = 1_100_000_000
# emotion2vec+ model cards: seed and base are data2vec-base sized (~90M parameters), large ~300M; float32.
EMOTION2VEC_PARAMS = {"seed": 90_000_000, "base": 90_000_000, "large": 300_000_000}
# WhisperX adds a wav2vec2 aligner: torchaudio's WAV2VEC2_ASR_BASE_960H (English default) has 95M parameters,
# float32. Aligners of other languages (XLSR-53 large, 315M) load lazily per language and are not counted here.
WAV2VEC2_BASE_BYTES = 95_000_000 * 4
# pyannote speaker-diarization-community-1: segmentation (~1.5M) + WeSpeaker ResNet34 embedding (~6.6M), float32.
PYANNOTE_DIARIZATION_BYTES = 8_100_000 * 4
# Kokoro-82M: 82M parameters (hexgrad/Kokoro-82M card). The embedded int8 model is four 23 MB wheel parts
# (measured here: 92 MB); a configured model is counted as the float32 ONNX (kokoro-v1.0.onnx, 310 MB).
KOKORO_EMBEDDED_BYTES = 92 * MIB
KOKORO_FP32_BYTES = 82_000_000 * 4
# Piper medium voices are 63 MB ONNX files (en_US-joe-medium.onnx, measured here); `high` voices are ~114 MB, so
# a configured voice is counted as high quality.
PIPER_MEDIUM_BYTES = 63 * MIB
PIPER_HIGH_BYTES = 114 * MIB
# SmolLM2-135M-Instruct Q4_1 GGUF is 98 MB (measured here); its f16 KV cache takes 2 (K, V) x 30 layers x 3 KV
# heads x 64 dims x 2 bytes = 23,040 bytes per token of context (the model's config.json).
SMOLLM2_GGUF_BYTES = 98 * MIB
SMOLLM2_KV_BYTES_PER_TOKEN = 23_040
# The prosody baseline holds only the VADER lexicon (~7,500 entries in a dict): a few MB.
PROSODY_BASELINE_BYTES = 8 * MIB


def with_margin(weight_bytes: float) -> int:
    return int(weight_bytes * RUNTIME_MARGIN)


def whisper_params(name: str) -> int:
    """Parameter count of a Whisper model from its id or path; unknown names count as large (1550M)."""
    lowered = name.lower()
    return next((params for key, params in WHISPER_PARAMS if key in lowered), 1_550_000_000)


def whisper_bytes(name: str, compute_type: str) -> int:
    return with_margin(whisper_params(name) * CT2_BYTES_PER_PARAM.get(compute_type, 4))


def params_in_name(name: str, default: int) -> int:
    """`parakeet-tdt-0.6b-v2` -> 600M: the `<n>b` size most model ids carry, else `default`."""
    match = re.search(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)b(?![a-z])", name.lower())
    return int(float(match.group(1)) * 1e9) if match else default


def nemo_bytes(name: str) -> int:
    return with_margin(params_in_name(name, NEMO_DEFAULT_PARAMS) * 4)


def emotion2vec_bytes(name: str) -> int:
    """From the size in the model id or path (`emotion2vec_plus_base`); unknown names count as large."""
    size = next((s for s in ("large", "base", "seed") if s in name.lower()), "large")
    return with_margin(EMOTION2VEC_PARAMS[size] * 4)


def whisperx_bytes(name: str, compute_type: str, diarization: bool) -> int:
    """The Whisper model, the default English aligner, and the diarization pipeline when one is configured."""
    extra = WAV2VEC2_BASE_BYTES + (PYANNOTE_DIARIZATION_BYTES if diarization else 0)
    return whisper_bytes(name, compute_type) + with_margin(extra)


def file_bytes(path: str | Path | None, default: int) -> int:
    """Size of a local weight file (a stat, no reading), or `default` when it is not a local file (a hub ref)."""
    try:
        local = Path(path).expanduser() if path is not None else None
        return local.stat().st_size if local is not None and local.is_file() else default
    except OSError:
        return default


def llama_bytes(gguf: Path | None, context: int) -> int:
    """The embedded SmolLM2 with its KV cache at `context` tokens; another GGUF counts as its file size only (its
    architecture, and so its KV cache per token, is unknown until loaded)."""
    if gguf is None:
        return with_margin(SMOLLM2_GGUF_BYTES + context * SMOLLM2_KV_BYTES_PER_TOKEN)
    return with_margin(file_bytes(gguf, SMOLLM2_GGUF_BYTES))


class CudaAllocation:
    """Bytes torch's allocator gained on a CUDA device while the block ran: `bytes` is None off CUDA.

    Used around a torch model's load. Anything else allocating on that device at the same moment (another request's
    activations) is counted too; loads are rare, and the figure only replaces a rough estimate.
    """

    def __init__(self, device: str):
        self._device = device if device.strip().lower().startswith("cuda") else None
        self._before = 0
        self.bytes: int | None = None

    def _allocated(self) -> int:
        torch = sys.modules.get("torch")  # not imported yet: torch has allocated nothing in this process
        if torch is None or not torch.cuda.is_initialized():
            return 0
        return int(torch.cuda.memory_allocated(self._device))

    def __enter__(self) -> CudaAllocation:
        if self._device is not None:
            self._before = self._allocated()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._device is not None and kind is None:
            gained = self._allocated() - self._before
            self.bytes = gained if gained > 0 else None
