"""NeMo's own cache-aware streaming loop (as in its speech_to_text_cache_aware_streaming_infer example): features
computed offline by `CacheAwareStreamingAudioBuffer`, then every clip stepped together, one batched
`conformer_stream_step` per chunk. The reference the streaming engine's tests compare with, and the library's best
that bench/gpu.py nemo-stream measures."""

from __future__ import annotations

from typing import Any

import numpy as np


def lockstep(model: Any, clips: list[np.ndarray]) -> list[str]:
    """Each clip's transcript from NeMo's lockstep loop over all of them at once."""
    import torch
    from nemo.collections.asr.parts.utils.streaming_utils import CacheAwareStreamingAudioBuffer

    buffer = CacheAwareStreamingAudioBuffer(model=model, online_normalization=False)
    for clip in clips:
        buffer.append_audio(clip)
    channel, time_cache, length = model.encoder.get_initial_cache_state(batch_size=len(clips))
    hyps = pred = texts = None
    for step, (chunk, lengths) in enumerate(iter(buffer)):
        with torch.inference_mode():
            pred, texts, channel, time_cache, length, hyps = model.conformer_stream_step(
                processed_signal=chunk, processed_signal_length=lengths, cache_last_channel=channel,
                cache_last_time=time_cache, cache_last_channel_len=length,
                keep_all_outputs=buffer.is_buffer_empty(), previous_hypotheses=hyps, previous_pred_out=pred,
                drop_extra_pre_encoded=0 if step == 0 else model.encoder.streaming_cfg.drop_extra_pre_encoded,
                return_transcription=True,
            )[:6]
    return [(getattr(t, "text", t) or "").strip() for t in texts or []]
