"""Cutting text into speakable phrases, and parsing blended voice ids: pure functions the TTS engines share.

Time to first audio is the time to synthesize the first chunk, so the first chunk is cut short (at the first
clause break, or after a few words); later chunks are whole clauses or sentences, which sound better and keep
throughput up. Each phrase carries the pause that should follow it, because engines trim their own silences.

The one phrase cutter of the project: `split_phrases` cuts a whole text (the engines, for every synthesis);
`PhraseStream` cuts the same phrases from text that arrives in pieces (the realtime voice loop, from LLM tokens),
releasing each one as soon as no later text can change it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.base import UnsupportedOptionError

SENTENCE_PAUSE = 0.25
CLAUSE_PAUSE = 0.12
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+")
# A period after these is no sentence end ("Dr. Smith", "e.g. this").
_ABBREVIATION = re.compile(r"(?<![\w.])(?:mr|mrs|ms|dr|prof|st|vs|e\.g|i\.e)\.$", re.IGNORECASE)
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


def _sentence_ends(text: str) -> Iterator[re.Match[str]]:
    """The breaks after each sentence of `text` (its end mark stays with it); an abbreviation's period is none."""
    for match in _SENTENCE_END.finditer(text):
        if not _ABBREVIATION.search(text, 0, match.start()):
            yield match


def split_sentences(text: str) -> list[str]:
    sentences, start = [], 0
    for match in _sentence_ends(text):
        sentences.append(text[start : match.start()])
        start = match.end()
    sentences.append(text[start:])
    return [s.strip() for s in sentences if s.strip()]


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
        pieces = _bounded(_group_clauses(_clauses(sentence), first=not out, first_words=first_words,
                                         first_max_words=first_max_words))
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            out.append(Phrase(piece, SENTENCE_PAUSE if last else (CLAUSE_PAUSE if piece[-1] in ",;:—–" else 0.0)))
    if out:
        out[-1] = Phrase(out[-1].text, 0.0)
    return out


def _bounded(pieces: list[str]) -> list[str]:
    """Each piece with its whitespace made single spaces, then bounded (`bound_phrase`)."""
    return [bounded for piece in pieces for bounded in bound_phrase(" ".join(piece.split()))]


class PhraseStream:
    """`split_phrases` for text that arrives in pieces (an LLM's tokens): `feed` returns the phrases that no later
    text can change, as soon as they are settled, `flush` the rest once the text is complete. However the text is
    cut into pieces, the phrases are those `split_phrases` cuts from the whole of it (the text only: whoever speaks
    a phrase adds its pause).

    The first phrase leaves at the end of the first clause when that is at most `first_max_words` long, else
    once more than `first_max_words` whole words have come (its first `first_words`, perhaps stretched); later
    ones at each sentence end, or, inside a sentence longer than a phrase may be, at each clause break that
    closes a group of clauses.
    """

    def __init__(self, first_words: int = 4, first_max_words: int | None = None):
        self._first_words = first_words
        self._first_max_words = first_max_words or first_words * 2
        self._pending = ""
        self._first_sent = False

    def feed(self, text: str) -> list[str]:
        self._pending += text
        out: list[str] = []
        while (phrases := self._next()) is not None:
            out += phrases
        return out

    def flush(self) -> list[str]:
        rest, self._pending = self._pending, ""
        if not self._first_sent:
            self._first_sent = bool(rest.strip())
            return [p.text for p in split_phrases(rest, self._first_words, self._first_max_words)]
        return [piece for sentence in split_sentences(rest) for piece in _bounded(_group_clauses(
            _clauses(sentence), first=False, first_words=self._first_words, first_max_words=self._first_max_words))]

    def _next(self) -> list[str] | None:
        """The next settled phrases (perhaps none, when only spaces were settled), or None: wait for more text."""
        if not self._first_sent:
            return self._first()
        text = self._pending
        end = next(_sentence_ends(text), None)
        if end is not None:
            self._pending = text[end.end() :]
            return _bounded(_group_clauses(_clauses(text[: end.start()]), first=False, first_words=self._first_words,
                                           first_max_words=self._first_max_words))
        return self._closed_groups()

    def _first(self) -> list[str] | None:
        text = self._pending
        end = next(_sentence_ends(text), None)
        sentence = text if end is None else text[: end.start()]
        clause_end = _CLAUSE_END.search(sentence)
        head, rest_at = None, 0
        if clause_end is not None:
            head, rest_at = sentence[: clause_end.start()], clause_end.end()
        elif end is not None:
            head, rest_at = sentence, end.end()
        if head is not None and len(head.split()) <= self._first_max_words:
            self._pending, self._first_sent = text[rest_at:], True
            return _bounded([head])
        whole_words = (head if head is not None else text).split()
        if head is None and text and not text[-1].isspace():
            whole_words.pop()  # the last word may not be whole yet
        if len(whole_words) <= self._first_max_words:
            return None  # the first clause may still end within the maximum
        cut, _ = _cut_words(" ".join(whole_words), self._first_words, self._first_max_words)
        skip = re.match(rf"\s*(?:\S+\s+){{{len(cut.split())}}}", text)
        assert skip is not None
        self._pending, self._first_sent = text[skip.end() :], True
        return _bounded([cut])

    def _closed_groups(self) -> list[str] | None:
        """Inside an unfinished sentence: the groups of clauses `_group_clauses` has closed already (the next
        clause, even unfinished, would make the group longer than a phrase may be)."""
        text = self._pending
        groups: list[str] = []
        current: list[str] = []
        current_start = clause_start = 0
        for match in [*_CLAUSE_END.finditer(text), None]:
            clause = text[clause_start : match.start() if match is not None else len(text)].strip()
            if clause:
                if current and len(" ".join([*current, clause]).split()) > _LONG_SENTENCE_WORDS:
                    groups.append(" ".join(current))
                    current, current_start = [], clause_start
                current.append(clause)
            if match is not None:
                clause_start = match.end()
        if not groups:
            return None
        self._pending = text[current_start:]
        return _bounded(groups)


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
