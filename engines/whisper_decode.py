"""Decode a batch of packed VAD chunks to their ends, so that no phrase is lost at a chunk boundary.

faster-whisper's `BatchedInferencePipeline` packs VAD speech segments into chunks of up to 30 s and decodes each chunk
once, without timestamps. Whisper may end a window's transcript before the window's audio ends: in timestamp mode it
says where (a closing timestamp pair marks the start of a segment it did not finish) and plain
`WhisperModel.transcribe` seeks there and decodes the rest in its next window; without timestamps it says nothing, and
the rest of the chunk is never decoded. On human read speech that loses a short last utterance of a chunk ("One."
after a long line): dropped whenever it is the chunk's last VAD segment, kept anywhere else.

`decode_to_end` decodes every chunk with timestamps, then decodes what Whisper left unfinished in the next pass
(still batched: all the remainders together), each remainder conditioned on its chunk's text so far, as plain
decoding conditions its windows; the last pass decodes what is still left without timestamps, so running out of
passes drops nothing. A remainder Whisper judges silent (plain decoding's no-speech rule) is dropped.
`passes=1` is faster-whisper's own single pass; with `recover_tails` (the default setting) it is followed by tail
recovery: each chunk's transcript is aligned to the chunk's audio (Whisper's word timestamps, from the same encoder
output), and the audio after the last aligned word, when at least `MIN_TAIL_SECONDS` longer than the VAD's padding
after speech (`tail_pad`), is decoded again (all tails in one batch, each conditioned on its chunk's text, without
timestamps); a tail Whisper judges silent is dropped. The padding counts because a chunk ends with it by construction,
and a word's aligned end is often ~0.2 s early: a tail of padding alone measured 0.51-0.54 s after a 2 s question
(300 ms padding), and decoding it made Whisper repeat or invent a sentence ("... Paris? Yes, yes, yes.") in 38 of 40
placements; the phrase the recovery exists for (a spoken "One." after a long line) left a 1.45 s tail.
Translations are left as they are (their words do not align to the audio's).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline
from faster_whisper.audio import pad_or_trim
from faster_whisper.transcribe import get_compression_ratio

WINDOW_FRAMES = 3000  # Whisper's 30 s window in log-Mel frames
MIN_REMAINDER_SECONDS = 0.2  # a remainder shorter than this holds no word (and invites a hallucination)
MIN_TAIL_SECONDS = 0.5  # an unaligned chunk tail (past the VAD's padding) shorter than this is no dropped phrase


def decode_to_end(
    pipeline: Any,
    features: np.ndarray,
    tokenizer: Any,
    chunks_metadata: list[dict[str, Any]],
    options: Any,
    passes: int,
    recover_tails: bool = False,
    tail_pad: float = 0.0,
) -> list[list[dict[str, Any]]]:
    """`BatchedInferencePipeline.forward`'s result (per chunk, its segments as dicts), every chunk decoded to its end.

    `pipeline` is the `BatchedInferencePipeline` (its model, `generate_segment_batched`, `last_speech_timestamp`);
    `features` are faster-whisper's (zero-padded to 30 s); `passes` bounds the decoder passes over one chunk;
    `tail_pad` is the silence (s) the VAD left after each chunk's last speech (0 without a VAD).
    """
    if passes <= 1:
        if not recover_tails or tokenizer.task == tokenizer.translate:
            return BatchedInferencePipeline.forward(pipeline, features, tokenizer, chunks_metadata, options)
        return _recover_tails(pipeline, features, tokenizer, chunks_metadata, options, tail_pad)
    fps = pipeline.model.frames_per_second
    ends = [min(features.shape[-1], WINDOW_FRAMES, round(meta["duration"] * fps)) for meta in chunks_metadata]
    results: list[list[dict[str, Any]]] = [[] for _ in chunks_metadata]
    todo = [_Window(index, 0, timestamps=True) for index in range(len(chunks_metadata))]
    for done in range(passes):
        last = done == passes - 1  # decodes whatever is left without timestamps, so nothing is left over
        with_timestamps = [w for w in todo if w.timestamps and not last]
        groups = {True: with_timestamps, False: [w for w in todo if w not in with_timestamps]}
        todo = []
        for timestamps, group in groups.items():
            if group:
                todo += _decode(pipeline, features, ends, tokenizer, chunks_metadata, options, group, timestamps,
                                results)
        if not todo:
            break
    return results


@dataclass(frozen=True)
class _Window:
    index: int  # the chunk
    start: int  # its first frame still to decode
    timestamps: bool  # decode it with timestamps (and so learn where Whisper stopped), unless in the last pass


def _decode(
    pipeline: Any,
    features: np.ndarray,
    ends: list[int],
    tokenizer: Any,
    chunks_metadata: list[dict[str, Any]],
    options: Any,
    group: list[_Window],
    timestamps: bool,
    results: list[list[dict[str, Any]]],
) -> list[_Window]:
    """Decode one batch of windows, add their segments to `results`, and return what Whisper left unfinished."""
    model = pipeline.model
    fps = model.frames_per_second
    windows = np.stack([pad_or_trim(features[w.index][:, w.start : ends[w.index]]) for w in group])
    window_options = dataclasses.replace(options, without_timestamps=not timestamps)
    if all(w.start == 0 for w in group):
        encoder_output, outputs = pipeline.generate_segment_batched(windows, tokenizer, window_options)
    else:  # remainders: each conditioned on its chunk's text so far, as plain decoding conditions a window
        previous = [[t for s in results[w.index] for t in s["tokens"] if t < tokenizer.eot] for w in group]
        encoder_output, outputs = _generate(pipeline, windows, tokenizer, window_options, previous)
    decoded, sizes, unfinished = [], [], []
    for window, output in zip(group, outputs):
        size = ends[window.index] - window.start
        offset = chunks_metadata[window.index]["offset"] + window.start / fps
        pieces, seek, _ = model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=output["tokens"],
            time_offset=offset,
            segment_size=size,
            segment_duration=size / fps,
            seek=0,
        )
        decoded.append([_segment(tokenizer, piece, output, round(offset * fps)) for piece in pieces])
        sizes.append(size)
        if timestamps and seek < size - round(MIN_REMAINDER_SECONDS * fps):
            # Whisper stopped at `seek`: decode from there; if it made no progress, decode it without timestamps.
            unfinished.append(_Window(window.index, window.start + seek, timestamps=seek > 0))
    if options.word_timestamps:
        pipeline.last_speech_timestamp = model.add_word_timestamps(
            decoded,
            tokenizer,
            encoder_output,
            sizes,
            options.prepend_punctuations,
            options.append_punctuations,
            pipeline.last_speech_timestamp,
        )
    for window, output, segments in zip(group, outputs, decoded):
        # A remainder Whisper judges silent is dropped, as plain decoding drops such a window.
        if window.start == 0 or not _is_silence(output, options):
            results[window.index].extend(s for s in segments if s["text"].strip())
    return unfinished


def _recover_tails(
    pipeline: Any, features: np.ndarray, tokenizer: Any, chunks_metadata: list[dict[str, Any]], options: Any,
    tail_pad: float,
) -> list[list[dict[str, Any]]]:
    """One batched pass (faster-whisper's), then each chunk's unaligned tail decoded again (see the module's doc)."""
    wanted_words = options.word_timestamps
    last_speech = pipeline.last_speech_timestamp
    aligned = dataclasses.replace(options, word_timestamps=True)
    results = BatchedInferencePipeline.forward(pipeline, features, tokenizer, chunks_metadata, aligned)
    if not wanted_words:
        pipeline.last_speech_timestamp = last_speech
    model = pipeline.model
    fps = model.frames_per_second
    ends = [min(features.shape[-1], WINDOW_FRAMES, round(meta["duration"] * fps)) for meta in chunks_metadata]
    shortest = round((MIN_TAIL_SECONDS + tail_pad) * fps)
    tails = []
    for index, (meta, segments) in enumerate(zip(chunks_metadata, results)):
        words = [w for s in segments for w in (s.get("words") or [])]
        covered = max((w["end"] for w in words), default=meta["offset"]) - meta["offset"]
        start = max(0, round(covered * fps))
        if words and ends[index] - start >= shortest:  # a chunk without words stays empty
            tails.append(_Window(index, start, timestamps=False))
    if tails:
        _decode(pipeline, features, ends, tokenizer, chunks_metadata, aligned if wanted_words else options,
                tails, False, results)
    if not wanted_words:
        for segments in results:
            for segment in segments:
                segment.pop("words", None)
    return results


def _generate(
    pipeline: Any, windows: np.ndarray, tokenizer: Any, options: Any, previous: list[list[int]]
) -> tuple[Any, list[dict[str, Any]]]:
    """`BatchedInferencePipeline.generate_segment_batched` with a prompt of its own for each window."""
    model = pipeline.model
    initial = tokenizer.encode(options.initial_prompt) if options.initial_prompt is not None else []
    previous = [initial + tokens for tokens in previous]
    # CTranslate2 wants <|startoftranscript|> at one position in the batch: as many previous tokens for each window
    # (at most plain decoding's 223).
    keep = min(model.max_length // 2 - 1, *(len(tokens) for tokens in previous))
    prompts = [
        model.get_prompt(
            tokenizer,
            previous_tokens=tokens[len(tokens) - keep :],
            without_timestamps=options.without_timestamps,
            hotwords=options.hotwords,
        )
        for tokens in previous
    ]
    longest = max(len(p) for p in prompts)
    max_length = model.max_length if options.max_new_tokens is None else min(
        model.max_length, longest + options.max_new_tokens
    )
    encoder_output = model.encode(windows)
    if options.multilingual:
        for prompt, languages in zip(prompts, model.model.detect_language(encoder_output)):
            prompt[prompt.index(tokenizer.language)] = tokenizer.tokenizer.token_to_id(languages[0][0])
    results = model.model.generate(
        encoder_output,
        prompts,
        beam_size=options.beam_size,
        patience=options.patience,
        length_penalty=options.length_penalty,
        max_length=max_length,
        suppress_blank=options.suppress_blank,
        suppress_tokens=options.suppress_tokens,
        return_scores=True,
        return_no_speech_prob=True,
        sampling_temperature=options.temperatures[0],
        repetition_penalty=options.repetition_penalty,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
    )
    outputs = []
    for result in results:
        length = len(result.sequences_ids[0])
        total = result.scores[0] * (length**options.length_penalty)
        outputs.append(
            dict(avg_logprob=total / (length + 1), no_speech_prob=result.no_speech_prob, tokens=result.sequences_ids[0])
        )
    return encoder_output, outputs


def _is_silence(output: dict[str, Any], options: Any) -> bool:
    """Plain decoding's rule for a window without speech: likely no speech and an unlikely transcript."""
    if options.no_speech_threshold is None or output["no_speech_prob"] <= options.no_speech_threshold:
        return False
    return options.log_prob_threshold is None or output["avg_logprob"] < options.log_prob_threshold


def _segment(tokenizer: Any, piece: dict[str, Any], output: dict[str, Any], seek: int) -> dict[str, Any]:
    text = tokenizer.decode(piece["tokens"])
    return dict(
        text=text,
        avg_logprob=output["avg_logprob"],
        no_speech_prob=output["no_speech_prob"],
        tokens=piece["tokens"],
        start=piece["start"],
        end=piece["end"],
        compression_ratio=get_compression_ratio(text),
        seek=seek,
    )
