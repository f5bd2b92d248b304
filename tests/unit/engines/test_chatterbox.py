"""The Chatterbox adapter without the library: variants, capabilities, the option mapping, registration, refusals.

chatterbox-tts pins torch==2.6.0 and numpy<2, so it is not installed in .venv. The last tests drive the adapter against
`FakeChatterbox`, a stand-in written from the library's source (`from_local`, `prepare_conditionals`, `generate`,
`conds`, `sr`, T3's inference methods): they check what voxloop passes and caches. The real library runs on a tiny
random-weight Turbo in tests/extras/test_chatterbox.py (`make test-chatterbox`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from api.settings import Settings
from api.speech.paralinguistics import TAG_PROSODY
from engines import chatterbox as cb
from engines.base import (
    AudioBuffer,
    CancelToken,
    EngineUnavailableError,
    SynthesisOptions,
    UnsupportedOptionError,
    VoiceReference,
)
from engines.settings import ChatterboxSettings
from voxloop.app import create_app


def checkpoint(tmp_path: Path, variant: cb.Variant) -> Path:
    folder = tmp_path / variant
    folder.mkdir()
    for name in cb.CHECKPOINT_FILES[variant]:
        (folder / name).write_bytes(b"")
    return folder


@pytest.mark.parametrize("variant", ["turbo", "nano", "original"])
def test_variant_from_the_checkpoint_files(tmp_path: Path, variant: cb.Variant) -> None:
    assert cb.detect_variant("my-model", str(checkpoint(tmp_path, variant))) == variant


def test_variant_from_hub_names() -> None:
    assert cb.detect_variant("x", "ResembleAI/chatterbox-turbo") == "turbo"
    assert cb.detect_variant("chatterbox-nano", "someone/checkpoint") == "nano"
    assert cb.detect_variant("chatterbox", "ResembleAI/chatterbox") == "original"


def test_capabilities() -> None:
    turbo, original = cb.chatterbox_capabilities("turbo"), cb.chatterbox_capabilities("original")
    assert turbo.tags == cb.TURBO_TAGS and cb.TURBO_TAGS <= TAG_PROSODY.keys()  # all in the documented vocabulary
    assert {"laugh", "chuckle", "cough", "clear throat", "shush"} <= turbo.tags
    assert turbo.cloning and original.cloning
    assert not turbo.expressive_controls and original.expressive_controls and original.tags == frozenset()
    assert turbo.sample_rate == 24_000 and (turbo.min_speed, turbo.max_speed) == (1.0, 1.0)


def test_expressive_controls_mapping() -> None:
    s = ChatterboxSettings(exaggeration=0.45, cfg_weight=0.55)
    assert cb.expressive_controls(SynthesisOptions("default"), s) == (0.45, 0.55)
    assert cb.expressive_controls(SynthesisOptions("default", emotion="neutral"), s) == (0.45, 0.55)
    assert cb.expressive_controls(SynthesisOptions("default", emotion="happy"), s) == (0.7, 0.3)
    assert cb.expressive_controls(SynthesisOptions("default", emotion="calm"), s) == (0.3, 0.5)
    explicit = SynthesisOptions("default", emotion="happy", exaggeration=1.2)
    assert cb.expressive_controls(explicit, s) == (1.2, 0.3)  # an explicit value wins, the other follows the emotion


def test_registered_only_when_configured(tmp_path: Path) -> None:
    assert cb.chatterbox_specs(Settings(cache_dir=tmp_path)) == []
    ckpt = checkpoint(tmp_path, "turbo")
    (spec,) = cb.chatterbox_specs(Settings(cache_dir=tmp_path, chatterbox={"models": {"chatterbox-turbo": str(ckpt)}}))
    assert spec.model_id == "chatterbox-turbo" and spec.capability == "speech"
    assert spec.capabilities.cloning and spec.capabilities.tags == cb.TURBO_TAGS
    assert "MIT" in spec.owned_by and "voxloop[chatterbox]" in spec.description


def test_probe_reports_the_missing_library_then_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = checkpoint(tmp_path, "original")
    probe = cb._probe(str(ckpt), "original")
    assert "pip install 'voxloop[chatterbox]'" in (probe() or "")  # not installed here
    monkeypatch.setattr(cb.importlib.util, "find_spec", lambda name: object())
    assert probe() is None
    (ckpt / "t3_cfg.safetensors").unlink()
    assert "t3_cfg.safetensors" in (probe() or "")


def test_loading_without_the_library_is_engine_unavailable(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailableError, match=r"pip install 'voxloop\[chatterbox\]'"):
        cb.ChatterboxSynthesizer(str(checkpoint(tmp_path, "turbo")), "turbo", ChatterboxSettings())


def test_checkpoint_resolution_refuses_downloads_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailableError, match="ALLOW_DOWNLOADS"):
        cb.resolve_checkpoint("ResembleAI/chatterbox-turbo", ChatterboxSettings())
    with pytest.raises(EngineUnavailableError, match="not found"):
        cb.resolve_checkpoint(str(tmp_path / "missing"), ChatterboxSettings())
    assert cb.resolve_checkpoint(str(tmp_path), ChatterboxSettings()) == tmp_path


async def test_the_app_lists_it_as_cloning_and_a_request_gets_the_install_hint(tmp_path: Path) -> None:
    ckpt = checkpoint(tmp_path, "turbo")
    settings = Settings(cache_dir=tmp_path, chatterbox={"models": {"chatterbox-turbo": str(ckpt)}})
    app = create_app(settings)
    voices = app.state.services.voices
    tone = AudioBuffer((0.3 * np.sin(2 * np.pi * 200 * np.arange(8 * 24_000) / 24_000)).astype(np.float32), 24_000)
    consent = voices.consents.create({"name": "A", "language": "en"}, tone)
    voice = voices.voices.create({"name": "A", "consent": consent.id}, tone)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://voxloop") as client:
        listing = (await client.get("/v1/audio/voices")).json()
        assert listing["cloning_models"] == ["chatterbox-turbo"]
        assert [v["id"] for v in listing["custom_voices"]] == [voice.id]
        refused = await client.post(
            "/v1/audio/speech", json={"model": "tts-1", "input": "Hi.", "voice": {"id": voice.id}}
        )
        assert refused.status_code == 400 and "chatterbox-turbo" in refused.json()["error"]["message"]
        # Past validation, the model itself cannot load here: a 503 with the install hint, not a 500.
        response = await client.post("/v1/audio/speech", json={
            "model": "chatterbox-turbo", "input": "Hi [chuckle] there.", "voice": {"id": voice.id}})
        assert response.status_code == 503
        assert "voxloop[chatterbox]" in response.json()["error"]["message"]


# --- the adapter against a stand-in library ----------------------------------------------------------------


class FakeWav:
    def __init__(self, samples: np.ndarray):
        self._samples = samples

    def squeeze(self, _: int) -> FakeWav:
        return self

    def detach(self) -> FakeWav:
        return self

    def cpu(self) -> FakeWav:
        return self

    def numpy(self) -> np.ndarray:
        return self._samples


class FakeT3:
    """T3's two inference methods, as the library's `generate` calls them; records the cap each call got."""

    def __init__(self) -> None:
        self.caps: list[int] = []

    def inference_turbo(self, t3_cond: Any, text_tokens: Any, max_gen_len: int = 1000, **kw: Any) -> None:
        self.caps.append(max_gen_len)

    def inference(self, *, max_new_tokens: int | None = None, **kw: Any) -> None:
        self.caps.append(max_new_tokens)


class FakeChatterbox:
    loaded: list[tuple[Path, str, bool]] = []

    def __init__(self, builtin: Any, original: bool):
        self.sr = 24_000
        self.conds = builtin
        self.t3 = FakeT3()
        self._original = original
        self.prepared: list[tuple[str, float]] = []
        self.generated: list[tuple[str, Any, dict[str, Any]]] = []

    @classmethod
    def from_local(cls, ckpt_dir: Path, device: str, nano: bool = False) -> FakeChatterbox:
        cls.loaded.append((Path(ckpt_dir), device, nano))
        builtin = "builtin" if (Path(ckpt_dir) / "conds.pt").exists() else None
        return cls(builtin, original=(Path(ckpt_dir) / "t3_cfg.safetensors").exists())

    def prepare_conditionals(self, wav_fpath: str, exaggeration: float = 0.5) -> None:
        self.prepared.append((wav_fpath, exaggeration))
        self.conds = ("cloned", wav_fpath)

    def generate(self, text: str, **kw: Any) -> FakeWav:
        self.generated.append((text, self.conds, kw))
        if self._original:  # the library's generate fixes max_new_tokens=1000; Turbo's leaves max_gen_len at 1000
            self.t3.inference(t3_cond=self.conds, text_tokens=text, max_new_tokens=1000)
        else:
            self.t3.inference_turbo(self.conds, text)
        return FakeWav(np.full(2400, 0.1, np.float32))


@pytest.fixture
def fake_library(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, int]]:
    """The library stood in for: `FakeChatterbox`, and for Turbo/Nano the three steps that need chatterbox-tts and
    torch (tokenizing a phrase, T3's batched decoding, S3Gen), which record what they get. Returns the decoded
    phrases: (text, conditioning, token limit)."""
    fake_torch = type("torch", (), {"inference_mode": staticmethod(contextlib.nullcontext)})
    monkeypatch.setattr(cb, "import_chatterbox", lambda variant: (fake_torch, FakeChatterbox))
    decoded: list[tuple[str, Any, int]] = []

    def phrase_request(self: Any, text: str, conds: Any, cancel: CancelToken, *, max_tokens: int | None = None) -> Any:
        return cb.T3Request(text, conds, max_tokens=self._settings.max_speech_tokens if max_tokens is None
                            else max_tokens, cancel=cancel)

    def decode_batch(torch: Any, t3: Any, requests: list[Any], static: Any = None) -> list[Any]:
        decoded.extend((r.text_tokens, r.cond, r.max_tokens) for r in requests)
        return [("tokens", r.text_tokens) for r in requests]

    monkeypatch.setattr(cb.ChatterboxSynthesizer, "_phrase_request", phrase_request)
    monkeypatch.setattr(cb, "decode_batch", decode_batch)
    monkeypatch.setattr(cb.ChatterboxSynthesizer, "_vocode", lambda self, tokens, conds: np.full(2400, 0.1, np.float32))
    return decoded


def test_turbo_clones_once_per_voice_and_decodes_through_the_batcher(
        tmp_path: Path, fake_library: list[tuple[str, Any, int]]) -> None:
    ckpt = checkpoint(tmp_path, "turbo")
    engine = cb.ChatterboxSynthesizer(str(ckpt), "turbo", ChatterboxSettings(device="cpu"))
    sample = tmp_path / "voice.wav"
    sample.write_bytes(b"RIFF")
    ref = VoiceReference("voice_a", sample)
    options = SynthesisOptions("voice_a", reference=ref, emotion="happy")
    for _ in range(2):
        chunks = list(engine.synthesize("Hello there [chuckle]. How are you?", options, CancelToken()))
        assert sum(len(c.samples) for c in chunks if c.text) == 2 * 2400
        assert all(c.sample_rate == 24_000 for c in chunks)
    model = engine._model
    assert model.prepared == [(str(sample), 0.7)]  # conditioning computed once, then cached
    assert model.generated == []  # T3 is driven by the engine's batched decoder, not the library's generate
    assert [text for text, _, _ in fake_library] == ["Hello there [chuckle].", "How are you?"] * 2
    assert all(conds == ("cloned", str(sample)) for _, conds, _ in fake_library)
    assert engine.batcher.batch_sizes == [1, 1, 1, 1]  # one request: each phrase alone, through the batcher


def test_original_gets_the_controls_and_the_builtin_voice(tmp_path: Path, fake_library: None) -> None:
    ckpt = checkpoint(tmp_path, "original")
    (ckpt / "conds.pt").write_bytes(b"")
    engine = cb.ChatterboxSynthesizer(str(ckpt), "original", ChatterboxSettings(device="cpu", temperature=0.6))
    list(engine.synthesize("Oh no.", SynthesisOptions("default", emotion="sad", cfg_weight=0.2), CancelToken()))
    (_, conds, kw) = engine._model.generated[0]
    assert conds == "builtin" and kw == {"exaggeration": 0.4, "cfg_weight": 0.2, "temperature": 0.6}


def test_no_builtin_voice_and_no_custom_voice_is_a_clear_400(tmp_path: Path, fake_library: None) -> None:
    engine = cb.ChatterboxSynthesizer(str(checkpoint(tmp_path, "nano")), "nano", ChatterboxSettings(device="cpu"))
    assert FakeChatterbox.loaded[-1][2] is True  # Nano loads through Turbo's class with nano=True
    with pytest.raises(UnsupportedOptionError, match="custom voice") as err:
        list(engine.synthesize("Hi.", SynthesisOptions("default"), CancelToken()))
    assert err.value.param == "voice"


@pytest.mark.parametrize("variant", ["turbo", "original"])
def test_speech_tokens_are_capped(tmp_path: Path, fake_library: list[tuple[str, Any, int]], variant: cb.Variant
                                  ) -> None:
    ckpt = checkpoint(tmp_path, variant)
    (ckpt / "conds.pt").write_bytes(b"")
    engine = cb.ChatterboxSynthesizer(str(ckpt), variant,
                                      ChatterboxSettings(device="cpu", max_speech_tokens=75, warmup=False))
    list(engine.synthesize("One. Two.", SynthesisOptions("default"), CancelToken()))
    if variant == "original":
        assert engine._model.t3.caps == [75, 75]  # through the library's generate
    else:
        assert [cap for _, _, cap in fake_library] == [75, 75]  # the engine's batched decoder


def test_warm_up_decodes_two_phrases_together_and_is_not_counted(
        tmp_path: Path, fake_library: list[tuple[str, Any, int]]) -> None:
    ckpt = checkpoint(tmp_path, "turbo")
    (ckpt / "conds.pt").write_bytes(b"")
    engine = cb.ChatterboxSynthesizer(str(ckpt), "turbo", ChatterboxSettings(device="cpu"))
    assert [(conds, cap) for _, conds, cap in fake_library] == [("builtin", 8), ("builtin", 8)]
    assert len({text for text, _, _ in fake_library}) == 2 and engine.batcher.batch_sizes == []


def test_turbo_serves_requests_in_parallel_and_the_original_one_at_a_time(tmp_path: Path) -> None:
    specs = cb.chatterbox_specs(Settings(cache_dir=tmp_path, chatterbox={"parallel_requests": 6, "models": {
        "t": str(checkpoint(tmp_path, "turbo")), "o": str(checkpoint(tmp_path, "original"))}}))
    assert {spec.model_id: spec.workers for spec in specs} == {"t": 6, "o": 1}
