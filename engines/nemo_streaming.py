"""NeMo cache-aware streaming ASR (Nemotron streaming, FastConformer with `chunked_limited` attention).

`stream_transcribe` takes live audio chunks of any size and yields the transcript as the encoder's chunks fill:
features are computed incrementally (only frames whose STFT window is complete are used, so a frame is never
computed twice with different padding), and the encoder keeps its attention and convolution caches between chunks
(`conformer_stream_step`), so each audio frame is encoded once. The realtime session drives this method; the plain
`transcribe` (the HTTP API) feeds a whole file through the same path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.base import (
    AudioBuffer,
    CancelToken,
    Segment,
    StreamingUpdate,
    TranscriptionInfo,
    TranscriptionOptions,
    UnsupportedOptionError,
)
from engines.batching import Batcher
from engines.footprint import CudaAllocation
from engines.nemo_models import STREAMING_CAPABILITIES, hypothesis_text, import_nemo, load_nemo_model
from engines.settings import NemoSettings

# Feature frames recomputed before the first unfinished one, so the STFT sees real samples on its left.
_LEFT_MARGIN_FRAMES = 4


def _pick(value: Any, first: bool) -> int:
    """streaming_cfg sizes are either one int or [first chunk, later chunks]."""
    return int(value[0 if first else 1]) if isinstance(value, (list, tuple)) else int(value)


@dataclass(eq=False)
class _Step:
    """One stream's next encoder chunk with its caches and partial hypothesis: one row of a batched stream step."""

    x: Any  # (1, features, frames): the look-back cache frames, then the chunk
    channel: Any  # attention cache (layers, 1, frames, d_model)
    time: Any  # convolution cache (layers, 1, d_model, context)
    length: Any  # (1,): filled frames of the attention cache
    hyp: Any  # the transducer's partial hypothesis (None before the first chunk)
    pred: Any  # CTC models' predictions so far (None before the first chunk)
    first: bool  # the stream's first chunk: no look-back, nothing dropped after the subsampling
    last: bool  # the input ended and this chunk reaches its end: every output frame is kept

    @property
    def key(self) -> tuple[int, bool, bool]:
        """Rows merge into one call only when their shapes and per-call flags agree."""
        return int(self.x.shape[-1]), self.first, self.last


@dataclass(eq=False)
class _StepResult:
    text: str
    channel: Any
    time: Any
    length: Any
    hyp: Any
    pred: Any


