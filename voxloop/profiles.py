"""`VOXLOOP_PROFILE`: one setting that selects an engine stack. `cpu` (the default) is the embedded models; `gpu` is:

- transcription: Parakeet TDT 0.6B v2 through NeMo (`whisper-1` and the gpt-4o aliases mean it), batched across
  requests; the cache-aware Nemotron streaming model beside it;
- speech: Kokoro-82M in PyTorch as the duet's fast voice (and `tts-1-hd`), Chatterbox-Turbo as its expressive one
  (the one that clones custom voices);
- emotion: emotion2vec+ large (the `default` emotion model);
- everything on `cuda`; chat stays the embedded model unless `VOXLOOP_CHAT_BASE_URL` points at vLLM.

Weights are read from `profile_models_dir` (`/models` by default) under fixed names (`GPU_FILES`). Every setting
given in the environment or on the command line still wins over the profile's value (a model map given replaces
the profile's whole map). `check_profile` says, before anything loads, what the profile's engines lack here (CUDA,
an extra, a weight file): `voxloop serve` then exits with status 2 and that list, not at the first request.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from api.settings import Settings

# Names under `profile_models_dir`: the hub repos' names, as `huggingface-cli download --local-dir` leaves them.
PARAKEET = "parakeet-tdt-0.6b-v2"
NEMOTRON = "nemotron-speech-streaming-en-0.6b"
KOKORO = "Kokoro-82M"
CHATTERBOX = "chatterbox-turbo"
EMOTION2VEC = "emotion2vec_plus_large"
GPU_FILES = {
    PARAKEET: f"{PARAKEET}.nemo",
    NEMOTRON: f"{NEMOTRON}.nemo",
    KOKORO: KOKORO,
    CHATTERBOX: CHATTERBOX,
    EMOTION2VEC: EMOTION2VEC,
}
KOKORO_TORCH_ID = "kokoro-82m-torch"
# Requests admitted at once per model: NeMo's batches take up to 16 (NemoSettings.batch_size).
GPU_MAX_CONCURRENT_PER_MODEL = 16


class ProfileError(Exception):
    """The profile's engines cannot run here; the message lists every missing piece."""


def gpu_defaults(models_dir: Path) -> dict[str, Any]:
    """The `gpu` profile as settings values (what an environment would set)."""
    path = {name: str(models_dir / file) for name, file in GPU_FILES.items()}
    return {
        "max_concurrent_per_model": GPU_MAX_CONCURRENT_PER_MODEL,
        "whisper": {"default_model": PARAKEET},
        "nemo": {"device": "cuda", "models": {PARAKEET: path[PARAKEET]}, "streaming_models": {NEMOTRON: path[NEMOTRON]}},
        "tts": {
            "kokoro_torch_model": path[KOKORO], "kokoro_torch_device": "cuda", "hd_model": KOKORO_TORCH_ID,
            "fast_model": KOKORO_TORCH_ID, "expressive_model": CHATTERBOX,
        },
        "chatterbox": {"device": "cuda", "models": {CHATTERBOX: path[CHATTERBOX]}, "batch_size": 16,
                       "parallel_requests": GPU_MAX_CONCURRENT_PER_MODEL},
        "emotion": {"device": "cuda", "emotion2vec": {EMOTION2VEC: path[EMOTION2VEC]}, "default_model": EMOTION2VEC},
    }


def _merge(model: type[BaseModel], base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`given` over `base`, recursing into settings groups only (a model map given replaces the profile's)."""
    out = dict(base)
    for key, value in given.items():
        field = model.model_fields.get(key)
        group = field.annotation if field is not None else None
        if isinstance(value, dict) and isinstance(out.get(key), dict) and isinstance(group, type) and issubclass(
            group, BaseModel
        ):
            out[key] = _merge(group, out[key], value)
        else:
            out[key] = value
    return out


def resolve_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `overrides`, with the chosen profile's values under them."""
    settings = Settings(**overrides)
    if settings.profile == "cpu":
        return settings
    given = settings.model_dump(exclude_unset=True)
    return Settings(**_merge(Settings, gpu_defaults(settings.profile_models_dir), given))


def _cuda_problem() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed (pip install 'voxloop[nemo]' brings it)"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA GPU (torch.cuda.is_available() is False)"
    return None


def _missing(path: str, what: str) -> str | None:
    return None if Path(path).expanduser().exists() else f"{what}: {path} does not exist"


def profile_problems(settings: Settings) -> list[str]:
    """What the configured GPU engines need and lack here: CUDA, their extras, their local weights."""
    problems: list[str] = []
    devices: list[str] = []
    extras = [
        ("nemo", bool(settings.nemo.models or settings.nemo.streaming_models), settings.nemo.device, "nemo"),
        ("kokoro", settings.tts.kokoro_torch_model is not None, settings.tts.kokoro_torch_device, "kokoro"),
        ("chatterbox", bool(settings.chatterbox.models), settings.chatterbox.device, "chatterbox"),
        ("funasr", bool(settings.emotion.emotion2vec), settings.emotion.device, "funasr"),
    ]
    for module, used, device, extra in extras:
        if not used:
            continue
        devices.append(device)
        if importlib.util.find_spec(module) is None:
            problems.append(f"the {extra} extra is not installed: pip install 'voxloop[{extra}]'")
    chatterbox = settings.chatterbox
    if chatterbox.models and chatterbox.t3_step == "cuda_graph" and not chatterbox.device.startswith("cuda"):
        problems.append(f"chatterbox t3_step 'cuda_graph' needs a CUDA device; chatterbox device is "
                        f"'{chatterbox.device}'")
    tts = settings.tts
    if tts.kokoro_torch_model is not None and tts.kokoro_torch_cuda_graphs and tts.kokoro_torch_device in ("cpu", "mps"):
        problems.append(f"kokoro_torch_cuda_graphs needs a CUDA device; the torch Kokoro's device is "
                        f"'{tts.kokoro_torch_device}'")
    if any(d.startswith("cuda") for d in devices):
        cuda = _cuda_problem()
        if cuda is not None:
            problems.append(cuda)
    for model_id, ref in {**settings.nemo.models, **settings.nemo.streaming_models}.items():
        if ref.startswith(("/", ".", "~")):
            problems.append(_missing(ref, f"NeMo model {model_id}"))
    for model_id, ref in settings.chatterbox.models.items():
        if ref.startswith(("/", ".", "~")):
            problems.append(_missing(ref, f"Chatterbox checkpoint {model_id}"))
    for model_id, ref in settings.emotion.emotion2vec.items():
        if ref.startswith(("/", ".", "~")):
            problems.append(_missing(ref, f"emotion2vec+ model {model_id}"))
    kokoro = settings.tts.kokoro_torch_model
    if kokoro is not None and kokoro.startswith(("/", ".", "~")):
        problems.append(_missing(kokoro, "Kokoro (torch) directory"))
    return [p for p in problems if p is not None]


def check_profile(settings: Settings) -> None:
    """Raise `ProfileError` when the `gpu` profile's engines cannot run here (nothing is checked for `cpu`)."""
    if settings.profile == "cpu":
        return
    problems = profile_problems(settings)
    if problems:
        raise ProfileError(
            f"VOXLOOP_PROFILE={settings.profile} cannot start here: " + "; ".join(problems)
            + ". Install what is missing, point VOXLOOP_PROFILE_MODELS_DIR at the weights, override a model with its "
            "own VOXLOOP_* setting, or use VOXLOOP_PROFILE=cpu."
        )
