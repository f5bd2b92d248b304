"""Resemble AI Chatterbox behind `Synthesizer` (extra `voxloop[chatterbox]`, MIT): zero-shot voice cloning.

Three checkpoints share the library, and differ in what they can do (decided from the checkpoint's files, or from
the hub id's name, before anything loads, so requests they cannot serve fail fast):
- Turbo (`t3_turbo_v1.safetensors`) and Nano (`t3_nano_v1.safetensors`): render paralinguistic tags natively
  (`TURBO_TAGS`); they have no exaggeration or CFG (the library ignores both and warns).
- the original Chatterbox (`t3_cfg.safetensors`): `exaggeration` (emotion intensity) and `cfg_weight`; no tags.
Every variant clones a voice from a reference recording longer than 5 s (a custom voice, `SynthesisOptions.reference`)
and speaks the checkpoint's built-in voice (`conds.pt`) otherwise. Models load from a local checkpoint directory
(`from_local`), or from a hub id through `huggingface_hub.snapshot_download` when downloads are allowed.

Text is synthesized phrase by phrase (a short first phrase, then sentences) so the first audio leaves early.

Turbo/Nano serve many requests at once: each phrase's speech tokens are decoded by T3 in one autoregressive loop with
whatever other requests' phrases wait (engines/chatterbox_batch.py, through the cross-request `Batcher` of
engines/batching.py: no timer, whoever arrives while a batch decodes joins the next), then S3Gen vocodes each
phrase on its own, as the library's `generate` does. The original Chatterbox (CFG, a Llama T3) serves one request at
a time through the library's `generate`.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engines.base import (
    AudioChunk,
    CancelledByClient,
    CancelToken,
    EngineError,
    EngineUnavailableError,
    SynthesisOptions,
    SynthesizerCapabilities,
    UnsupportedOptionError,
    Voice,
)
from engines.batching import Batcher
from engines.chatterbox_batch import Sampling, T3Request, decode_batch, prompt_width
from engines.chatterbox_static import StaticT3Pool
from engines.registry import EngineSpec
from engines.settings import ChatterboxSettings, EngineSettings
from engines.speech_text import split_phrases

logger = logging.getLogger(__name__)

Variant = Literal["turbo", "nano", "original"]
INSTALL_HINT = "pip install 'voxloop[chatterbox]'"
CHATTERBOX_RATE = 24_000  # S3Gen's output rate
# The event tags Turbo's tokenizer knows (its authors' demo offers exactly these), spelt as api/speech/paralinguistics.py does.
TURBO_TAGS = frozenset(
    {"laugh", "chuckle", "sigh", "gasp", "cough", "clear throat", "sniff", "groan", "shush"}
)
# Files each variant's `from_local` reads; the probe checks them without loading anything.
CHECKPOINT_FILES: dict[Variant, tuple[str, ...]] = {
    "turbo": ("ve.safetensors", "t3_turbo_v1.safetensors", "s3gen_meanflow.safetensors"),
    "nano": ("ve.safetensors", "t3_nano_v1.safetensors", "s3gen_meanflow.safetensors"),
    "original": ("ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json"),
}
CFG_FLOOR = 1e-6  # the original's smallest cfg_weight (see `_generate`)
HUB_PATTERNS = ["*.safetensors", "*.json", "*.txt", "*.pt", "*.model"]
# Emotion -> (exaggeration, cfg_weight) on the original Chatterbox. Its authors' advice: the defaults (0.5, 0.5)
# suit most text; for dramatic speech raise exaggeration to ~0.7 and lower cfg_weight to ~0.3 (more exaggeration
# speeds speech up, and less guidance slows it back down). Calm and sad speech wants less of both excitement and
# speed. Neutral (or no emotion) uses the settings' defaults.
EMOTION_CONTROLS: dict[str, tuple[float, float]] = {
    "happy": (0.7, 0.3),
    "surprised": (0.8, 0.3),
    "angry": (0.8, 0.3),
    "fearful": (0.7, 0.35),
    "disgusted": (0.6, 0.4),
    "sad": (0.4, 0.5),
    "calm": (0.3, 0.5),
}


def detect_variant(model_id: str, ref: str) -> Variant:
    """Which Chatterbox a checkpoint is: by its T3 file when it is a local directory, else by the names."""
    path = Path(ref).expanduser()
    if path.is_dir():
        for variant in ("nano", "turbo", "original"):
            if (path / CHECKPOINT_FILES[variant][1]).exists():
                return variant
    name = f"{model_id} {ref}".lower()
    return "nano" if "nano" in name else "turbo" if "turbo" in name else "original"


def chatterbox_capabilities(variant: Variant) -> SynthesizerCapabilities:
    tags = frozenset() if variant == "original" else TURBO_TAGS
    voice = Voice(
        id="default",
        name="Chatterbox built-in voice",
        language="en-us",
        description="The checkpoint's own voice (conds.pt); custom voices are cloned from their samples.",
        tags=tags,
        cloning=True,
    )
    # No native speed control: the speech service stretches the audio for any speed but 1.
    return SynthesizerCapabilities(
        voices=(voice,), sample_rate=CHATTERBOX_RATE, min_speed=1.0, max_speed=1.0, tags=tags, cloning=True,
        expressive_controls=variant == "original",
    )


def expressive_controls(options: SynthesisOptions, settings: ChatterboxSettings) -> tuple[float, float]:
    """(exaggeration, cfg_weight) for one request: explicit values win, then the emotion's, then the defaults."""
    base = EMOTION_CONTROLS.get(options.emotion or "neutral", (settings.exaggeration, settings.cfg_weight))
    exaggeration = options.exaggeration if options.exaggeration is not None else base[0]
    cfg_weight = options.cfg_weight if options.cfg_weight is not None else base[1]
    return exaggeration, cfg_weight


