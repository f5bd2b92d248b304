"""TTS models from settings: a local file, or a hub file that is only fetched when downloads are allowed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from api.settings import Settings
from engines.base import CancelToken, EngineUnavailableError, SynthesisOptions
from engines.model_files import is_hub_ref, resolve_file
from engines.piper import joe_model_path
from engines.settings import TTSSettings
from voxloop.app import build_registry


def test_hub_refs_are_recognised(tmp_path: Path) -> None:
    assert is_hub_ref("rhasspy/piper-voices:en/en_US/lessac/medium/en_US-lessac-medium.onnx")
    assert not is_hub_ref(str(tmp_path / "voice.onnx"))
    assert not is_hub_ref("C:/models/voice.onnx")


def test_hub_file_without_downloads_is_unavailable_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailableError, match="ALLOW_DOWNLOADS"):
        resolve_file("someone/some-voices:voice.onnx", allow_downloads=False, cache_dir=tmp_path)
    with pytest.raises(EngineUnavailableError, match="not found"):
        resolve_file(str(tmp_path / "missing.onnx"), allow_downloads=False, cache_dir=tmp_path)


def test_local_piper_voice_from_settings(tmp_path: Path) -> None:
    source = joe_model_path()
    local = tmp_path / "en_GB-test-medium.onnx"
    shutil.copyfile(source, local)
    shutil.copyfile(f"{source}.json", f"{local}.json")
    registry = build_registry(Settings(cache_dir=tmp_path, tts=TTSSettings(piper_model=str(local))))
    spec = registry.resolve("en_GB-test-medium", "speech")
    assert spec.model_id == "piper-en_GB-test-medium" and spec.probe() is None
    assert spec.capabilities.voices[0].language == "en-GB"
    engine = spec.factory()
    chunks = list(engine.synthesize("Hello.", SynthesisOptions(voice="en_GB-test-medium"), CancelToken()))
    assert np.concatenate([c.samples for c in chunks]).std() > 0.01
    assert registry.resolve("piper-joe", "speech").model_id == "piper-joe"  # the embedded voice stays


def test_hub_kokoro_without_downloads_fails_on_load_not_at_startup(tmp_path: Path) -> None:
    tts = TTSSettings(kokoro_model="someone/kokoro:model.onnx", kokoro_voices="someone/kokoro:voices.bin")
    spec = build_registry(Settings(cache_dir=tmp_path, tts=tts)).resolve("kokoro-82m", "speech")
    assert spec.probe() is None
    with pytest.raises(EngineUnavailableError, match="downloads are off"):
        spec.factory()
