"""Where the PyTorch Kokoro's files are: a local directory laid out like the hexgrad/Kokoro-82M hub repo, or that
hub id resolved to a cached (or, when allowed, downloaded) snapshot of it.

The directory holds `config.json`, the weights (`kokoro-v1_0.pth`, or a single other `.pth`) and `voices/<id>.pt`
voice packs. Listing the voices reads file names only, so the model's capabilities are known before it is loaded.
"""

from __future__ import annotations

from pathlib import Path

from engines.base import EngineUnavailableError, Voice
from engines.kokoro_onnx import voice_language

HUB_REPO = "hexgrad/Kokoro-82M"
WEIGHTS_NAME = "kokoro-v1_0.pth"
# Only what the engine reads: the hub repo also carries samples and eval files.
HUB_PATTERNS = ["config.json", "*.pth", "voices/*.pt"]
# The voice packs of hexgrad/Kokoro-82M v1.0 (as in hexgrad/kokoro's kokoro.js/voices): a hub id that is not
# downloaded yet declares these (its real list replaces them once cached); the first request fetches the files.
HUB_V1_VOICES = (
    "af_alloy af_aoede af_bella af_heart af_jessica af_kore af_nicole af_nova af_river af_sarah af_sky am_adam "
    "am_echo am_eric am_fenrir am_liam am_michael am_onyx am_puck am_santa bf_alice bf_emma bf_isabella bf_lily "
    "bm_daniel bm_fable bm_george bm_lewis ef_dora em_alex em_santa ff_siwis hf_alpha hf_beta hm_omega hm_psi "
    "if_sara im_nicola jf_alpha jf_gongitsune jf_nezumi jf_tebukuro jm_kumo pf_dora pm_alex pm_santa zf_xiaobei "
    "zf_xiaoni zf_xiaoxiao zf_xiaoyi zm_yunjian zm_yunxi zm_yunxia zm_yunyang"
).split()


def is_local(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or Path(ref).expanduser().exists()


def model_dir(ref: str, *, allow_downloads: bool, cache_dir: Path) -> Path:
    """The local directory for `ref`; a hub id is fetched only when downloads are allowed, else only from cache."""
    if is_local(ref):
        path = Path(ref).expanduser()
        if not path.is_dir():
            raise EngineUnavailableError(f"Kokoro model directory not found: {path}")
        return path
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - a dependency of kokoro itself
        raise EngineUnavailableError("huggingface_hub is needed for hub ids: pip install 'voxloop[kokoro]'") from exc
    try:
        return Path(snapshot_download(ref, allow_patterns=HUB_PATTERNS, cache_dir=str(cache_dir / "hub"),
                                      local_files_only=not allow_downloads))
    except Exception as exc:
        hint = "" if allow_downloads else (
            " (downloads are off: set VOXLOOP_TTS__ALLOW_DOWNLOADS=true, or give a local directory)"
        )
        raise EngineUnavailableError(f"The Kokoro hub repo {ref} is not available{hint}: {type(exc).__name__}") from exc


def cached_dir(ref: str, cache_dir: Path) -> Path | None:
    """The directory for `ref` if it is already here (never downloads), else None."""
    try:
        return model_dir(ref, allow_downloads=False, cache_dir=cache_dir)
    except EngineUnavailableError:
        return None


def weights_file(directory: Path) -> Path:
    named = directory / WEIGHTS_NAME
    if named.is_file():
        return named
    others = sorted(directory.glob("*.pth"))
    if len(others) != 1:
        found = ", ".join(p.name for p in others) or "none"
        raise EngineUnavailableError(f"expected {WEIGHTS_NAME} (or exactly one .pth) in {directory}; found {found}")
    return others[0]


def voice_files(directory: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted((directory / "voices").glob("*.pt"))}


def missing_files(directory: Path) -> list[str]:
    """What a usable model directory lacks (empty when complete)."""
    missing = [] if (directory / "config.json").is_file() else ["config.json"]
    try:
        weights_file(directory)
    except EngineUnavailableError:
        missing.append(WEIGHTS_NAME)
    if not voice_files(directory):
        missing.append("voices/*.pt")
    return missing


def kokoro_voice(voice_id: str) -> Voice:
    # Kokoro ids are <language letter><f|m>_<name>: af_heart is a US English female voice.
    gender = {"f": "female", "m": "male"}.get(voice_id[1:2])
    name = voice_id.split("_", 1)[-1].title()
    return Voice(id=voice_id, name=name, language=voice_language(voice_id), gender=gender,
                 description=f"Kokoro-82M voice pack {voice_id}.")


def listed_voices(ref: str, cache_dir: Path) -> tuple[Voice, ...]:
    """The voices `ref` offers, from file names: a local or cached directory, else (a hub id not downloaded yet)
    the v1.0 list."""
    directory = cached_dir(ref, cache_dir)
    if directory is not None:
        return tuple(kokoro_voice(v) for v in voice_files(directory))
    return () if is_local(ref) else tuple(kokoro_voice(v) for v in HUB_V1_VOICES)