def is_local(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or Path(ref).expanduser().exists()


def import_chatterbox(variant: Variant) -> tuple[Any, Any]:
    """torch and the variant's model class, or an install hint. Imported lazily: the library pulls in torch."""
    try:
        import torch

        if variant == "original":
            from chatterbox.tts import ChatterboxTTS as model_class
        else:
            from chatterbox.tts_turbo import ChatterboxTurboTTS as model_class
    except ImportError as exc:
        raise EngineUnavailableError(f"Chatterbox is not installed ({exc.name}): {INSTALL_HINT}") from exc
    return torch, model_class


def resolve_checkpoint(ref: str, settings: ChatterboxSettings) -> Path:
    """The local checkpoint directory: `ref` itself, or the hub snapshot (only when downloads are allowed)."""
    if is_local(ref):
        path = Path(ref).expanduser()
        if not path.is_dir():
            raise EngineUnavailableError(f"Chatterbox checkpoint directory not found: {path}")
        return path
    if not settings.allow_downloads:
        raise EngineUnavailableError(
            f"'{ref}' is a hub id and downloads are off: set VOXLOOP_CHATTERBOX__ALLOW_DOWNLOADS=true, or give a "
            "local checkpoint directory."
        )
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=ref, allow_patterns=HUB_PATTERNS))
    except Exception as exc:
        raise EngineUnavailableError(f"Chatterbox checkpoint '{ref}' could not be downloaded: {exc}") from exc


def cap_speech_tokens(model: Any, variant: Variant, cap: int) -> None:
    """Bound the speech tokens of one `generate`. The library fixes them (1000, 40 s of audio) and passes no cap
    through `generate`, so the cap goes on T3's own method (`max_gen_len` of Turbo/Nano's `inference_turbo`,
    `max_new_tokens` of the original's `inference`), as an instance attribute shadowing the method."""
    t3 = model.t3
    name, arg = ("inference", "max_new_tokens") if variant == "original" else ("inference_turbo", "max_gen_len")
    inner = getattr(t3, name)

    def capped(*args: Any, **kwargs: Any) -> Any:
        kwargs[arg] = min(kwargs.get(arg) or cap, cap)
        return inner(*args, **kwargs)

    setattr(t3, name, capped)


