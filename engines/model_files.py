"""Model file references from settings: a local path, or a hub file `repo_id:path/in/repo` (Hugging Face).

A hub file is fetched only when downloads are allowed (`tts.allow_downloads`); otherwise only an already cached
copy is used, and a missing one is a clear `EngineUnavailableError`. Resolution happens in engine factories (on
first use), never at import or registration.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from engines.base import EngineUnavailableError


def is_hub_ref(ref: str) -> bool:
    """`owner/repo:file` with no local file of that name: a hub reference."""
    head, sep, tail = ref.partition(":")
    return bool(sep and tail and head.count("/") == 1 and not Path(ref).expanduser().exists())


def resolve_file(ref: str, *, allow_downloads: bool, cache_dir: Path) -> Path:
    if not is_hub_ref(ref):
        path = Path(ref).expanduser()
        if not path.exists():
            raise EngineUnavailableError(f"Model file not found: {path}")
        return path
    repo_id, _, filename = ref.partition(":")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover - a dependency of faster-whisper
        raise EngineUnavailableError("huggingface_hub is needed for hub model ids: pip install huggingface_hub") from exc
    try:
        return Path(
            hf_hub_download(repo_id, filename, cache_dir=str(cache_dir / "hub"), local_files_only=not allow_downloads)
        )
    except Exception as exc:
        hint = "" if allow_downloads else " (downloads are off: set VOXLOOP_TTS__ALLOW_DOWNLOADS=true to fetch it)"
        raise EngineUnavailableError(f"The hub file {ref} is not available{hint}: {type(exc).__name__}") from exc


def package_dir(package: str, missing: str | None = None) -> Path:
    """The directory of an installed package, found without importing it (model-data wheels need no import).

    Raises `EngineUnavailableError` with `missing` (or a generic sentence) when the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailableError(missing or f"The package '{package}' that carries this model is not installed.")
    return Path(next(iter(spec.submodule_search_locations)))
