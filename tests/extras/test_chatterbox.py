"""Chatterbox-Turbo with the real library: a checkpoint directory built from chatterbox-tts's own classes with random
weights, in the layout `ChatterboxTurboTTS.from_local` reads, loaded through the engine's normal local-path loader
and driven over HTTP (the built-in voice, then a custom voice cloned through the library's `prepare_conditionals`).

The checkpoint comes from tests/support/tiny_chatterbox.py: T3 is shrunk to a 2-layer GPT-2 of width 32 by replacing
the config the library looks up by name (`GPT2_medium` in `LLAMA_CONFIGS`; Turbo's `from_local` hardcodes that name).
S3Gen, the voice encoder and the tokenizer's place are the real architectures and files (S3Gen's sizes are fixed in
its constructor: 266 M parameters, 1 GB on disk). Random weights never choose the stop token, so every phrase runs to
the engine's `max_speech_tokens`, which bounds it.
The original Chatterbox (`t3_cfg`) runs at the engine, not over HTTP, on its own tiny checkpoint (last test).
Turbo's T3 decoding across requests (engines/chatterbox_batch.py) is checked against the library's own T3 on the tiny
GPT-2, at the decoder, through the engine (concurrent requests, their batches, a cancellation) and over HTTP.
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
from tests.support import tiny_chatterbox  # noqa: E402
from tests.support.offline import network_calls  # noqa: E402, F401 (a fixture)
from tests.support.server import live_server  # noqa: E402
from tests.support.speech import PIPER_RATE, encode, speak  # noqa: E402
from tests.support.tiny_chatterbox import REFERENCE_TEXT, reference_speech  # noqa: E402
from voxloop.app import create_app  # noqa: E402

pytestmark = pytest.mark.extra_chatterbox

MAX_TOKENS = 30  # speech tokens per phrase (25 a second): random weights always reach it
TOKEN_SECONDS = 0.04
CONSENT_TEXT = "I am the owner of this voice and I consent to it being used to create a synthetic voice."


@pytest.fixture(scope="module")
def tiny_t3_config() -> Iterator[None]:
    """Turbo's T3 config, looked up by name, shrunk for this module (the server runs in this process)."""
    with tiny_chatterbox.t3_config(tiny_chatterbox.tiny_t3()):
        yield