def keep_reference_float32(model: Any) -> None:
    """Keep the cloning reference float32 through Turbo/Nano's loudness normalisation, on NumPy 1 and 2.

    chatterbox-tts's `norm_loudness` (called by `prepare_conditionals` by default) scales the float32 reference by a
    float64 NumPy gain. NumPy 1 kept the array float32; NumPy 2 (NEP 50) promotes it to float64, which then meets
    float32 mel filters in S3Gen's tokenizer: `expected scalar type Double but found Float`, so no custom voice could
    be cloned. The library's own normalisation (pyloudnorm to -27 LUFS) still runs; its result is cast back to float32,
    as an instance attribute shadowing the method. The original Chatterbox has no such step."""
    inner = getattr(model, "norm_loudness", None)
    if inner is None:
        return

    def norm_loudness(wav: Any, sr: int, *args: Any, **kwargs: Any) -> np.ndarray:
        return np.asarray(inner(wav, sr, *args, **kwargs), dtype=np.float32)

    model.norm_loudness = norm_loudness


class ChatterboxSynthesizer:
    """One loaded Chatterbox model.

    Turbo/Nano: many workers; their phrases' speech tokens meet in `self.batcher`, which decodes one batch at a time
    on T3 (`self.batcher.batch_sizes` records them); the voice of each phrase travels with it (its `Conditionals`),
    never through the model's `conds`. S3Gen, cloning and the original's `generate` run one at a time (`_lock`:
    the library's `prepare_conditionals` and `generate` go through `model.conds`)."""

    def __init__(self, ref: str, variant: Variant, settings: ChatterboxSettings, *, first_words: int = 4):
        self._torch, model_class = import_chatterbox(variant)
        if variant == "nano" and "nano" not in inspect.signature(model_class.from_local).parameters:
            raise EngineUnavailableError(
                "This chatterbox-tts cannot load Chatterbox Nano (its ChatterboxTurboTTS.from_local takes no `nano`; "
                "0.1.7, the newest release, has none): install a newer chatterbox-tts, or serve Turbo."
            )
        if settings.t3_step == "cuda_graph" and not (settings.device.startswith("cuda")
                                                      and self._torch.cuda.is_available()):
            raise EngineUnavailableError(
                f"Chatterbox t3_step 'cuda_graph' needs a CUDA device (device is '{settings.device}', CUDA "
                f"{'available' if self._torch.cuda.is_available() else 'not available'}): use 'static' or 'dynamic'."
            )
        checkpoint = resolve_checkpoint(ref, settings)
        try:
            if variant == "nano":
                self._model = model_class.from_local(checkpoint, settings.device, nano=True)
            else:
                self._model = model_class.from_local(checkpoint, settings.device)
        except Exception as exc:
            raise EngineUnavailableError(f"Chatterbox checkpoint '{ref}' could not be loaded: {exc}") from exc
        cap_speech_tokens(self._model, variant, settings.max_speech_tokens)
        keep_reference_float32(self._model)
        self.variant = variant
        self.capabilities = chatterbox_capabilities(variant)
        self.sample_rate = int(getattr(self._model, "sr", CHATTERBOX_RATE))
        self._settings = settings
        self._first_words = first_words
        self._builtin = self._model.conds  # from the checkpoint's conds.pt; None when it has none
        self._cloned: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()  # S3Gen, cloning and the original's generate: one at a time
        self._tokenizer_lock = threading.Lock()  # a fast tokenizer is not safe to call from two threads
        self._sampling = Sampling(settings.temperature, settings.top_k, settings.top_p, settings.repetition_penalty)
        self.batcher: Batcher[T3Request, Any] = Batcher(settings.batch_size)
        self._static = self._static_pool(settings)
        if settings.warmup and variant != "original" and self._builtin is not None:
            self.warm_up()

    def _static_pool(self, settings: ChatterboxSettings) -> StaticT3Pool | None:
        """T3's fixed-shape buckets when `t3_step` asks for them."""
        if settings.t3_step == "dynamic" or self.variant == "original":
            return None
        return StaticT3Pool(self._torch, self._model.t3, settings.batch_size, graph=settings.t3_step == "cuda_graph")

    def voices(self) -> list[Voice]:
        return list(self.capabilities.voices)

    def warm_up(self) -> None:
        """Two phrases of different lengths decoded together (so padding is exercised) with the built-in voice, and
        one vocoded: the first request then finds the kernels loaded. With `t3_step` static or cuda_graph, every
        rows bucket is created (and captured) first at a phrase's full token limit. Not counted in
        `batcher.batch_sizes`."""
        requests = [self._phrase_request(text, self._builtin, CancelToken(), max_tokens=8)
                    for text in ("Hello there, how are you today?", "Hi.")]
        if self._static is not None:  # every rows bucket at a phrase's full token limit, captured now
            width = prompt_width(self._torch, self._model.t3, requests[0])
            try:
                self._static.prepare(width + self._settings.max_speech_tokens + 1)
            except Exception as exc:
                raise EngineUnavailableError(f"Chatterbox T3's {self._settings.t3_step} buckets could not be "
                                             f"prepared ({exc}): set t3_step to 'dynamic'.") from exc
        tokens = self._decode(requests)[0]
        self._vocode(tokens, self._builtin)

    def _conditionals(self, options: SynthesisOptions, exaggeration: float) -> Any:
        """The voice to speak in: a custom voice's conditioning (computed once, then cached) or the built-in one."""
        ref = options.reference
        if ref is None:
            if self._builtin is None:
                raise UnsupportedOptionError(
                    "This Chatterbox checkpoint has no built-in voice (no conds.pt): use a custom voice, "
                    'voice: {"id": "voice_..."}.',
                    param="voice",
                )
            return self._builtin
        key = (ref.voice_id, ref.path.stat().st_mtime_ns)
        with self._lock:
            if key in self._cloned:
                self._cloned.move_to_end(key)
                return self._cloned[key]
            self._model.prepare_conditionals(str(ref.path), exaggeration=exaggeration)
            self._cloned[key] = conds = self._model.conds
            while len(self._cloned) > self._settings.cached_voices:
                self._cloned.popitem(last=False)
            return conds

    def _generate(self, text: str, conds: Any, exaggeration: float, cfg_weight: float) -> np.ndarray:
        """The original Chatterbox: the library's `generate`, one phrase at a time."""
        # chatterbox-tts 0.1.7's T3.inference always stacks a conditional and an unconditional row, but generate
        # doubles the text only when cfg_weight > 0: 0 crashes. CFG_FLOOR gives the same logits (cond + w*diff).
        cfg_weight = max(cfg_weight, CFG_FLOOR)
        with self._lock, self._torch.inference_mode():
            self._model.conds = conds
            wav = self._model.generate(text, exaggeration=exaggeration, cfg_weight=cfg_weight,
                                       temperature=self._settings.temperature)
        return np.asarray(wav.squeeze(0).detach().cpu().numpy(), dtype=np.float32).reshape(-1)

    def _phrase_request(self, text: str, conds: Any, cancel: CancelToken, *, max_tokens: int | None = None
                        ) -> T3Request:
        """One phrase for T3, tokenized as Turbo's `generate` does (its punctuation clean-up, no padding), with its
        own random generator (seeded from the settings' `seed`, else fresh)."""
        from chatterbox.tts_turbo import punc_norm

        with self._tokenizer_lock:
            ids = self._model.tokenizer(punc_norm(text), return_tensors="pt", padding=True, truncation=True).input_ids
        device = self._model.t3.device
        generator = self._torch.Generator(device=device)
        if self._settings.seed is None:
            generator.seed()
        else:
            generator.manual_seed(self._settings.seed)
        return T3Request(ids.to(device), conds.t3, self._sampling,
                         self._settings.max_speech_tokens if max_tokens is None else max_tokens, generator, cancel)

    def _decode(self, requests: list[T3Request]) -> list[Any]:
        """The batched call: each phrase's speech tokens (or its cancellation), in order."""
        try:
            return decode_batch(self._torch, self._model.t3, requests, self._static)
        except Exception as exc:
            raise EngineError(f"Chatterbox T3 decoding failed: {exc}") from exc

    def speech_tokens(self, text: str, conds: Any, cancel: CancelToken) -> Any:
        """One phrase's speech tokens, decoded with whatever other requests' phrases wait (a waiting request that is
        cancelled leaves the queue; one cancelled while its batch decodes leaves the batch, and the others go on)."""
        (tokens,) = self.batcher.run([self._phrase_request(text, conds, cancel)], self._decode, cancel=cancel)
        if isinstance(tokens, CancelledByClient):
            raise tokens
        return tokens

    def _vocode(self, tokens: Any, conds: Any) -> np.ndarray:
        """S3Gen's audio for one phrase's speech tokens, as Turbo's `generate` makes it: tokens outside the speech
        vocabulary dropped, three silence tokens appended, two meanflow steps, the library's watermark."""
        from chatterbox.models.s3gen.const import S3GEN_SIL

        torch, model = self._torch, self._model
        speech = tokens[tokens < model.t3.hp.start_speech_token]  # the library's `< 6561`
        speech = torch.cat([speech, torch.tensor([S3GEN_SIL] * 3, dtype=torch.long, device=speech.device)])
        with self._lock, torch.inference_mode():
            wav, _ = model.s3gen.inference(speech_tokens=speech, ref_dict=conds.gen, n_cfm_timesteps=2)
            wav = model.watermarker.apply_watermark(wav.squeeze(0).detach().cpu().numpy(), sample_rate=model.sr)
        return np.asarray(wav, dtype=np.float32).reshape(-1)

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        exaggeration, cfg_weight = expressive_controls(options, self._settings)
        conds = self._conditionals(options, exaggeration)
        for phrase in split_phrases(text, self._first_words):
            cancel.raise_if_cancelled()
            if self.variant == "original":
                samples = self._generate(phrase.text, conds, exaggeration, cfg_weight)
            else:  # Turbo/Nano have no exaggeration or CFG
                samples = self._vocode(self.speech_tokens(phrase.text, conds, cancel), conds)
            if len(samples):
                yield AudioChunk(np.clip(samples, -1.0, 1.0), self.sample_rate, text=phrase.text)
            if phrase.pause_after:
                yield AudioChunk(phrase.pause(self.sample_rate), self.sample_rate)

    def close(self) -> None:
        self._cloned.clear()
        del self._model


