"""emotion2vec+'s utterance classification over a padded batch of clips: one model call for many requests.

FunASR's `Emotion2vec.inference` loops over its inputs one waveform at a time (`padding_mask=None`), so its own
"batch" is a Python loop. The model itself takes a padding mask (fairseq's data2vec 2.0 code): the convolutional
feature extractor has no padding (a clip's frames read only its own samples), attention masks padded frames out,
and the ALiBi bias depends only on distances. Two parts would still mix padding into a clip's result, and this
keeps both per clip:

- the convolutional positional encoder reads `k // 2` frames past the end: here its input is zeroed past each
  clip's frames before every convolution, which is what its own zero padding gives the clip alone;
- the utterance pooling (`x.mean(dim=1)`) is a mean over each clip's own frames.

Each clip is normalised on its own (`cfg.normalize`: layer norm over the whole waveform), as FunASR does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _masked_positions(torch: Any, encoder: Any, keep: Any) -> Any:
    """The positional encoder's modules, run with every `Conv1d` input zeroed past each clip's frames (`keep`:
    [B, T], True on a clip's own frames). A module, so it can stand in the encoder's place for one call."""

    class MaskedPositions(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = encoder

        def forward(self, x: Any) -> Any:
            return self._run(self.inner, x)

        def _run(self, module: Any, x: Any) -> Any:
            if isinstance(module, torch.nn.Sequential):
                for child in module:
                    x = self._run(child, x)
                return x
            if isinstance(module, torch.nn.Conv1d):  # [B, C, T]
                return module(x * keep[:, None, :].to(x.dtype))
            return module(x)

    return MaskedPositions()


def _frames(encoder: Any, samples: int) -> int:
    """Frames the convolutional feature extractor makes of `samples` (no padding: floor((n - k) / s) + 1)."""
    for _dim, kernel, stride in encoder.feature_enc_layers:
        samples = (samples - kernel) // stride + 1
    return samples


def classify_batch(torch: Any, model: Any, labels: Sequence[str], clips: Sequence[np.ndarray],
                   device: Any) -> list[dict[str, Any]]:
    """Each clip's `{"labels", "scores"}` (FunASR's result shape, `unuse` labels left out), from one padded pass."""
    F = torch.nn.functional
    sources = []
    for clip in clips:
        source = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32)).to(device)
        if model.cfg.normalize:
            source = F.layer_norm(source, source.shape)
        sources.append(source)
    lengths = torch.tensor([len(s) for s in sources], device=device)
    width = int(lengths.max())
    batch = torch.stack([F.pad(s, (0, width - len(s))) for s in sources])
    padding = torch.arange(width, device=device)[None, :] >= lengths[:, None]
    encoder = model.modality_encoders["AUDIO"]
    positions = encoder.relative_positional_encoder
    with torch.inference_mode():
        shape = torch.empty(len(clips), _frames(encoder, width), 1, device=device)
        keep = ~encoder.convert_padding_mask(shape, padding)  # the library's own frame mask
        # For this call only: the library's module is put back in `finally` (calls are serialised by the Batcher).
        encoder.relative_positional_encoder = _masked_positions(torch, positions, keep)
        try:
            out = model.extract_features(batch, padding_mask=padding)
        finally:
            encoder.relative_positional_encoder = positions
        x = out["x"]
        frame_padding = out["padding_mask"]
        own = (torch.ones(x.shape[:2], dtype=torch.bool, device=device) if frame_padding is None
               else ~frame_padding)
        weights = own[:, :, None].to(x.dtype)
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1)
        logits = model.proj(pooled)
        unused = torch.tensor([label.startswith("unuse") for label in labels], device=device)
        scores = torch.softmax(logits.masked_fill(unused[None, :], -np.inf), dim=-1).cpu()
    keep_labels = [i for i, label in enumerate(labels) if not label.startswith("unuse")]
    return [{"labels": [labels[i] for i in keep_labels], "scores": [float(row[i]) for i in keep_labels]}
            for row in scores]
