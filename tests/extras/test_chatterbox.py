"""Chatterbox-Turbo with the real library: a checkpoint directory built from chatterbox-tts's own classes with random
weights, in the layout `ChatterboxTurboTTS.from_local` reads, loaded through the engine's normal local-path loader
and driven over HTTP (the built-in voice, then a custom voice cloned through the library's `prepare_conditionals`).

T3 is shrunk to a 2-layer GPT-2 of width 32 by replacing the config the library looks up by name (`GPT2_medium` in
`LLAMA_CONFIGS`; Turbo's `from_local` hardcodes that name). S3Gen, the voice encoder and the tokenizer's place are the
real architectures and files (S3Gen's sizes are fixed in its constructor: 266 M parameters, 1 GB on disk). Random
weights never choose the stop token, so every phrase runs to the engine's `max_speech_tokens`, which bounds it.
The original Chatterbox (`t3_cfg`) runs at the engine, not over HTTP, on its own tiny checkpoint (last test).
This proves the adapter (loading, conditioning, generation, HTTP shapes), not speech quality. Runs in
`.venv-chatterbox` (`make test-chatterbox`); other venvs skip it with the reason below. That venv holds NumPy 1 (the
library's pin); the GPU box has NumPy 2, where cloning used to fail: to run these with NumPy 2, make a venv with
`.venv-chatterbox/bin/python -m venv V`, a `.pth` file in V's site-packages naming .venv-chatterbox's, and
`V/bin/pip install 'numpy>=2'` (all pass there too).
"""

from __future__ import annotations

import io
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip(
    "chatterbox.tts_turbo",
    reason="chatterbox-tts is not installed in this venv; `make test-chatterbox` runs these in .venv-chatterbox",
)

from api.settings import Settings  # noqa: E402
from tests.support.offline import network_calls  # noqa: E402, F401 (a fixture)
from tests.support.server import live_server  # noqa: E402
from tests.support.speech import PIPER_RATE, encode, silence, speak  # noqa: E402
from voxloop.app import create_app  # noqa: E402

pytestmark = pytest.mark.extra_chatterbox

MAX_TOKENS = 30  # speech tokens per phrase (25 a second): random weights always reach it
TOKEN_SECONDS = 0.04
CONSENT_TEXT = "I am the owner of this voice and I consent to it being used to create a synthetic voice."
TAGS = ["[laugh]", "[chuckle]", "[sigh]"]
REFERENCE_TEXT = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Once upon a time a small boat sailed across the quiet lake at dawn.",
]


def reference_speech() -> np.ndarray:
    """About eight seconds of real speech (Turbo wants more than five)."""
    return np.concatenate([speak(REFERENCE_TEXT[0]), silence(0.4), speak(REFERENCE_TEXT[1])])


def _tokenizer(out: Path) -> None:
    """A tiny byte-level BPE (GPT-2's kind) saved where `AutoTokenizer.from_pretrained(ckpt_dir)` finds it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(REFERENCE_TEXT, trainer)
    eos = "<|endoftext|>"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, bos_token=eos, unk_token=eos)
    fast.add_tokens(TAGS)  # Turbo's tokenizer knows its event tags as whole tokens
    fast.save_pretrained(out)


@pytest.fixture(scope="module")
def tiny_t3_config() -> Iterator[None]:
    """Turbo's T3 config, looked up by name, shrunk for this module (the server runs in this process)."""
    from chatterbox.models.t3 import llama_configs

    tiny = dict(llama_configs.GPT2_MEDIUM_CONFIG, n_embd=32, hidden_size=32, n_head=2, n_layer=2, n_ctx=1024,
                n_positions=1024, vocab_size=16)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(llama_configs.LLAMA_CONFIGS, "GPT2_medium", tiny)
        yield


