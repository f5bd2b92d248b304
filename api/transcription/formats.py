"""Render a finished transcript in each OpenAI response_format (json, text, srt, vtt, verbose_json, diarized_json)."""

from __future__ import annotations

from api.transcription.protocol import (
    DiarizedSegment,
    DiarizedTranscriptionResponse,
    DurationUsage,
    TokenUsage,
    TokenUsageDetails,
    TranscriptionResponse,
    TranscriptionSegment,
    TranscriptionWord,
    VerboseTranscriptionResponse,
)
from engines.base import Segment, Transcript
from engines.languages import language_name

# Input audio billed as tokens in streaming usage, one per 100 ms, as OpenAI's gpt-4o audio models count.
AUDIO_TOKENS_PER_SECOND = 10


def join_text(segments: tuple[Segment, ...] | list[Segment]) -> str:
    return "".join(s.text for s in segments).strip()


def as_json(t: Transcript) -> TranscriptionResponse:
    return TranscriptionResponse(text=t.text, usage=DurationUsage(seconds=round(t.duration, 3)))


def as_verbose(t: Transcript, *, task: str, words: bool, segments: bool) -> VerboseTranscriptionResponse:
    return VerboseTranscriptionResponse(
        task=task,  # type: ignore[arg-type]
        language=language_name(t.language),
        duration=round(t.duration, 3),
        text=t.text,
        words=[TranscriptionWord(word=w.word.strip(), start=w.start, end=w.end) for w in t.words] if words else None,
        segments=[
            TranscriptionSegment(
                id=s.id,
                seek=s.seek,
                start=s.start,
                end=s.end,
                text=s.text,
                tokens=list(s.tokens),
                temperature=s.temperature,
                avg_logprob=s.avg_logprob,
                compression_ratio=s.compression_ratio,
                no_speech_prob=s.no_speech_prob,
            )
            for s in t.segments
        ]
        if segments
        else None,
        usage=DurationUsage(seconds=round(t.duration, 3)),
    )


def diarized_segment(s: Segment) -> DiarizedSegment:
    return DiarizedSegment(id=f"seg_{s.id}", start=s.start, end=s.end, text=s.text.strip(), speaker=s.speaker or "A")


def as_diarized(t: Transcript) -> DiarizedTranscriptionResponse:
    return DiarizedTranscriptionResponse(
        duration=round(t.duration, 3),
        text=t.text,
        segments=[diarized_segment(s) for s in t.segments],
        usage=DurationUsage(seconds=round(t.duration, 3)),
    )


def _timestamp(seconds: float, decimal: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal}{ms:03d}"


def as_srt(t: Transcript) -> str:
    blocks = [
        f"{i}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(t.segments, start=1)
    ]
    return "\n".join(blocks)


def as_vtt(t: Transcript) -> str:
    blocks = [f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text.strip()}\n" for s in t.segments]
    return "WEBVTT\n\n" + "\n".join(blocks)


def token_usage(t: Transcript, prompt_tokens: int = 0) -> TokenUsage:
    audio_tokens = int(round(t.duration * AUDIO_TOKENS_PER_SECOND))
    output_tokens = sum(len(s.tokens) for s in t.segments)
    return TokenUsage(
        input_tokens=audio_tokens + prompt_tokens,
        output_tokens=output_tokens,
        total_tokens=audio_tokens + prompt_tokens + output_tokens,
        input_token_details=TokenUsageDetails(audio_tokens=audio_tokens, text_tokens=prompt_tokens),
    )