class _Session:
    """State of one stream: pending audio, stable feature frames, encoder caches and the partial hypothesis."""

    def __init__(self, model: Any, preprocessor: Any, torch: Any):
        self.model, self.pre, self.torch = model, preprocessor, torch
        self.cfg = model.encoder.streaming_cfg
        self.device = next(model.parameters()).device
        featurizer = preprocessor.featurizer
        self.hop = int(featurizer.hop_length)
        self.half_window = int(featurizer.n_fft) // 2  # center=True: frame f spans f*hop ± n_fft/2
        self.audio = np.zeros(0, np.float32)
        self.audio_base = 0  # frames dropped from the front of `audio` (in hops)
        self.feats = torch.zeros((1, model.encoder._feat_in, 0), device=self.device)
        self.feat_base = 0  # absolute index of feats[..., 0]
        self.done_frames = 0  # absolute count of stable frames appended to `feats`
        self.stable = 0  # frames whose STFT window the audio received so far completes
        self.idx = 0  # absolute index of the next chunk's first frame
        self.step = 0
        caches = model.encoder.get_initial_cache_state(batch_size=1)
        self.cache_channel, self.cache_time, self.cache_len = caches
        self.hyp: Any = None
        self.pred: Any = None

    def add_audio(self, samples: np.ndarray, final: bool) -> None:
        """Keep the audio; its features are computed when a chunk needs them (`next_step`), so a stream fed in
        small pieces runs the preprocessor once per encoder chunk, not once per piece."""
        self.audio = np.concatenate([self.audio, samples.astype(np.float32)])
        total = self.audio_base * self.hop + len(self.audio)
        # Frames whose window lies fully inside the audio received so far; all of them once the input ended.
        self.stable = total // self.hop + 1 if final else max(0, (total - self.half_window) // self.hop + 1)

    def _compute_features(self) -> None:
        """Features of every stable frame not computed yet (their STFT windows are complete)."""
        stable = self.stable
        if stable <= self.done_frames:
            return
        start_frame = max(self.audio_base, self.done_frames - _LEFT_MARGIN_FRAMES)
        piece = self.audio[(start_frame - self.audio_base) * self.hop :]
        signal = self.torch.from_numpy(piece).to(self.device)[None, :]
        length = self.torch.tensor([signal.shape[1]], device=self.device)
        feats, _ = self.pre(input_signal=signal, length=length)
        first = self.done_frames - start_frame
        new = feats[:, :, first : stable - start_frame]
        self.feats = self.torch.cat([self.feats, new], dim=-1)
        self.done_frames = stable
        # Keep only the audio the next STFT needs (the margin before the first unfinished frame).
        keep_from = max(self.audio_base, self.done_frames - _LEFT_MARGIN_FRAMES)
        self.audio = self.audio[(keep_from - self.audio_base) * self.hop :]
        self.audio_base = keep_from

    def next_step(self, final: bool) -> _Step | None:
        """The next encoder chunk the stable frames allow, or None until more audio comes (or at the end)."""
        cfg = self.cfg
        sampling = getattr(self.model.encoder.pre_encode, "get_sampling_frames", lambda: 1)()
        first = self.step == 0
        chunk, shift = _pick(cfg.chunk_size, first), _pick(cfg.shift_size, first)
        pre_size = _pick(cfg.pre_encode_cache_size, first)
        end = self.stable
        if self.idx >= end or (not final and self.idx + chunk > end):
            return None
        self._compute_features()
        rel = self.idx - self.feat_base
        piece = self.feats[:, :, rel : rel + chunk]
        if piece.shape[-1] < _pick(sampling, first):
            return None
        cache = self.feats[:, :, max(0, rel - pre_size) : rel] if not first else piece[:, :, :0]
        pad = pre_size - cache.shape[-1]
        if pad > 0:
            cache = self.torch.cat([self.torch.zeros_like(piece[:, :, :1]).expand(-1, -1, pad), cache], dim=-1)
        x = self.torch.cat([cache, piece], dim=-1)
        last = final and self.idx + shift >= end
        return _Step(x, self.cache_channel, self.cache_time, self.cache_len, self.hyp, self.pred, first, last)

    def advance(self, result: _StepResult) -> str:
        """Take a step's new caches and hypothesis; the transcript so far."""
        self.cache_channel, self.cache_time, self.cache_len = result.channel, result.time, result.length
        self.hyp, self.pred = result.hyp, result.pred
        self.idx += _pick(self.cfg.shift_size, self.step == 0)
        self.step += 1
        self._trim()
        return result.text

    def decoded_seconds(self, rate: int) -> float:
        """The audio the transcript accounts for: every feature frame before the next chunk's first (at the end of
        the input, all of it)."""
        frames = min(self.done_frames, self.idx)
        return round(frames * self.hop / rate, 3)

    def _trim(self) -> None:
        # Later chunks look back `pre_encode_cache_size` frames; older frames are never read again.
        drop = (self.idx - _pick(self.cfg.pre_encode_cache_size, False)) - self.feat_base
        if drop > 0:
            self.feats = self.feats[:, :, drop:]
            self.feat_base += drop