@pytest.fixture(scope="module")
def checkpoint(tiny_t3_config: None, tmp_path_factory: pytest.TempPathFactory, network_calls) -> Iterator[Path]:
    import soundfile as sf
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts_turbo import ChatterboxTurboTTS
    from safetensors.torch import save_file

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("chatterbox-turbo-tiny")
    hp = T3Config(text_tokens_dict_size=50276)  # Turbo's hyperparameters, as its from_local sets them
    hp.llama_config_name, hp.speech_tokens_dict_size, hp.input_pos_emb = "GPT2_medium", 6563, None
    hp.speech_cond_prompt_len, hp.use_perceiver_resampler, hp.emotion_adv = 375, False, False
    for name, module in (("t3_turbo_v1", T3(hp)), ("ve", VoiceEncoder()), ("s3gen_meanflow", S3Gen(meanflow=True))):
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, out / f"{name}.safetensors")
        del module
    _tokenizer(out)
    # The built-in voice: the library's own conditioning of a reference recording, saved as conds.pt.
    reference = out.parent / "builtin-reference.wav"
    sf.write(reference, reference_speech(), PIPER_RATE)
    model = ChatterboxTurboTTS.from_local(out, "cpu")
    # Without the library's loudness normalisation, which breaks on NumPy 2 (the engine's cloning path fixes it).
    model.prepare_conditionals(str(reference), norm_loudness=False)
    model.conds.save(out / "conds.pt")
    del model
    yield out
    shutil.rmtree(out)  # 1 GB; pytest keeps its last three temp dirs


@pytest.fixture(scope="module")
def cloned(monkeypatch_module: pytest.MonkeyPatch) -> list[str]:
    """The reference recordings the library's `prepare_conditionals` was given (the cloning path)."""
    from chatterbox.tts_turbo import ChatterboxTurboTTS

    calls: list[str] = []
    original = ChatterboxTurboTTS.prepare_conditionals

    def spy(self: Any, wav_fpath: str, *args: Any, **kwargs: Any) -> None:
        calls.append(wav_fpath)
        original(self, wav_fpath, *args, **kwargs)

    monkeypatch_module.setattr(ChatterboxTurboTTS, "prepare_conditionals", spy)
    return calls


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def server(checkpoint: Path, cloned: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("cache"),
        chatterbox={"device": "cpu", "models": {"chatterbox-tiny": str(checkpoint)}, "max_speech_tokens": MAX_TOKENS},
    )
    with live_server(create_app(settings)) as url:
        yield url


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0, w.getframerate()


