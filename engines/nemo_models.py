"""Loading NeMo ASR checkpoints (extra `voxloop[nemo]`) and what each kind of model can do: shared by the offline
(`engines/nemo.py`) and the cache-aware streaming (`engines/nemo_streaming.py`) transcribers."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

from engines.base import EngineUnavailableError, TranscriberCapabilities
from engines.settings import NemoSettings

logger = logging.getLogger(__name__)

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
            model = restore_local(ASRModel, path, device)
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


def restore_local(ASRModel: Any, path: Path, device: Any) -> Any:
    """`restore_from` a local `.nemo`; if torch's `weights_only` unpickler refuses its weights file, once more with
    a full unpickler.

    Since torch 2.6 `torch.load` defaults to `weights_only=True`, and NeMo 3.0 loads `model_weights.ckpt` with that
    default: a checkpoint whose pickle holds anything beyond tensors and plain containers (a NumPy scalar or an
    OmegaConf node in the state dict's metadata, as a training run can leave there) then fails with an
    `UnpicklingError`, as a cache-aware streaming `.nemo` did on torch 2.11. A local `.nemo` is the operator's own
    file, and its `model_config.yaml` already names the classes NeMo builds (`_target_`), so the restricted
    unpickler protects nothing here; the retry is logged with what was refused.
    """
    try:
        return ASRModel.restore_from(str(path), map_location=device)
    except pickle.UnpicklingError as exc:
        if "weights_only" not in str(exc):
            raise
        logger.warning("torch's weights_only loader refused %s (%s); restoring it with the full unpickler",
                       path, str(exc).splitlines()[0])
    return ASRModel.restore_from(str(path), map_location=device, save_restore_connector=_full_unpickler_connector())


def _full_unpickler_connector() -> Any:
    """NeMo's own `SaveRestoreConnector`, loading the weights file with `weights_only=False`."""
    import torch
    from nemo.core.connectors.save_restore_connector import SaveRestoreConnector

    class FullUnpicklerConnector(SaveRestoreConnector):
        @staticmethod
        def _load_state_dict_from_disk(model_weights: str, map_location: Any = "cpu") -> Any:
            return torch.load(model_weights, map_location=map_location, weights_only=False)

    return FullUnpicklerConnector()


def probe_nemo_file(ref: str) -> Any:
    def probe() -> str | None:
        if is_local(ref):
            return None if Path(ref).expanduser().exists() else f"missing NeMo model file {ref}"
        return None

    return probe


def nemo_capabilities(model_id: str) -> TranscriberCapabilities:
    return MULTILINGUAL_CAPABILITIES if model_id.endswith("-v3") else NEMO_CAPABILITIES


def hypothesis_text(hyp: Any) -> str:
    """The text of what a NeMo decoder returned (a `Hypothesis`, or a plain string from CTC decoding)."""
    return hyp if isinstance(hyp, str) else (getattr(hyp, "text", "") or "")
