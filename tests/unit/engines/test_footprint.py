"""Declared footprints: sizes read from model names and files, per-engine estimates in the registry, and the
CUDA measurement staying out of the way off CUDA."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from api.settings import Settings
from engines.footprint import (
    CudaAllocation,
    file_bytes,
    params_in_name,
    whisper_bytes,
    whisper_params,
)
from voxloop.app import build_registry


def test_whisper_sizes_from_names() -> None:
    assert whisper_params("whisper-tiny.en") == 39_000_000
    assert whisper_params("/models/faster-whisper-large-v3-turbo") == 809_000_000
    assert whisper_params("distil-large-v3") == 756_000_000
    assert whisper_params("/data/mystery") == 1_550_000_000, "unknown names count as the largest"
    assert whisper_bytes("small", "float16") == 2 * whisper_bytes("small", "int8")


def test_parameter_count_in_model_ids() -> None:
    assert params_in_name("parakeet-tdt-0.6b-v2", 1) == 600_000_000
    assert params_in_name("parakeet-tdt-1.1b", 1) == 1_100_000_000
    assert params_in_name("stt_en_fastconformer", 5) == 5
    assert params_in_name("model-v2b", 5) == 5, "a version suffix is not a size"


def test_file_sizes_of_local_weights_only(tmp_path: Path) -> None:
    weights = tmp_path / "voice.onnx"
    weights.write_bytes(b"x" * 1234)
    assert file_bytes(weights, 1) == 1234
    assert file_bytes(str(weights), 1) == 1234
    assert file_bytes("rhasspy/piper-voices:en/voice.onnx", 99) == 99
    assert file_bytes(None, 99) == 99


def test_every_registered_model_declares_device_and_footprint(tmp_path: Path) -> None:
    settings = Settings(
        cache_dir=tmp_path,
        whisper={"device": "cuda", "compute_type": "float16", "models": {"large-v3": "/models/lv3"}},
        nemo={"device": "cuda:1", "models": {"parakeet-tdt-0.6b-v2": "/m/p.nemo"}},
        remote={"transcription": {"far": {"base_url": "http://gpu:8000/v1", "model": "x"}}},
    )
    registry = build_registry(settings)
    by_id = {spec.model_id: spec for spec in registry.specs()}
    assert (by_id["whisper-tiny.en"].device, by_id["large-v3"].device) == ("cuda", "cuda")
    assert by_id["large-v3"].memory_bytes > 3 * 1024**3 > by_id["whisper-base"].memory_bytes
    assert by_id["parakeet-tdt-0.6b-v2"].device == "cuda:1"
    assert 2.4e9 <= by_id["parakeet-tdt-0.6b-v2"].memory_bytes <= 3.2e9  # 600M float32 parameters plus margin
    assert by_id["far"].device == "remote"
    assert by_id["emotion2vec_plus_large"].memory_bytes > by_id["emotion2vec_plus_base"].memory_bytes
    # Only the router (it loads no weights) and the remote model (another server's memory) declare nothing.
    assert sorted(s.model_id for s in registry.specs() if s.memory_bytes == 0) == ["far", "voxloop-duet"]


def test_cuda_measurement_is_none_off_cuda() -> None:
    with CudaAllocation("cpu") as allocated:
        pass
    assert allocated.bytes is None


class _FakeCuda:
    """torch.cuda as CudaAllocation sees it: an allocator whose total the test moves."""

    def __init__(self) -> None:
        self.allocated = 100
        self.asked: list[str] = []

    def is_initialized(self) -> bool:
        return True

    def memory_allocated(self, device: str) -> int:
        self.asked.append(device)
        return self.allocated


def test_cuda_measurement_is_the_allocator_delta_of_that_device(monkeypatch) -> None:
    cuda = _FakeCuda()
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    with CudaAllocation("cuda:1") as allocated:
        cuda.allocated = 600
    assert allocated.bytes == 500 and cuda.asked == ["cuda:1", "cuda:1"]
    with CudaAllocation("cuda") as freed:
        cuda.allocated = 300  # something else freed more than this load took: no usable figure
    assert freed.bytes is None
    with pytest.raises(RuntimeError), CudaAllocation("cuda") as failed:
        raise RuntimeError("load failed")
    assert failed.bytes is None