def speech(server: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{server}/v1/audio/speech", json={"model": "chatterbox-tiny", **body}, timeout=300)


def phrase_bound(phrases: int) -> float:
    """Longest audio `phrases` capped phrases can make: MAX_TOKENS (+1 first token, +3 silence) each, plus pauses."""
    return phrases * ((MAX_TOKENS + 4) * TOKEN_SECONDS + 0.5)


def test_listed_as_a_cloning_model(server: str) -> None:
    models = {m["id"]: m for m in httpx.get(f"{server}/v1/models").json()["data"]}
    assert "chatterbox-tiny" in models
    listing = httpx.get(f"{server}/v1/audio/voices").json()
    assert "chatterbox-tiny" in listing["cloning_models"]


def test_builtin_voice_speaks_bounded_decodable_audio(server: str, cloned: list[str]) -> None:
    r = speech(server, input="Hello world. This is a test.", voice="default", response_format="wav")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("audio/wav")
    samples, rate = read_wav(r.content)
    assert rate == 24_000
    assert 0.2 < len(samples) / rate <= phrase_bound(2), len(samples) / rate
    assert np.isfinite(samples).all() and np.abs(samples).max() > 0
    assert cloned == []  # conds.pt, no cloning


def test_pcm_stream(server: str) -> None:
    with httpx.stream("POST", f"{server}/v1/audio/speech", timeout=300, json={
        "model": "chatterbox-tiny", "input": "Short one.", "voice": "default", "response_format": "pcm"}) as r:
        assert r.status_code == 200
        body = b"".join(r.iter_bytes())
    assert len(body) % 2 == 0 and 0.2 < len(body) / 2 / 24_000 <= phrase_bound(1)


def test_custom_voice_is_cloned_by_the_library(server: str, cloned: list[str], network_calls: list) -> None:
    consent = httpx.post(f"{server}/v1/audio/voice_consents", timeout=120,
                         data={"name": "Joe", "language": "en-US"},
                         files={"recording": ("c.wav", encode(speak(CONSENT_TEXT), "wav"))})
    assert consent.status_code == 200, consent.text
    voice = httpx.post(f"{server}/v1/audio/voices", timeout=120,
                       data={"name": "Joe's clone", "consent": consent.json()["id"]},
                       files={"audio_sample": ("s.wav", encode(reference_speech(), "wav"))})
    assert voice.status_code == 200, voice.text
    voice_id = voice.json()["id"]
    for _ in range(2):
        r = speech(server, input="Hi there [laugh].", voice={"id": voice_id}, response_format="wav")
        assert r.status_code == 200, r.text
        samples, rate = read_wav(r.content)
        assert rate == 24_000 and 0.2 < len(samples) / rate <= phrase_bound(1)
    # The stored sample reached the library once; the second request reused its cached conditioning.
    assert len(cloned) == 1 and voice_id in cloned[0] and Path(cloned[0]).is_file()
    # Built, loaded (AutoTokenizer included) and run from local files only.
    assert network_calls == [], f"Chatterbox reached the network: {network_calls}"


def test_cloning_hands_a_float32_loudness_normalised_reference(checkpoint: Path, tmp_path: Path) -> None:
    """chatterbox-tts's Turbo `prepare_conditionals` normalises loudness with a float64 gain: on NumPy 2 the reference
    became float64 and S3Gen failed (`expected scalar type Float but found Double`). The engine keeps it float32, at
    the library's target loudness, on NumPy 1 and 2 alike (this runs in both; see the module docstring)."""
    import pyloudnorm
    import soundfile as sf

    from engines.base import CancelToken, SynthesisOptions, VoiceReference
    from engines.chatterbox import ChatterboxSynthesizer
    from engines.settings import ChatterboxSettings

    reference = tmp_path / "voice.wav"
    sf.write(reference, reference_speech() * 0.3, PIPER_RATE)  # quiet: normalisation has work to do
    engine = ChatterboxSynthesizer(str(checkpoint), "turbo", ChatterboxSettings(device="cpu", max_speech_tokens=MAX_TOKENS))
    seen: list[np.ndarray] = []
    embed_ref = engine._model.s3gen.embed_ref

    def spy(wav: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(np.asarray(wav))
        return embed_ref(wav, *args, **kwargs)

    engine._model.s3gen.embed_ref = spy
    options = SynthesisOptions("voice_x", reference=VoiceReference("voice_x", reference))
    chunks = list(engine.synthesize("Hello there.", options, CancelToken()))
    samples = np.concatenate([c.samples for c in chunks])
    assert 0.2 < len(samples) / engine.sample_rate <= phrase_bound(1) and np.isfinite(samples).all()
    (wav,) = seen
    assert wav.dtype == np.float32, f"numpy {np.__version__}: the reference reached S3Gen as {wav.dtype}"
    assert pyloudnorm.Meter(24_000).integrated_loudness(wav.astype(np.float64)) == pytest.approx(-27.0, abs=0.5)
    engine.close()


def test_original_only_controls_are_refused(server: str) -> None:
    r = speech(server, input="Hello.", voice="default", exaggeration=0.9)
    assert r.status_code == 400, r.text


def test_nano_needs_a_library_that_loads_it(tmp_path: Path) -> None:
    """chatterbox-tts 0.1.7 (the newest release) has no `nano=` in `from_local`: a clear 503 reason, not a TypeError."""
    import inspect

    from chatterbox.tts_turbo import ChatterboxTurboTTS

    from engines.base import EngineUnavailableError
    from engines.chatterbox import CHECKPOINT_FILES, ChatterboxSynthesizer
    from engines.settings import ChatterboxSettings

    if "nano" in inspect.signature(ChatterboxTurboTTS.from_local).parameters:
        pytest.skip("this chatterbox-tts loads Nano")
    for name in CHECKPOINT_FILES["nano"]:
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(EngineUnavailableError, match="cannot load Chatterbox Nano"):
        ChatterboxSynthesizer(str(tmp_path), "nano", ChatterboxSettings(device="cpu"))


# --- the original Chatterbox (t3_cfg), at the engine: exaggeration and cfg_weight reach the real T3 ----------------


@pytest.fixture(scope="module")
def original_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, list[dict]]]:
    """The original's layout (t3_cfg, s3gen, ve, tokenizer.json, conds.pt). Its T3 is a 1-layer Llama: the width stays
    1024 because the perceiver resampler is built at that width. A 2 s reference keeps S3Gen's 10 CFM steps quick."""
    import soundfile as sf
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3, llama_configs
    from chatterbox.models.tokenizers.tokenizer import SPECIAL_TOKENS
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts import ChatterboxTTS
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tiny = dict(llama_configs.LLAMA_520M_CONFIG_DICT, intermediate_size=256, num_hidden_layers=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(llama_configs.LLAMA_CONFIGS, "Llama_520M", tiny)
        calls: list[dict] = []
        inference = T3.inference

        def spy(self: Any, **kwargs: Any) -> Any:
            calls.append({k: kwargs[k] for k in ("max_new_tokens", "cfg_weight")} | {
                "emotion_adv": float(kwargs["t3_cond"].emotion_adv.flatten()[0])})
            return inference(self, **kwargs)

        mp.setattr(T3, "inference", spy)
        torch.manual_seed(0)
        out = tmp_path_factory.mktemp("chatterbox-tiny")
        for name, module in (("t3_cfg", T3()), ("ve", VoiceEncoder()), ("s3gen", S3Gen())):
            save_file({k: v.contiguous() for k, v in module.state_dict().items()}, out / f"{name}.safetensors")
            del module
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.train_from_iterator(REFERENCE_TEXT, trainers.BpeTrainer(vocab_size=200, special_tokens=SPECIAL_TOKENS))
        tok.save(str(out / "tokenizer.json"))  # EnTokenizer's file: words joined by [SPACE], [START]/[STOP] known
        reference = out.parent / "short-reference.wav"
        sf.write(reference, speak("Hello world, this is a test."), PIPER_RATE)
        model = ChatterboxTTS.from_local(out, "cpu")
        model.prepare_conditionals(str(reference))
        model.conds.save(out / "conds.pt")
        del model
        yield out, reference, calls
        shutil.rmtree(out)


def test_original_takes_the_controls_and_a_zero_cfg_weight(original_checkpoint: tuple[Path, Path, list[dict]]) -> None:
    from engines.base import CancelToken, SynthesisOptions, VoiceReference
    from engines.chatterbox import CFG_FLOOR, ChatterboxSynthesizer
    from engines.settings import ChatterboxSettings

    ckpt, reference, calls = original_checkpoint
    engine = ChatterboxSynthesizer(str(ckpt), "original", ChatterboxSettings(device="cpu", max_speech_tokens=12))
    assert engine.capabilities.expressive_controls and not engine.capabilities.tags
    requests = [
        SynthesisOptions("default", emotion="happy"),  # -> exaggeration 0.7, cfg_weight 0.3
        # cfg_weight 0 crashes chatterbox-tts 0.1.7's T3.inference; the engine sends CFG_FLOOR instead
        SynthesisOptions("clone", reference=VoiceReference("clone", reference), exaggeration=1.2, cfg_weight=0.0),
    ]
    for options in requests:
        chunks = list(engine.synthesize("Hello world.", options, CancelToken()))
        seconds = sum(len(c.samples) for c in chunks) / engine.sample_rate
        assert 0.1 < seconds <= (12 + 2) * TOKEN_SECONDS + 0.1, seconds
        assert all(np.isfinite(c.samples).all() for c in chunks)
    assert calls[-2:] == [
        {"max_new_tokens": 12, "cfg_weight": 0.3, "emotion_adv": pytest.approx(0.7)},
        {"max_new_tokens": 12, "cfg_weight": CFG_FLOOR, "emotion_adv": pytest.approx(1.2)},
    ]
    engine.close()
