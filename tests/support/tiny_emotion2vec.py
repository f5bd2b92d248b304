"""A tiny emotion2vec+ built from FunASR's own model class and config keys, with random weights.

It is saved the way a real checkpoint directory is laid out (`config.yaml`, `model.pt`, `tokens.txt`) and then
loaded by voxloop through `AutoModel(model=<dir>)`, the same path a downloaded emotion2vec_plus_* takes. The
sizes are shrunk (embed 32, one block) but the ×320 conv stride and the 9-label head are the real ones.
"""

from __future__ import annotations

from pathlib import Path

# The emotion2vec+ tokens exactly as the released checkpoints spell them.
TOKENS = ("生气/angry", "厌恶/disgusted", "恐惧/fearful", "开心/happy", "中立/neutral", "其他/other", "难过/sad",
          "吃惊/surprised", "<unk>")


def model_conf() -> dict:
    audio = {
        "type": "AUDIO", "prenet_depth": 1, "prenet_layerdrop": 0.0, "prenet_dropout": 0.0,
        "start_drop_path_rate": 0.0, "end_drop_path_rate": 0.0, "num_extra_tokens": 0, "init_extra_token_zero": False,
        "mask_noise_std": 0.01, "mask_prob_min": None, "mask_prob": 0.5, "inverse_mask": False,
        "mask_prob_adjust": 0.05, "keep_masked_pct": 0.0, "mask_length": 5, "add_masks": False,
        "remove_masks": False, "mask_dropout": 0.0, "encoder_zero_mask": True, "mask_channel_prob": 0.0,
        "mask_channel_length": 64, "ema_local_encoder": False, "local_grad_mult": 1.0, "use_alibi_encoder": True,
        "alibi_scale": 1.0, "learned_alibi": False, "alibi_max_pos": None, "learned_alibi_scale": True,
        "learned_alibi_scale_per_head": True, "learned_alibi_scale_per_layer": False, "num_alibi_heads": 2,
        "model_depth": 1, "decoder": None, "extractor_mode": "layer_norm",
        "feature_encoder_spec": "[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16,2,2)] + [(16,2,2)]",
        "conv_pos_width": 15, "conv_pos_groups": 2, "conv_pos_depth": 1, "conv_pos_pre_ln": False,
    }
    return {
        "loss_beta": 0.0, "loss_scale": None, "depth": 1, "start_drop_path_rate": 0.0, "end_drop_path_rate": 0.0,
        "num_heads": 2, "norm_eps": 1e-05, "norm_affine": True, "encoder_dropout": 0.1, "post_mlp_drop": 0.1,
        "attention_dropout": 0.1, "activation_dropout": 0.0, "dropout_input": 0.0, "layerdrop": 0.0,
        "embed_dim": 32, "mlp_ratio": 4.0, "layer_norm_first": False, "average_top_k_layers": 1,
        "end_of_block_targets": False, "clone_batch": 1, "normalize": True,
        "modalities": {"audio": audio},
    }


def build(directory: Path, seed: int = 0) -> Path:
    """Write config.yaml, model.pt and tokens.txt for a random-weight emotion2vec+ into `directory`."""
    import torch
    import yaml
    from funasr.register import tables

    directory.mkdir(parents=True, exist_ok=True)
    conf = model_conf()
    config = {
        "model": "Emotion2vec",
        "model_conf": conf,
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }
    (directory / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    (directory / "tokens.txt").write_text("\n".join(TOKENS) + "\n", encoding="utf-8")
    torch.manual_seed(seed)
    model = tables.model_classes.get("Emotion2vec")(model_conf=conf, vocab_size=len(TOKENS))
    torch.save(model.state_dict(), directory / "model.pt")
    return directory