class NemoStreamingTranscriber:
    """One loaded cache-aware streaming model. Each stream has its own caches and hypothesis; the encoder steps of
    concurrent streams run as one batched `conformer_stream_step` (rows stacked along the batch dimension, each
    with its own cache length) through the cross-request `Batcher`: whichever stream has a chunk ready while a step
    runs joins the next one (`self.batcher.batch_sizes` records them)."""

    def __init__(self, ref: str, settings: NemoSettings):
        self._torch, _ = import_nemo()
        with CudaAllocation(settings.device) as allocated:
            self._model = load_nemo_model(ref, settings)
        self._memory = allocated.bytes
        encoder = self._model.encoder
        if not hasattr(encoder, "setup_streaming_params"):
            raise UnsupportedOptionError(f"The NeMo model '{ref}' has no cache-aware streaming encoder.")
        if encoder.streaming_cfg is None:
            encoder.setup_streaming_params()
        from nemo.collections.asr.parts.utils.streaming_utils import CacheAwareStreamingAudioBuffer

        # NeMo's own streaming preprocessor: dither 0 and no pad_to (else every call adds padding frames).
        self._preprocessor = CacheAwareStreamingAudioBuffer(self._model, online_normalization=False).preprocessor
        self._rate = int(self._model.cfg.get("sample_rate", 16000))
        self.capabilities = STREAMING_CAPABILITIES
        self.batcher: Batcher[_Step, _StepResult] = Batcher(settings.batch_size)
        if settings.warmup:
            self.warm_up()

    def memory_bytes(self) -> int | None:
        return self._memory

    def warm_up(self) -> None:
        """Two dummy streams of different lengths, stepped together straight through the model (first chunks,
        later chunks and last chunks, batched), so the first user's stream finds the kernels loaded. Not counted in
        `batcher.batch_sizes`."""
        rng = np.random.default_rng(0)
        sessions = [self._session() for _ in range(2)]
        for session, seconds in zip(sessions, (1.0, 1.5)):
            session.add_audio((rng.standard_normal(int(self._rate * seconds)) * 0.01).astype(np.float32), True)
        while steps := [(s, step) for s in sessions if (step := s.next_step(final=True)) is not None]:
            groups: dict[tuple[int, bool, bool], list[tuple[_Session, _Step]]] = {}
            for session, step in steps:
                groups.setdefault(step.key, []).append((session, step))
            for group in groups.values():
                for (session, _), result in zip(group, self._run_steps([step for _, step in group])):
                    session.advance(result)

    def _session(self) -> _Session:
        return _Session(self._model, self._preprocessor, self._torch)

    def _run_steps(self, steps: Sequence[_Step]) -> list[_StepResult]:
        """The library's stream step over every row at once (all rows share `_Step.key`); each row's own result."""
        torch, first, last = self._torch, steps[0].first, steps[0].last
        x = torch.cat([s.x for s in steps])
        hyps = [s.hyp for s in steps]
        preds = [s.pred for s in steps]
        with torch.inference_mode():
            out = self._model.conformer_stream_step(
                processed_signal=x,
                processed_signal_length=torch.full((len(steps),), x.shape[-1], device=x.device),
                cache_last_channel=torch.cat([s.channel for s in steps], dim=1),
                cache_last_time=torch.cat([s.time for s in steps], dim=1),
                cache_last_channel_len=torch.cat([s.length for s in steps]),
                keep_all_outputs=last,
                previous_hypotheses=None if all(h is None for h in hyps) else hyps,
                previous_pred_out=None if all(p is None for p in preds) else preds,
                drop_extra_pre_encoded=0 if first else self._model.encoder.streaming_cfg.drop_extra_pre_encoded,
                return_transcription=True,
            )
        pred, texts, channel, time, length, best = out[:6]
        return [
            _StepResult(
                text=hypothesis_text(texts[i]),
                channel=channel[:, i : i + 1],
                time=time[:, i : i + 1],
                length=length[i : i + 1],
                hyp=best[i] if best is not None else None,
                pred=pred[i],
            )
            for i in range(len(steps))
        ]

    def _decode(self, session: _Session, final: bool, cancel: CancelToken) -> Iterator[str]:
        """Every chunk the session's stable frames allow, each through the batcher; the transcript after each."""
        while (step := session.next_step(final)) is not None:
            (result,) = self.batcher.run([step], self._run_steps, key=step.key, cancel=cancel)
            yield session.advance(result)

    def stream_transcribe(
        self, chunks: Iterable[AudioBuffer], options: TranscriptionOptions, cancel: CancelToken
    ) -> Iterator[StreamingUpdate]:
        session = self._session()
        text = ""
        for chunk in chunks:
            cancel.raise_if_cancelled()
            if chunk.sample_rate != self._rate:
                raise UnsupportedOptionError(f"Streaming model expects {self._rate} Hz audio, got {chunk.sample_rate}.")
            session.add_audio(chunk.samples, final=False)
            for new_text in self._decode(session, False, cancel):
                yield _update(text, new_text, session.decoded_seconds(self._rate))
                text = new_text
        session.add_audio(np.zeros(0, np.float32), final=True)
        for new_text in self._decode(session, True, cancel):
            yield _update(text, new_text, session.decoded_seconds(self._rate))
            text = new_text
        decoded = session.decoded_seconds(self._rate)
        yield StreamingUpdate(text=text.strip(), delta="", final=True, decoded_seconds=decoded)

    def transcribe(
        self, audio: AudioBuffer, options: TranscriptionOptions, cancel: CancelToken
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """The HTTP path: the file is streamed through in 0.5 s pieces, as a live client would send it."""
        if options.task == "translate":
            raise UnsupportedOptionError("NeMo ASR models do not translate.", param="model")
        step = self._rate // 2
        pieces = (
            AudioBuffer(audio.samples[i : i + step], audio.sample_rate) for i in range(0, len(audio.samples), step)
        )
        final = ""
        for update in self.stream_transcribe(pieces, options, cancel):
            final = update.text
        segments = [Segment(id=0, start=audio.offset, end=round(audio.offset + audio.duration, 3), text=" " + final)]
        info = TranscriptionInfo(language=options.language or "en", duration=audio.duration)
        return info, iter(segments if final else [])

    def close(self) -> None:
        del self._model


def _update(previous: str, text: str, decoded_seconds: float) -> StreamingUpdate:
    # Transducer hypotheses only grow, so the delta is the new tail; a rewrite (never seen) sends the whole text.
    delta = text[len(previous) :] if text.startswith(previous) else text
    return StreamingUpdate(text=text.strip(), delta=delta, decoded_seconds=decoded_seconds)
