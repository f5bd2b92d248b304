"""The official OpenAI SDK against voxloop's transcription API, on the real embedded Whisper."""

from __future__ import annotations

import numpy as np
import openai
import pytest

from tests.support.speech import PIPER_RATE, encode, silence, speak
from tests.support.wer import wer

pytestmark = pytest.mark.models

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
SECOND = "Please send the quarterly report to the finance team before Friday."


@pytest.fixture(scope="module")
def clip() -> tuple[bytes, float, str]:
    """Two spoken sentences with a pause between, as 22.05 kHz WAV."""
    samples = np.concatenate([silence(0.4), speak(SENTENCE), silence(1.0), speak(SECOND), silence(0.4)])
    return encode(samples, "wav"), len(samples) / PIPER_RATE, f"{SENTENCE} {SECOND}"


def test_json_default_matches_speech(sdk: openai.OpenAI, clip) -> None:
    data, _, text = clip
    result = sdk.audio.transcriptions.create(model="whisper-1", file=("clip.wav", data))
    assert wer(text, result.text) <= 0.15, result.text


@pytest.mark.parametrize("alias", ["gpt-4o-transcribe", "gpt-4o-mini-transcribe", "whisper-tiny.en"])
def test_model_aliases(sdk: openai.OpenAI, clip, alias: str) -> None:
    data, _, text = clip
    result = sdk.audio.transcriptions.create(model=alias, file=("clip.wav", data))
    assert wer(text, result.text) <= 0.15


def test_verbose_json_words_and_segments(sdk: openai.OpenAI, clip) -> None:
    data, duration, text = clip
    result = sdk.audio.transcriptions.create(
        model="whisper-1",
        file=("clip.wav", data),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "english"
    assert abs(result.duration - duration) < 0.1
    assert wer(text, result.text) <= 0.15
    words = result.words or []
    assert len(words) >= 20
    starts = [w.start for w in words]
    assert starts == sorted(starts), "word timestamps must be monotonic"
    assert all(0 <= w.start <= w.end <= duration + 0.05 for w in words)
    # The second sentence starts after the 1 s pause: its first word must start after the first sentence's audio.
    first_of_second = next(w for w in words if w.word.strip(" .,").lower() == "please")
    assert first_of_second.start >= 0.4 + len(speak(SENTENCE)) / PIPER_RATE + 0.5
    segments = result.segments or []
    assert segments and all(s.start < s.end <= duration + 0.05 for s in segments)
    assert [s.id for s in segments] == list(range(len(segments)))
    for field in ("seek", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"):
        assert hasattr(segments[0], field)
    assert result.usage is not None and result.usage.type == "duration"


def test_verbose_json_without_granularities_has_segments_only(sdk: openai.OpenAI, clip) -> None:
    data, _, _ = clip
    result = sdk.audio.transcriptions.create(model="whisper-1", file=("c.wav", data), response_format="verbose_json")
    assert result.segments and result.words is None


def test_word_granularity_only(sdk: openai.OpenAI, clip) -> None:
    data, _, _ = clip
    result = sdk.audio.transcriptions.create(
        model="whisper-1", file=("c.wav", data), response_format="verbose_json", timestamp_granularities=["word"]
    )
    assert result.words and result.segments is None


def test_text_srt_vtt(sdk: openai.OpenAI, clip) -> None:
    data, _, text = clip
    plain = sdk.audio.transcriptions.create(model="whisper-1", file=("c.wav", data), response_format="text")
    assert isinstance(plain, str) and wer(text, plain) <= 0.15
    srt = sdk.audio.transcriptions.create(model="whisper-1", file=("c.wav", data), response_format="srt")
    assert srt.startswith("1\n00:00:0") and " --> " in srt
    vtt = sdk.audio.transcriptions.create(model="whisper-1", file=("c.wav", data), response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n") and "00:00:0" in vtt


def test_stream_deltas_concatenate_to_done(sdk: openai.OpenAI, clip) -> None:
    data, duration, text = clip
    stream = sdk.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("c.wav", data), stream=True)
    events = list(stream)
    types = [e.type for e in events]
    assert types[-1] == "transcript.text.done" and set(types[:-1]) == {"transcript.text.delta"}
    done = events[-1]
    assert "".join(e.delta for e in events[:-1]).strip() == done.text
    assert wer(text, done.text) <= 0.15
    assert done.usage is not None and done.usage.type == "tokens"
    assert done.usage.input_tokens >= int(duration * 10) - 1 and done.usage.output_tokens > 0


def test_prompt_language_temperature_chunking_include_accepted(sdk: openai.OpenAI, clip) -> None:
    data, _, text = clip
    result = sdk.audio.transcriptions.create(
        model="whisper-1",
        file=("c.wav", data),
        language="en",
        prompt="Quarterly finance report.",
        temperature=0.2,
        chunking_strategy={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500, "prefix_padding_ms": 300},
        include=["logprobs"],
    )
    assert wer(text, result.text) <= 0.2


def test_chunking_auto(sdk: openai.OpenAI, clip) -> None:
    data, _, text = clip
    result = sdk.audio.transcriptions.create(model="whisper-1", file=("c.wav", data), chunking_strategy="auto")
    assert wer(text, result.text) <= 0.15


@pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg", "webm", "m4a", "mp4", "opus", "mpeg"])
def test_every_upload_format(sdk: openai.OpenAI, fmt: str) -> None:
    samples = speak(SENTENCE)
    data = encode(samples, fmt, channels=2 if fmt in ("mp3", "m4a") else 1)
    result = sdk.audio.transcriptions.create(model="whisper-1", file=(f"clip.{fmt}", data))
    assert wer(SENTENCE, result.text) <= 0.2, (fmt, result.text)


def test_silence_gives_no_text(sdk: openai.OpenAI) -> None:
    result = sdk.audio.transcriptions.create(model="whisper-1", file=("s.wav", encode(silence(5.0))))
    assert result.text == ""


def test_noise_does_not_hallucinate(sdk: openai.OpenAI) -> None:
    noise = (np.random.default_rng(0).standard_normal(PIPER_RATE * 4) * 0.003).astype(np.float32)
    result = sdk.audio.transcriptions.create(model="whisper-1", file=("n.wav", encode(noise)))
    assert len(result.text.split()) <= 2, result.text


def test_translation_to_english(sdk: openai.OpenAI, clip) -> None:
    data, _, text = clip
    result = sdk.audio.translations.create(model="whisper-1", file=("c.wav", data))
    assert wer(text, result.text) <= 0.3, result.text
    verbose = sdk.audio.translations.create(model="whisper-1", file=("c.wav", data), response_format="verbose_json")
    assert verbose.segments


def test_multilingual_model_with_language(sdk: openai.OpenAI, clip) -> None:
    data, _, text = clip
    result = sdk.audio.transcriptions.create(model="whisper-base", file=("c.wav", data), language="en")
    # Piper's VITS samples noise, so the clip differs from run to run; base has misheard one phrase of it.
    assert wer(text, result.text) <= 0.3
