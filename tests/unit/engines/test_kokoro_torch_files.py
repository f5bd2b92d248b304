"""The library-free parts of the PyTorch Kokoro: where its files are, which voices it declares, when it registers.
The engine itself, with the real library, runs in tests/e2e/test_kokoro_torch.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings
from engines.base import EngineUnavailableError
from engines.kokoro_torch import pick_device
from engines.kokoro_torch_files import HUB_V1_VOICES, listed_voices, missing_files, model_dir, weights_file
from engines.settings import TTSSettings
from voxloop.app import build_registry


def _layout(root: Path, voices: tuple[str, ...] = ("af_heart", "bm_george"), weights: str = "kokoro-v1_0.pth") -> Path:
    (root / "voices").mkdir(parents=True)
    (root / "config.json").write_text("{}")
    (root / weights).write_bytes(b"")
    for v in voices:
        (root / "voices" / f"{v}.pt").write_bytes(b"")
    return root


def test_local_directory_voices_come_from_file_names(tmp_path: Path) -> None:
    d = _layout(tmp_path / "k", voices=("af_heart", "bm_george", "jf_alpha", "zm_yunxi"))
    voices = {v.id: (v.language, v.gender, v.name) for v in listed_voices(str(d), tmp_path / "cache")}
    assert voices == {"af_heart": ("en-US", "female", "Heart"), "bm_george": ("en-GB", "male", "George"),
                      "jf_alpha": ("ja", "female", "Alpha"), "zm_yunxi": ("zh", "male", "Yunxi")}
    assert missing_files(d) == [] and weights_file(d).name == "kokoro-v1_0.pth"


def test_incomplete_directory_says_what_it_lacks(tmp_path: Path) -> None:
    d = tmp_path / "k"
    d.mkdir()
    assert missing_files(d) == ["config.json", "kokoro-v1_0.pth", "voices/*.pt"]
    other = _layout(tmp_path / "zh", weights="kokoro-v1_1-zh.pth")
    assert weights_file(other).name == "kokoro-v1_1-zh.pth"  # a single other .pth (the v1.1-zh repo) is taken
    with pytest.raises(EngineUnavailableError, match="not found"):
        model_dir(str(tmp_path / "absent"), allow_downloads=False, cache_dir=tmp_path)


def test_hub_id_is_never_fetched_when_downloads_are_off(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailableError, match="downloads are off"):
        model_dir("hexgrad/Kokoro-82M", allow_downloads=False, cache_dir=tmp_path)
    # Not cached yet: the hub repo's v1.0 voices are declared, so requests validate before the first download.
    assert [v.id for v in listed_voices("hexgrad/Kokoro-82M", tmp_path)] == HUB_V1_VOICES
    assert len(HUB_V1_VOICES) == 54


def test_registered_only_when_configured(tmp_path: Path) -> None:
    assert "kokoro-82m-torch" not in build_registry(Settings(cache_dir=tmp_path)).names("speech")
    d = _layout(tmp_path / "k")
    registry = build_registry(Settings(cache_dir=tmp_path, tts=TTSSettings(kokoro_torch_model=str(d))))
    spec = registry.resolve("kokoro-torch", "speech")
    assert spec.model_id == "kokoro-82m-torch" and registry.resolve("kokoro-82m", "speech").model_id == "kokoro-82m"
    assert [v.id for v in spec.capabilities.voices] == ["af_heart", "bm_george"] and spec.capabilities.blending


def test_device_choice() -> None:
    class Backend:
        def __init__(self, available: bool):
            self.available = available

        def is_available(self) -> bool:
            return self.available

    def torch(cuda: bool, mps: bool):
        return type("T", (), {"cuda": Backend(cuda), "backends": type("B", (), {"mps": Backend(mps)})})

    assert pick_device(torch(True, False), "auto") == "cuda"
    assert pick_device(torch(False, True), "auto") == "mps"
    assert pick_device(torch(False, False), "auto") == "cpu"
    assert pick_device(torch(True, False), "cuda:1") == "cuda:1"
    with pytest.raises(EngineUnavailableError, match="no CUDA"):
        pick_device(torch(False, True), "cuda")
    with pytest.raises(EngineUnavailableError, match="MPS"):
        pick_device(torch(True, False), "mps")
