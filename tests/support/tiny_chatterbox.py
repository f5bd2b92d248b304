"""A Chatterbox-Turbo checkpoint built from chatterbox-tts's own classes with random weights, in the layout
`ChatterboxTurboTTS.from_local` reads (`t3_turbo_v1`, `ve`, `s3gen_meanflow` safetensors, a GPT-2-kind tokenizer,
`conds.pt`), for tests/extras/test_chatterbox.py and `bench/gpu.py chatterbox`.

Turbo's `from_local` builds T3 from the config named `GPT2_medium` in `LLAMA_CONFIGS` (24 layers of 1024, 350 M
parameters): `tiny_t3()` is that config shrunk to a 2-layer GPT-2 of width 32, put in its place with `t3_config` while
the checkpoint is built and loaded. S3Gen, the voice encoder and the tokenizer's place are the real architectures and
files (S3Gen's sizes are fixed in its constructor: 266 M parameters, 1 GB on disk). Random weights never choose the
stop token, so every phrase runs to its token limit. Needs the chatterbox extra (`.venv-chatterbox`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tests.support.speech import PIPER_RATE, silence, speak

TAGS = ["[laugh]", "[chuckle]", "[sigh]"]
REFERENCE_TEXT = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Once upon a time a small boat sailed across the quiet lake at dawn.",
]


def reference_speech() -> np.ndarray:
    """About eight seconds of real speech (Piper, 22.05 kHz; Turbo wants more than five)."""
    return np.concatenate([speak(REFERENCE_TEXT[0]), silence(0.4), speak(REFERENCE_TEXT[1])])


def tiny_t3() -> dict:
    """Turbo's T3 config (GPT-2 medium), shrunk: 2 layers of width 32."""
    from chatterbox.models.t3 import llama_configs

    return dict(llama_configs.GPT2_MEDIUM_CONFIG, n_embd=32, hidden_size=32, n_head=2, n_layer=2, n_ctx=1024,
                n_positions=1024, vocab_size=16)


@contextlib.contextmanager
def t3_config(config: dict | None) -> Iterator[None]:
    """Turbo's T3 config, looked up by name, replaced by `config` inside the block (None: the real one)."""
    from chatterbox.models.t3 import llama_configs

    if config is None:
        yield
        return
    original = llama_configs.LLAMA_CONFIGS["GPT2_medium"]
    llama_configs.LLAMA_CONFIGS["GPT2_medium"] = config
    try:
        yield
    finally:
        llama_configs.LLAMA_CONFIGS["GPT2_medium"] = original


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


def build(out: Path) -> Path:
    """Write the checkpoint into `out` with the T3 config in place now (wrap in `t3_config`), and return it."""
    import soundfile as sf
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts_turbo import ChatterboxTurboTTS
    from safetensors.torch import save_file

    torch.manual_seed(0)
    hp = T3Config(text_tokens_dict_size=50276)  # Turbo's hyperparameters, as its from_local sets them
    hp.llama_config_name, hp.speech_tokens_dict_size, hp.input_pos_emb = "GPT2_medium", 6563, None
    hp.speech_cond_prompt_len, hp.use_perceiver_resampler, hp.emotion_adv = 375, False, False
    for name, module in (("t3_turbo_v1", T3(hp)), ("ve", VoiceEncoder()), ("s3gen_meanflow", S3Gen(meanflow=True))):
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, out / f"{name}.safetensors")
        del module
    _tokenizer(out)
    # The built-in voice: the library's own conditioning of a reference recording, saved as conds.pt.
    reference = out.parent / f"{out.name}-builtin-reference.wav"
    sf.write(reference, reference_speech(), PIPER_RATE)
    model = ChatterboxTurboTTS.from_local(out, "cpu")
    # Without the library's loudness normalisation, which breaks on NumPy 2 (the engine's cloning path fixes it).
    model.prepare_conditionals(str(reference), norm_loudness=False)
    model.conds.save(out / "conds.pt")
    return out
