"""Cutting text into speakable phrases, and parsing blended voice ids: pure functions the TTS engines share.

Time to first audio is the time to synthesize the first chunk, so the first chunk is cut short (at the first
clause break, or after a few words); later chunks are whole clauses or sentences, which sound better and keep
throughput up. Each phrase carries the pause that should follow it, because engines trim their own silences.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.base import UnsupportedOptionError

SENTENCE_PAUSE = 0.25
CLAUSE_PAUSE = 0.12
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+")
_LONG_SENTENCE_WORDS = 28
# Every phrase an engine gets is at most this long (issue 15): a TTS model's memory and time grow with the square of
# a phrase, and espeak-ng (Piper's and Kokoro's G2P) crashes on a 4,000-character token. A phrase longer than this is
# cut at clause breaks, then at words, and a token longer than MAX_TOKEN_CHARS (no speakable word is) at characters.
MAX_PHRASE_CHARS = 240
MAX_TOKEN_CHARS = 40
# And at most this many phonemes per model call, for engines that phonemize themselves (a 240-character phrase is
# ~250 phonemes of English; spelled-out symbols run longer).
MAX_PHONEMES = 400


@dataclass(frozen=True)
class Phrase:
    text: str
    pause_after: float

    def pause(self, rate: int) -> np.ndarray:
        """The silence that follows this phrase, at `rate` (empty when none)."""
        return np.zeros(int(self.pause_after * rate), np.float32)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def _clauses(sentence: str) -> list[str]:
    return [c.strip() for c in _CLAUSE_END.split(sentence) if c.strip()]


# Words a phrase naturally starts with: cutting just before one leaves a smaller prosody seam.
_PHRASE_STARTS = frozenset(
    "and but or so because when while if that which who where over under near with without to in on at for from "
    "of into after before about through".split()
)


def _cut_words(text: str, words: int, max_words: int) -> tuple[str, str]:
    """Cut after `words` words, or up to two words later (never past `max_words`) where a new phrase begins."""
    parts = text.split()
    end = min(words + 3, len(parts), max_words + 1)
    cut = next((i for i in range(words, end) if parts[i].lower() in _PHRASE_STARTS), words)
    return " ".join(parts[:cut]), " ".join(parts[cut:])


def split_phrases(text: str, first_words: int = 4, first_max_words: int | None = None) -> list[Phrase]:
    """Phrases in speaking order: a short first one, then sentences (long sentences cut at clause breaks).

    The first phrase is its clause when that is at most `first_max_words` long (default twice `first_words`),
    else the first `first_words` words, stretched to where a new phrase begins if that stays within the maximum.
    A slow engine sets a tight maximum: its time to first audio grows with every word.
    """
    first_max_words = first_max_words or first_words * 2
    out: list[Phrase] = []
    for sentence in split_sentences(text):
        pieces = [sentence]
        if not out or len(sentence.split()) > _LONG_SENTENCE_WORDS or len(sentence) > MAX_PHRASE_CHARS:
            pieces = _group_clauses(_clauses(sentence), first=not out, first_words=first_words,
                                    first_max_words=first_max_words)
        pieces = [bounded for piece in pieces for bounded in bound_phrase(piece)]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            out.append(Phrase(piece, SENTENCE_PAUSE if last else (CLAUSE_PAUSE if piece[-1] in ",;:—–" else 0.0)))
    if out:
        out[-1] = Phrase(out[-1].text, 0.0)
    return out


def bound_phrase(text: str, max_chars: int = MAX_PHRASE_CHARS, max_words: int = _LONG_SENTENCE_WORDS) -> list[str]:
    """`text` as pieces of at most `max_chars` characters and `max_words` words, cut between words; a token longer
    than MAX_TOKEN_CHARS is first cut into MAX_TOKEN_CHARS pieces. Linear in the text."""
    if len(text) <= max_chars and text.count(" ") < max_words:
        return [text]
    out: list[str] = []
    current: list[str] = []
    size = 0
    for word in text.split():
        for token in (word[i : i + MAX_TOKEN_CHARS] for i in range(0, len(word), MAX_TOKEN_CHARS)):
            if current and (size + 1 + len(token) > max_chars or len(current) >= max_words):
                out.append(" ".join(current))
                current, size = [], -1
            current.append(token)
            size += 1 + len(token)
    if current:
        out.append(" ".join(current))
    return out


def bound_phonemes(phonemes: list[str], max_len: int = MAX_PHONEMES) -> list[list[str]]:
    """`phonemes` in runs of at most `max_len`, cut after a word's end (" ") where there is one."""
    out = []
    while len(phonemes) > max_len:
        cut = next((i + 1 for i in range(max_len - 1, max_len // 2, -1) if phonemes[i] == " "), max_len)
        out.append(phonemes[:cut])
        phonemes = phonemes[cut:]
    return out + [phonemes] if phonemes else out


def _group_clauses(clauses: list[str], *, first: bool, first_words: int, first_max_words: int) -> list[str]:
    """Merge clauses back into chunks of sensible size; the very first chunk is kept short."""
    out: list[str] = []
    if first and clauses:
        head = clauses[0]
        if len(head.split()) > first_max_words:
            # No early clause break: cut after a few words (a tiny prosody seam, for a much earlier first sound).
            cut, rest = _cut_words(head, first_words, first_max_words)
            out.append(cut)
            clauses = ([rest] if rest else []) + clauses[1:]
        else:
            out.append(head)
            clauses = clauses[1:]
    current = ""
    for clause in clauses:
        candidate = f"{current} {clause}".strip()
        if current and len(candidate.split()) > _LONG_SENTENCE_WORDS:
            out.append(current)
            candidate = clause
        current = candidate
    if current:
        out.append(current)
    return out


def blend(voice: str, table: Mapping[str, Any], engine: str) -> Any:
    """The weighted sum of `table`'s entries (style vectors, voice packs) that a blended voice id names."""
    try:
        parts = parse_blend(voice)
    except ValueError as exc:
        raise UnsupportedOptionError(str(exc), param="voice") from exc
    missing = [name for name, _ in parts if name not in table]
    if missing:
        raise UnsupportedOptionError(f"{engine} has no voice {', '.join(missing)}", param="voice")
    return sum(table[name] * weight for name, weight in parts)


def parse_blend(voice: str) -> list[tuple[str, float]]:
    """`"a:0.7+b:0.3"` or `"a+b"` (equal parts) -> [(id, weight)] with weights summing to 1."""
    parts: list[tuple[str, float]] = []
    for item in voice.split("+"):
        name, _, weight = item.strip().partition(":")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"bad blend weight '{weight}' in voice '{voice}'") from None
        if not name or value <= 0:
            raise ValueError(f"bad voice blend '{voice}': use 'a:0.6+b:0.4'")
        parts.append((name.strip(), value))
    total = sum(w for _, w in parts)
    return [(n, w / total) for n, w in parts]