def _probe(ref: str, variant: Variant) -> Any:
    def probe() -> str | None:
        if importlib.util.find_spec("chatterbox") is None:
            return f"chatterbox-tts is not installed: {INSTALL_HINT}"
        if not is_local(ref):
            return None  # a hub id: checked when it loads
        path = Path(ref).expanduser()
        missing = [f for f in CHECKPOINT_FILES[variant] if not (path / f).is_file()]
        return f"Chatterbox checkpoint {path} lacks {', '.join(missing)}" if missing else None

    return probe


def chatterbox_specs(settings: EngineSettings) -> list[EngineSpec]:
    """The Chatterbox models configured in settings (none by default: weights come from the hub, not PyPI)."""
    cs = settings.chatterbox
    first_words = settings.tts.first_phrase_words
    specs = []
    for model_id, ref in cs.models.items():
        variant = detect_variant(model_id, ref)
        specs.append(
            EngineSpec(
                model_id,
                "speech",
                lambda ref=ref, variant=variant: ChatterboxSynthesizer(ref, variant, cs, first_words=first_words),
                owned_by="resemble-ai (MIT), local" if is_local(ref) else "resemble-ai (MIT), hub",
                description=f"Chatterbox {variant} from {ref}: zero-shot voice cloning"
                + (", paralinguistic tags" if variant != "original" else ", exaggeration and cfg_weight")
                + ". Needs voxloop[chatterbox].",
                capabilities=chatterbox_capabilities(variant),
                probe=_probe(ref, variant),
                # Turbo/Nano: concurrent requests share T3's batches (engines/chatterbox_batch.py)
                workers=1 if variant == "original" else cs.parallel_requests,
            )
        )
    return specs
