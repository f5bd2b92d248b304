"""`VOXLOOP_PROFILE=gpu`: the GPU stack resolves from one setting, any given setting still wins, and `voxloop serve`
refuses to start (exit 2, every missing piece named) where CUDA, an extra or a weight file is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxloop import cli
from voxloop.profiles import ProfileError, check_profile, profile_problems, resolve_settings
from voxloop.server import GracefulServer


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("VOXLOOP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("VOXLOOP_CACHE_DIR", str(tmp_path / "cache"))


def test_cpu_is_the_default_and_unchanged() -> None:
    settings = resolve_settings()
    assert settings.profile == "cpu" and settings.nemo.models == {} and settings.tts.fast_model == "piper-joe"
    check_profile(settings)  # nothing to check


def test_gpu_profile_selects_the_gpu_engines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOXLOOP_PROFILE", "gpu")
    monkeypatch.setenv("VOXLOOP_PROFILE_MODELS_DIR", str(tmp_path))
    s = resolve_settings()
    assert s.nemo.device == "cuda" and s.nemo.models == {"parakeet-tdt-0.6b-v2": str(tmp_path / "parakeet-tdt-0.6b-v2.nemo")}
    assert s.nemo.streaming_models == {"nemotron-speech-streaming-en-0.6b": str(tmp_path / "nemotron-speech-streaming-en-0.6b.nemo")}
    assert s.whisper.default_model == "parakeet-tdt-0.6b-v2"
    assert (s.tts.fast_model, s.tts.expressive_model, s.tts.hd_model) == ("kokoro-82m-torch", "chatterbox-turbo",
                                                                          "kokoro-82m-torch")
    assert s.tts.kokoro_torch_model == str(tmp_path / "Kokoro-82M") and s.tts.kokoro_torch_device == "cuda"
    assert s.chatterbox.device == "cuda" and s.chatterbox.models == {"chatterbox-turbo": str(tmp_path / "chatterbox-turbo")}
    assert s.emotion.device == "cuda" and s.emotion.default_model == "emotion2vec_plus_large"
    assert s.max_concurrent_per_model == 16


def test_given_settings_win_over_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXLOOP_PROFILE", "gpu")
    monkeypatch.setenv("VOXLOOP_NEMO__DEVICE", "cpu")
    monkeypatch.setenv("VOXLOOP_CHATTERBOX__MODELS", "{}")
    monkeypatch.setenv("VOXLOOP_TTS__EXPRESSIVE_MODEL", "kokoro-82m")
    s = resolve_settings(port=9999)
    assert s.nemo.device == "cpu" and s.nemo.models  # the group's other values stay the profile's
    assert s.chatterbox.models == {} and s.chatterbox.device == "cuda"  # a model map given replaces the profile's
    assert s.tts.expressive_model == "kokoro-82m" and s.tts.fast_model == "kokoro-82m-torch" and s.port == 9999


def test_the_gpu_stack_is_refused_here_with_every_missing_piece(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch

    monkeypatch.setenv("VOXLOOP_PROFILE", "gpu")
    monkeypatch.setenv("VOXLOOP_PROFILE_MODELS_DIR", str(tmp_path))
    s = resolve_settings()
    problems = profile_problems(s)
    if not torch.cuda.is_available():
        assert any("sees no CUDA GPU" in p for p in problems)
    for name in ("parakeet-tdt-0.6b-v2.nemo", "nemotron-speech-streaming-en-0.6b.nemo", "Kokoro-82M",
                 "chatterbox-turbo", "emotion2vec_plus_large"):
        assert any(str(tmp_path / name) in p for p in problems), (name, problems)
    with pytest.raises(ProfileError, match="VOXLOOP_PROFILE=gpu cannot start here"):
        check_profile(s)
    # With every weight present, only what this machine lacks is left (here: CUDA, and extras not in this venv).
    for name in ("parakeet-tdt-0.6b-v2.nemo", "nemotron-speech-streaming-en-0.6b.nemo", "Kokoro-82M",
                 "chatterbox-turbo", "emotion2vec_plus_large"):
        (tmp_path / name).mkdir()
    assert not any(str(tmp_path) in p for p in profile_problems(s))


def test_a_cpu_override_of_every_engine_needs_no_cuda(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOXLOOP_PROFILE", "gpu")
    monkeypatch.setenv("VOXLOOP_PROFILE_MODELS_DIR", str(tmp_path))
    for group in ("NEMO", "CHATTERBOX", "EMOTION"):
        monkeypatch.setenv(f"VOXLOOP_{group}__DEVICE", "cpu")
    monkeypatch.setenv("VOXLOOP_TTS__KOKORO_TORCH_DEVICE", "cpu")
    assert not any("CUDA" in p for p in profile_problems(resolve_settings()))


@pytest.mark.parametrize(("device", "setting", "problem"), [
    ("VOXLOOP_CHATTERBOX__DEVICE", "VOXLOOP_CHATTERBOX__T3_STEP=cuda_graph",
     "chatterbox t3_step 'cuda_graph' needs a CUDA device; chatterbox device is 'cpu'"),
    ("VOXLOOP_TTS__KOKORO_TORCH_DEVICE", "VOXLOOP_TTS__KOKORO_TORCH_CUDA_GRAPHS=true",
     "kokoro_torch_cuda_graphs needs a CUDA device; the torch Kokoro's device is 'cpu'"),
])
def test_cuda_graphs_on_a_cpu_engine_are_refused_at_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          device: str, setting: str, problem: str) -> None:
    monkeypatch.setenv("VOXLOOP_PROFILE", "gpu")
    monkeypatch.setenv("VOXLOOP_PROFILE_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv(device, "cpu")
    name = setting.split("=")[0].split("__")[-1].lower()  # t3_step, kokoro_torch_cuda_graphs
    assert not any(name in p for p in profile_problems(resolve_settings()))
    monkeypatch.setenv(*setting.split("="))
    problems = profile_problems(resolve_settings())
    assert problem in problems, problems


def test_serve_exits_2_and_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VOXLOOP_PROFILE", "gpu")
    monkeypatch.setenv("VOXLOOP_PROFILE_MODELS_DIR", str(tmp_path))
    started: list[object] = []
    monkeypatch.setattr(GracefulServer, "run", lambda server: started.append(server))
    with pytest.raises(SystemExit) as info:
        cli.main(["serve"])
    assert info.value.code == cli.EXIT_REFUSED == 2 and started == []
    err = capfd.readouterr().err
    assert "VOXLOOP_PROFILE=gpu cannot start here" in err and "parakeet-tdt-0.6b-v2.nemo does not exist" in err
