"""Loading NeMo ASR checkpoints (extra `voxloop[nemo]`) and what each kind of model can do: shared by the offline
(`engines/nemo.py`) and the cache-aware streaming (`engines/nemo_streaming.py`) transcribers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.base import EngineUnavailableError, TranscriberCapabilities
from engines.settings import NemoSettings

INSTALL_HINT = "pip install 'voxloop[nemo]'"
# Parakeet TDT v2 and Nemotron streaming are English models; a multilingual NeMo checkpoint (parakeet-tdt-0.6b-v3)
# can be declared by giving its id a `-v3` suffix, which lifts the language check.
ENGLISH_ONLY = frozenset({"en"})
NEMO_CAPABILITIES = TranscriberCapabilities(languages=ENGLISH_ONLY, translate=False, word_timestamps=True)
MULTILINGUAL_CAPABILITIES = TranscriberCapabilities(languages=None, translate=False, word_timestamps=True)
# Cache-aware streaming decoding gives text per encoder chunk, without word timestamps.
STREAMING_CAPABILITIES = TranscriberCapabilities(
    languages=ENGLISH_ONLY, translate=False, word_timestamps=False, streaming=True
)


def import_nemo() -> tuple[Any, Any]:
    """torch and NeMo's ASRModel, or an install hint. Imported lazily: NeMo takes seconds to import."""
    try:
        import torch
        from nemo.collections.asr.models import ASRModel
    except ImportError as exc:
        raise EngineUnavailableError(f"NeMo is not installed ({exc.name}): {INSTALL_HINT}") from exc
    return torch, ASRModel


def is_local(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or ref.endswith(".nemo") or Path(ref).expanduser().exists()


def load_nemo_model(ref: str, settings: NemoSettings) -> Any:
    """`ASRModel.restore_from` for a local `.nemo`, `from_pretrained` for a hub id (only when downloads are allowed)."""
    torch, ASRModel = import_nemo()
    device = torch.device(settings.device)
    try:
        if is_local(ref):
            path = Path(ref).expanduser()
            if not path.exists():
                raise EngineUnavailableError(f"NeMo model file not found: {path}")
            model = ASRModel.restore_from(str(path), map_location=device)
        elif settings.allow_downloads:
            model = ASRModel.from_pretrained(ref, map_location=device)
        else:
            raise EngineUnavailableError(
                f"'{ref}' is a hub id and downloads are off: set VOXLOOP_NEMO__ALLOW_DOWNLOADS=true, or give a local "
                ".nemo path."
            )
    except EngineUnavailableError:
        raise
    except Exception as exc:
        raise EngineUnavailableError(f"NeMo model '{ref}' could not be loaded: {exc}") from exc
    return model.to(device).eval()


def probe_nemo_file(ref: str) -> Any:
    def probe() -> str | None:
        if is_local(ref):
            return None if Path(ref).expanduser().exists() else f"missing NeMo model file {ref}"
        return None

    return probe


def nemo_capabilities(model_id: str) -> TranscriberCapabilities:
    return MULTILINGUAL_CAPABILITIES if model_id.endswith("-v3") else NEMO_CAPABILITIES