@pytest.fixture(scope="module")
def checkpoint(tiny_t3_config: None, tmp_path_factory: pytest.TempPathFactory, network_calls) -> Iterator[Path]:
    out = tiny_chatterbox.build(tmp_path_factory.mktemp("chatterbox-turbo-tiny"))
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
def app(checkpoint: Path, cloned: list[str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("cache"),
        chatterbox={"device": "cpu", "models": {"chatterbox-tiny": str(checkpoint)}, "max_speech_tokens": MAX_TOKENS},
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def server(app: Any) -> Iterator[str]:
    with live_server(app) as url:
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


def test_concurrent_http_requests_share_t3_batches(app: Any, server: str) -> None:
    """Three speech requests over HTTP (the openai SDK) while the server's engine holds its first T3 call: the two
    that arrive meanwhile decode together in the next call, and each gets its own bounded audio."""
    import threading

    from openai import OpenAI

    from tests.support.batch_gate import gate, until

    assert speech(server, input="Warm.", voice="default").status_code == 200  # loaded
    engine = app.state.services.manager._slots["chatterbox-tiny"].engine
    client = OpenAI(base_url=f"{server}/v1", api_key="unused", timeout=300)
    first = threading.Event()
    calls = gate(engine, "_decode",
                 {1: lambda: (first.set(), until(lambda: engine.batcher.waiting == 2, "two queued"))})
    out: dict[int, bytes] = {}

    def speak_text(i: int) -> None:
        out[i] = client.audio.speech.create(model="chatterbox-tiny", voice="default", input=f"Number {i} speaking.",
                                            response_format="pcm").content

    engine.batcher.batch_sizes.clear()
    try:
        lead = threading.Thread(target=speak_text, args=(0,))
        lead.start()
        assert first.wait(120)
        others = [threading.Thread(target=speak_text, args=(i,)) for i in (1, 2)]
        for t in others:
            t.start()
        for t in [lead, *others]:
            t.join(300)
    finally:
        del engine._decode
    assert calls == [1, 2] == engine.batcher.batch_sizes
    for i in range(3):
        assert 0.2 < len(out[i]) / 2 / 24_000 <= phrase_bound(1), i


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


# --- Turbo's T3 decoded across requests (engines/chatterbox_batch.py) ----------------------------------------------


def _t3_cond(seed: int, prompt_tokens: int) -> Any:
    """A voice's T3 conditioning: a speaker embedding and `prompt_tokens` reference speech tokens, drawn from `seed`."""
    import torch
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    g = torch.Generator().manual_seed(seed)
    return T3Cond(speaker_emb=torch.randn(1, 256, generator=g),
                  cond_prompt_speech_tokens=torch.randint(0, 6561, (1, prompt_tokens), generator=g),
                  emotion_adv=0.5 * torch.ones(1, 1, 1))


@pytest.fixture(scope="module")
def tiny_t3(tiny_t3_config: None) -> Any:
    """Turbo's T3 (the tiny GPT-2 above) with random weights, and four prompts of different lengths: two voices with
    375 reference tokens (Turbo's maximum), one with 150, and texts of 3 to 12 tokens."""
    import torch
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config

    hp = T3Config(text_tokens_dict_size=50276)
    hp.llama_config_name, hp.speech_tokens_dict_size, hp.input_pos_emb = "GPT2_medium", 6563, None
    hp.speech_cond_prompt_len, hp.use_perceiver_resampler, hp.emotion_adv = 375, False, False
    torch.manual_seed(1)
    t3 = T3(hp).eval()
    g = torch.Generator().manual_seed(2)
    texts = [torch.randint(0, 50_000, (1, n), generator=g) for n in (5, 9, 3, 12)]
    conds = [_t3_cond(1, 375), _t3_cond(2, 375), _t3_cond(3, 150), _t3_cond(1, 375)]
    return t3, list(zip(texts, conds))


def _static_pool(t3: Any, t3_step: str) -> Any:
    """None for the library's growing cache; a pool of static buckets (eager: no CUDA here) for `static`."""
    import torch

    from engines.chatterbox_static import StaticT3Pool

    return None if t3_step == "dynamic" else StaticT3Pool(torch, t3, 4, graph=False)


@pytest.mark.parametrize("t3_step", ["dynamic", "static"])
def test_t3_alone_gives_the_librarys_tokens_under_the_same_seed(tiny_t3: Any, t3_step: str) -> None:
    """One request in the batched loop is `T3.inference_turbo`: the same tokens for the same seed (sampled with the
    library's defaults, and greedy), on the growing cache and on a static one (engines/chatterbox_static.py)."""
    import torch

    from engines.chatterbox_batch import Sampling, T3Request, decode_batch

    t3, prompts = tiny_t3
    static = _static_pool(t3, t3_step)
    for sampling in (Sampling(), Sampling(temperature=0.5, top_k=50, top_p=0.8, repetition_penalty=1.5),
                     Sampling(top_k=1)):
        for seed, (text, cond) in enumerate(prompts):
            torch.manual_seed(seed)
            library = t3.inference_turbo(cond, text, temperature=sampling.temperature, top_k=sampling.top_k,
                                         top_p=sampling.top_p, repetition_penalty=sampling.repetition_penalty,
                                         max_gen_len=MAX_TOKENS)
            request = T3Request(text, cond, sampling, MAX_TOKENS, torch.Generator().manual_seed(seed))
            (ours,) = decode_batch(torch, t3, [request], static)
            assert library.shape == (1, MAX_TOKENS + 1)  # random weights never stop: the limit ends it
            assert torch.equal(ours, library), (sampling, seed)


@pytest.mark.parametrize("t3_step", ["dynamic", "static"])
def test_t3_batch_gives_each_row_its_own_tokens_and_rows_leave_at_their_stop(tiny_t3: Any, t3_step: str) -> None:
    """Four prompts of different lengths (left-padded, masked) in one loop, each with its own settings and seed:
    each row's tokens are its tokens alone (on the library's cache). Then with a stop token that one row draws
    early: that row leaves the batch there (the library's stop rule) while the others run to the limit, and still
    each gets its own tokens. On a static cache the batch decodes in its bucket (its rows all computed every step,
    the ended one unread) and gives the same tokens, also after the bucket was used by a smaller batch."""
    import torch

    from engines.chatterbox_batch import Sampling, T3Request, decode_batch

    t3, prompts = tiny_t3
    static = _static_pool(t3, t3_step)
    samplings = [Sampling(top_k=1), Sampling(), Sampling(temperature=0.6, top_p=0.9), Sampling(top_k=1)]

    def requests() -> list[T3Request]:
        return [T3Request(text, cond, samplings[i], MAX_TOKENS, torch.Generator().manual_seed(10 + i))
                for i, (text, cond) in enumerate(prompts)]

    def alone() -> list[Any]:
        return [decode_batch(torch, t3, [request])[0] for request in requests()]

    solo = alone()
    assert len({tuple(t.view(-1).tolist()) for t in solo}) == len(prompts)  # four different answers
    if static is not None:  # a smaller batch first leaves the 4-row bucket's buffers dirty
        decode_batch(torch, t3, requests()[1:], static)
    batched = decode_batch(torch, t3, requests(), static)
    for i, (ours, own) in enumerate(zip(batched, solo)):
        assert torch.equal(ours, own), i
    # A stop token row 2 draws at its 6th token and none of the others ever does.
    others = {token for i, t in enumerate(solo) if i != 2 for token in t.view(-1).tolist()}
    stop = next(token for token in solo[2].view(-1).tolist()[5:] if token not in others)
    widths: list[int] = []
    hook = t3.speech_head.register_forward_hook(lambda module, args, out: widths.append(out.shape[0]))
    original_stop = t3.hp.stop_speech_token
    t3.hp.stop_speech_token = stop
    try:
        solo = alone()
        widths.clear()
        batched = decode_batch(torch, t3, requests(), static)
    finally:
        t3.hp.stop_speech_token = original_stop
        hook.remove()
    assert solo[2].shape[1] < MAX_TOKENS and stop not in solo[2].view(-1).tolist()  # the stop token is removed
    assert [t.shape[1] for i, t in enumerate(solo) if i != 2] == [MAX_TOKENS + 1] * 3
    for i, (ours, own) in enumerate(zip(batched, solo)):
        assert torch.equal(ours, own), i
    if static is None:  # one batched forward per step: four rows until row 2 stops, then three
        assert widths == [4] * (solo[2].shape[1] + 1) + [3] * (MAX_TOKENS - solo[2].shape[1]), widths
    else:  # the prefill, then one step of the whole bucket per token
        assert widths == [4] * (MAX_TOKENS + 1), widths
        assert list(static.buckets) == [(4, 512)], list(static.buckets)


BATCH_REQUESTS = [("Hello there.", "builtin"), ("Good morning to you.", "clone"), ("Yes.", "builtin"),
                  ("See you soon.", "clone")]


@pytest.fixture(scope="module")
def batch_engine(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, list[Any]]]:
    """A greedy Turbo engine that takes four phrases a batch, and two voices whose prompts differ in length: the
    built-in one (an 8 s reference) and one cloned from a 6 s reference (fewer reference speech tokens)."""
    import soundfile as sf

    from engines.base import SynthesisOptions, VoiceReference
    from engines.chatterbox import ChatterboxSynthesizer
    from engines.settings import ChatterboxSettings

    reference = tmp_path_factory.mktemp("clone") / "six-seconds.wav"
    sf.write(reference, reference_speech()[: 6 * PIPER_RATE], PIPER_RATE)
    engine = ChatterboxSynthesizer(str(checkpoint), "turbo", ChatterboxSettings(
        device="cpu", max_speech_tokens=MAX_TOKENS, top_k=1, batch_size=4, parallel_requests=4))
    clone = SynthesisOptions("voice_six", reference=VoiceReference("voice_six", reference))
    options = {"builtin": SynthesisOptions("default"), "clone": clone}
    voices = {name: engine._conditionals(o, 0.0) for name, o in options.items()}
    lengths = {name: conds.t3.cond_prompt_speech_tokens.shape[1] for name, conds in voices.items()}
    assert lengths["builtin"] > lengths["clone"], lengths
    yield engine, [(text, options[voice], voices[voice]) for text, voice in BATCH_REQUESTS]
    engine.close()


def _phrase_tokens(engine: Any) -> dict[tuple[int, ...], Any]:
    """Spy on the engine's batched call: each phrase's tokens by its text tokens (undone with `del engine._decode`,
    with the gate)."""
    seen: dict[tuple[int, ...], Any] = {}
    decode = engine._decode

    def spy(requests: list[Any]) -> list[Any]:
        results = decode(requests)
        for request, result in zip(requests, results):
            seen[tuple(request.text_tokens.view(-1).tolist())] = result
        return results

    engine._decode = spy
    return seen


def _alone(engine: Any, text: str, conds: Any) -> Any:
    from engines.base import CancelToken

    request = engine._phrase_request(text, conds, CancelToken())
    return tuple(request.text_tokens.view(-1).tolist()), engine._decode([request])[0]


def _speak(engine: Any, request: tuple[str, Any, Any], cancel: Any, out: dict, i: int) -> None:
    from engines.base import CancelledByClient

    text, options, _ = request
    try:
        out[i] = [c.samples for c in engine.synthesize(text, options, cancel) if c.text]
    except CancelledByClient:
        out[i] = "cancelled"


def _concurrently(engine: Any, hooks: dict, cancels: list[Any]) -> tuple[dict, dict, list[int]]:
    """Request 0 leads; the other three queue behind its call and decode together in the next."""
    import threading

    from tests.support.batch_gate import gate, until

    _, requests = engine
    engine = engine[0]
    out: dict[int, Any] = {}
    first = threading.Event()
    seen = _phrase_tokens(engine)
    calls = gate(engine, "_decode", {1: lambda: (first.set(), until(lambda: engine.batcher.waiting == 3,
                                                                    "three queued")), **hooks})
    engine.batcher.batch_sizes.clear()
    try:
        lead = threading.Thread(target=_speak, args=(engine, requests[0], cancels[0], out, 0))
        lead.start()
        assert first.wait(60)
        others = [threading.Thread(target=_speak, args=(engine, requests[i], cancels[i], out, i)) for i in (1, 2, 3)]
        for t in others:
            t.start()
        for t in [lead, *others]:
            t.join(300)
    finally:
        del engine._decode
    return out, seen, calls


def test_concurrent_requests_share_t3_batches_and_each_gets_its_own_tokens(batch_engine: tuple[Any, list]) -> None:
    """Four requests (two voices, four texts: four prompt lengths): request 0 alone, then the three that queued
    behind it in one batched loop. Each phrase's tokens are what it decodes alone (greedy), and each is vocoded."""
    import torch

    from engines.base import CancelToken

    engine, requests = batch_engine
    out, seen, calls = _concurrently(batch_engine, {}, [CancelToken() for _ in requests])
    assert engine.batcher.batch_sizes == [1, 3] == calls
    alone = dict(_alone(engine, text, conds) for text, _, conds in requests)
    assert len(alone) == 4 and len({t.shape[1] for t in alone.values()}) == 1  # all ran to the limit...
    assert len({tuple(t.view(-1).tolist()) for t in alone.values()}) == 4  # ...each with its own tokens
    assert seen.keys() == alone.keys()
    for key, tokens in alone.items():
        assert torch.equal(seen[key], tokens), key
    for i in range(4):
        (samples,) = out[i]
        assert 0.2 < len(samples) / engine.sample_rate <= phrase_bound(1) and np.isfinite(samples).all()


def test_cancelling_one_request_in_a_t3_batch_leaves_the_others_whole(batch_engine: tuple[Any, list]) -> None:
    """Request 2 is cancelled five steps into the batch it shares with requests 1 and 3: its row leaves the loop
    (three rows, then two), it gets `CancelledByClient`, and the others finish with their own tokens."""
    import torch

    from engines.base import CancelToken

    engine, requests = batch_engine
    cancels = [CancelToken() for _ in requests]
    widths: list[int] = []
    hooks: list[Any] = []

    def cancel_five_steps_in(module: Any, args: Any, output: Any) -> None:
        widths.append(output.shape[0])
        if len(widths) == 5:
            cancels[2].cancel()

    def arm() -> None:
        hooks.append(engine._model.t3.speech_head.register_forward_hook(cancel_five_steps_in))

    try:
        out, seen, calls = _concurrently(batch_engine, {2: arm}, cancels)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == [1, 3] and out[2] == "cancelled"
    assert widths == [3] * 5 + [2] * (MAX_TOKENS + 1 - 5), widths
    for i in (0, 1, 3):
        text, _, conds = requests[i]
        key, tokens = _alone(engine, text, conds)
        assert torch.equal(seen[key], tokens) and tokens.shape[1] == MAX_TOKENS + 1, i
        (samples,) = out[i]
        assert 0.2 < len(samples) / engine.sample_rate <= phrase_bound(1)


def test_turbo_phrase_alone_is_the_librarys_generate_under_the_same_seed(batch_engine: tuple[Any, list]) -> None:
    """The engine's path for one phrase (its tokenization, a batch of one, its own seeded generator) gives the tokens
    the library's `generate` gives under that seed, with the library's default sampling."""
    import dataclasses

    import torch

    from engines.base import CancelToken
    from engines.chatterbox_batch import Sampling

    engine, requests = batch_engine
    model = engine._model
    text, _, conds = requests[1]
    library: list[Any] = []
    inference = model.t3.inference_turbo  # the engine's capped method
    model.t3.inference_turbo = lambda *a, **kw: library.append(inference(*a, **kw)) or library[-1]
    try:
        model.conds = conds
        torch.manual_seed(1234)
        model.generate(text)
    finally:
        model.t3.inference_turbo = inference
    request = dataclasses.replace(engine._phrase_request(text, conds, CancelToken()), sampling=Sampling(),
                                  generator=torch.Generator().manual_seed(1234))
    (ours,) = engine.batcher.run([request], engine._decode)
    assert library[0].shape == (1, MAX_TOKENS + 1) and torch.equal(ours, library[0])


def test_static_t3_engine_shares_batches_and_gives_the_growing_caches_tokens(
        checkpoint: Path, batch_engine: tuple[Any, list]) -> None:
    """`t3_step: static`: warm-up creates every rows bucket at the phrase limit; four concurrent requests (two
    voices, four prompt lengths) share batches as on the growing cache, and each phrase gets the tokens the
    growing-cache engine gives it alone (greedy)."""
    import torch

    from engines.base import CancelToken
    from engines.chatterbox import ChatterboxSynthesizer
    from engines.settings import ChatterboxSettings

    dynamic, requests = batch_engine
    engine = ChatterboxSynthesizer(str(checkpoint), "turbo", ChatterboxSettings(
        device="cpu", max_speech_tokens=MAX_TOKENS, top_k=1, batch_size=4, parallel_requests=4, t3_step="static"))
    try:
        prepared = sorted(engine._static.buckets)
        assert [rows for rows, _ in prepared] == [1, 2, 4] and len({n for _, n in prepared}) == 1, prepared
        widths: set[int] = set()
        hook = engine._model.t3.speech_head.register_forward_hook(lambda m, a, out: widths.add(out.shape[0]))
        try:
            out, seen, calls = _concurrently((engine, requests), {}, [CancelToken() for _ in requests])
        finally:
            hook.remove()
        assert calls == [1, 3] and engine.batcher.batch_sizes == [1, 3]
        assert widths == {1, 4}, widths  # the batch of three ran in the 4-row bucket
        for text, _, conds in requests:
            key, tokens = _alone(dynamic, text, conds)
            assert torch.equal(seen[key], tokens) and tokens.shape[1] == MAX_TOKENS + 1, text
        for i in range(4):
            (samples,) = out[i]
            assert 0.2 < len(samples) / engine.sample_rate <= phrase_bound(1) and np.isfinite(samples).all()
    finally:
        engine.close()


def test_cuda_graph_t3_without_cuda_is_refused_at_load(checkpoint: Path) -> None:
    from engines.base import EngineUnavailableError
    from engines.chatterbox import ChatterboxSynthesizer
    from engines.settings import ChatterboxSettings

    with pytest.raises(EngineUnavailableError, match="t3_step 'cuda_graph' needs a CUDA device"):
        ChatterboxSynthesizer(str(checkpoint), "turbo", ChatterboxSettings(device="cpu", t3_step="cuda_graph"))


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
