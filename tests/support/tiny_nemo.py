"""Random-weight NeMo ASR checkpoints with Parakeet-TDT-0.6B-v2's layout, built from NeMo's own config classes
(`EncDecRNNTBPEModel`: FastConformer encoder with 8x dw_striding subsampling, RNN-T prediction net, TDT joint with
durations 0-4) and saved as `.nemo`, for tests/extras/test_nemo*.py and `bench/gpu.py nemo` / `nemo-stream`.

`full` is the real model's size (24 layers of 1024, 8 heads, 128 mel features, 640-wide prediction and joint nets);
`tiny` shrinks it to 2 layers of width 32. `streaming` makes the encoder cache-aware like Nemotron streaming (causal
convolutions and downsampling, chunked limited attention, no feature normalisation). The tokenizer is a 48-piece
SentencePiece BPE trained on `SENTENCES`. Random weights transcribe gibberish: these prove loading, decoding paths and
shapes, never recognition quality. Needs the nemo extra (`.venv-nemo`); NeMo is imported only when a model is built.
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "hello world this is a short test",
    "the quick brown fox jumps over the lazy dog",
    "please send the report before friday",
    "speech recognition on a tiny model",
    "numbers one two three four five",
]
DURATIONS = [0, 1, 2, 3, 4]  # the TDT joint's frame durations, as in Parakeet-TDT


def tokenizer(directory: Path) -> Path:
    """A SentencePiece BPE tokenizer (48 pieces, lower-cased) trained on `SENTENCES`, written to `directory/tok`."""
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import create_spt_model

    text = directory / "text.txt"
    text.write_text("\n".join(SENTENCES * 4) + "\n")
    out = directory / "tok"
    create_spt_model(str(text), vocab_size=48, sample_size=-1, do_lower_case=True, tokenizer_type="bpe",
                     output_dir=str(out))
    return out


def config(tok_dir: Path, size: str, *, streaming: bool) -> dict:
    """The model config: Parakeet TDT v2's layout (`full`) or shrunk to 2 layers of width 32 (`tiny`); `streaming`
    makes the encoder cache-aware like Nemotron streaming."""
    full = size == "full"
    d_model, layers, heads, hidden = (1024, 24, 8, 640) if full else (32, 2, 2, 32)
    features = 128 if full else 80
    encoder = {
        "_target_": "nemo.collections.asr.modules.ConformerEncoder",
        "feat_in": features, "feat_out": -1, "n_layers": layers, "d_model": d_model,
        "subsampling": "dw_striding", "subsampling_factor": 8, "subsampling_conv_channels": 256 if full else 16,
        "ff_expansion_factor": 4 if full else 2, "self_attention_model": "rel_pos", "n_heads": heads,
        "conv_kernel_size": 9, "dropout": 0.0, "dropout_pre_encoder": 0.0, "dropout_emb": 0.0, "dropout_att": 0.0,
    }
    if streaming:  # FastConformer cache-aware streaming: causal convolutions, chunked limited attention
        encoder.update({
            "att_context_size": [70, 6] if full else [16, 1], "att_context_style": "chunked_limited",
            "conv_context_size": "causal", "causal_downsampling": True, "conv_norm_type": "layer_norm",
        })
    return {
        "sample_rate": 16000,
        "validation_ds": {"manifest_filepath": None, "sample_rate": 16000, "batch_size": 1, "shuffle": False,
                          "use_start_end_token": False},
        "model_defaults": {"enc_hidden": d_model, "pred_hidden": hidden, "joint_hidden": hidden,
                           "tdt_durations": DURATIONS, "num_tdt_durations": 5},
        "tokenizer": {"dir": str(tok_dir), "type": "bpe"},
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": 16000, "normalize": "NA" if streaming else "per_feature", "window_size": 0.025,
            "window_stride": 0.01, "window": "hann", "features": features, "n_fft": 512, "frame_splicing": 1,
            # Parakeet's 0; the tiny offline model has always padded its features to a multiple of 16 frames.
            "dither": 0.0, "pad_to": 16 if not full and not streaming else 0,
        },
        "encoder": encoder,
        "decoder": {"_target_": "nemo.collections.asr.modules.RNNTDecoder", "normalization_mode": None,
                    "random_state_sampling": False, "blank_as_pad": True,
                    "prednet": {"pred_hidden": hidden, "pred_rnn_layers": 2 if full else 1, "t_max": None,
                                "dropout": 0.0}},
        "joint": {"_target_": "nemo.collections.asr.modules.RNNTJoint", "log_softmax": None, "preserve_memory": False,
                  "fuse_loss_wer": True, "fused_batch_size": 4, "num_extra_outputs": 5,
                  "jointnet": {"joint_hidden": hidden, "activation": "relu", "dropout": 0.0}},
        "decoding": {"strategy": "greedy_batch", "model_type": "tdt", "durations": DURATIONS,
                     "greedy": {"max_symbols": 10}},
        "loss": {"loss_name": "tdt", "tdt_kwargs": {"durations": DURATIONS, "sigma": 0.02, "omega": 0.1,
                                                    "fastemit_lambda": 0.0, "clamp": -1.0}},
    }


def checkpoint(directory: Path, size: str, *, streaming: bool, seed: int | None = 0) -> tuple[Path, int]:
    """A random-weight `.nemo` of `config`'s layout, saved as `directory/<size>_<tdt|stream>.nemo` (the tokenizer is
    trained into `directory/tok` unless one is there): its path and parameter count. `seed` seeds torch first; with
    None the weights continue torch's generator as it stands (two models built in turn after one seed)."""
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    tok = directory / "tok"
    if not (tok / "tokenizer.model").exists():
        tok = tokenizer(directory)
    if seed is not None:
        torch.manual_seed(seed)
    model = EncDecRNNTBPEModel(cfg=OmegaConf.create(config(tok, size, streaming=streaming)))
    params = sum(p.numel() for p in model.parameters())
    path = directory / f"{size}_{'stream' if streaming else 'tdt'}.nemo"
    model.save_to(str(path))
    return path, params
