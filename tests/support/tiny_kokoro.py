"""A small Kokoro built from hexgrad's own `KModel` and the config keys of Kokoro-82M, with random weights.

It is saved the way the hexgrad/Kokoro-82M hub repo is laid out (`config.json`, `kokoro-v1_0.pth` as a dict of
per-module state dicts, `voices/<id>.pt` packs of shape [510, 1, 256]) and then loaded by voxloop through its
local-directory path, the one real weights take.

Only part of it shrinks: kokoro hard-codes the decoder's 1024/512 channels and the 128+128 style split, so
`hidden_dim` 512, `style_dim` 128 and `upsample_initial_channel` 512 stay real. ALBERT (width 32, one layer),
`n_layer` 1, one resblock and a shorter iSTFT upsampling shrink; the model has ~59M parameters (a ~234 MB file).
`max_dur` 4 keeps random durations short: every phoneme lasts 1 to 4 frames of 25 ms.
"""

from __future__ import annotations

import json
from pathlib import Path

VOICES = ("af_test", "bm_test")  # a US English female and a UK English male pack
# 24 kHz samples per duration frame: the decoder doubles the frame rate, then upsamples 10 x 6 with iSTFT hop 5.
FRAME_SAMPLES = 600
MAX_DUR = 4


def config() -> dict:
    from kokoro_onnx.config import DEFAULT_VOCAB  # Kokoro-82M's real phoneme vocabulary (178 tokens)

    return {
        "vocab": DEFAULT_VOCAB, "n_token": 178, "hidden_dim": 512, "style_dim": 128, "n_layer": 1,
        "max_dur": MAX_DUR, "dropout": 0.2, "text_encoder_kernel_size": 5, "n_mels": 80,
        "plbert": {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
                   "max_position_embeddings": 512, "num_hidden_layers": 1, "dropout": 0.1},
        "istftnet": {"upsample_kernel_sizes": [20, 12], "upsample_rates": [10, 6], "gen_istft_hop_size": 5,
                     "gen_istft_n_fft": 20, "resblock_dilation_sizes": [[1, 3, 5]], "resblock_kernel_sizes": [3],
                     "upsample_initial_channel": 512},
    }


def build(directory: Path) -> Path:
    """Write the tiny model into `directory` and return it."""
    import torch
    from kokoro import KModel

    torch.manual_seed(0)
    (directory / "voices").mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config()), encoding="utf-8")
    empty = directory / "empty.pth"
    torch.save({}, empty)  # KModel loads nothing from an empty dict and keeps its random init
    model = KModel(repo_id="hexgrad/Kokoro-82M", config=str(directory / "config.json"), model=str(empty))
    empty.unlink()
    parts = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")  # the released .pth's top-level keys
    torch.save({name: getattr(model, name).state_dict() for name in parts}, directory / "kokoro-v1_0.pth")
    for name in VOICES:
        torch.save(torch.randn(510, 1, 256) * 0.1, directory / "voices" / f"{name}.pt")
    return directory
