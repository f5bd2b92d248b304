"""Streaming LLM text → speakable phrases, as early as they are safe to speak.

The first phrase leaves as soon as a clause boundary appears after a few words (time to first audio matters most);
later phrases wait for sentence ends, or for a clause boundary once they grow long, so the voice keeps its prosody.
Think blocks (`<think>…</think>`, split across chunks or not) never reach the voice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—–]\s|\s-\s")
_ABBREVIATIONS = ("mr.", "mrs.", "ms.", "dr.", "e.g.", "i.e.", "etc.", "vs.", "st.", "no.")
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


@dataclass
class ThinkFilter:
    """Drops `<think>…</think>` from a token stream whose tags may be split across chunks."""

    _inside: bool = False
    _held: str = ""

    def feed(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        out = []
        while text:
            tag = _THINK_CLOSE if self._inside else _THINK_OPEN
            index = text.find(tag)
            if index >= 0:
                if not self._inside:
                    out.append(text[:index])
                text = text[index + len(tag) :]
                self._inside = not self._inside
                continue
            keep = _partial_suffix(text, tag)  # a tag may be cut in two by the chunking
            if not self._inside:
                out.append(text[: len(text) - keep])
            self._held = text[len(text) - keep :]
            break
        return "".join(out)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self._inside else held


def _partial_suffix(text: str, tag: str) -> int:
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


@dataclass
class PhraseChunker:
    first_min_words: int = 3
    # With no punctuation yet, the first phrase leaves after this many whole words: the time to first audio is the
    # time to generate and synthesize it, and a voice that starts a beat early beats one that waits for a comma.
    first_cut_words: int = 4
    min_words: int = 6
    long_words: int = 18
    _buffer: str = ""
    _emitted: int = 0
    _think: ThinkFilter = field(default_factory=ThinkFilter)

    def feed(self, delta: str) -> Iterator[str]:
        self._buffer += self._think.feed(delta)
        while (phrase := self._next_phrase()) is not None:
            self._emitted += 1
            yield phrase

    def flush(self) -> Iterator[str]:
        self._buffer += self._think.flush()
        rest, self._buffer = self._buffer.strip(), ""
        if rest:
            self._emitted += 1
            yield rest

    def _next_phrase(self) -> str | None:
        minimum = self.first_min_words if self._emitted == 0 else self.min_words
        for match in _SENTENCE_END.finditer(self._buffer):
            candidate = self._buffer[: match.end()]
            if candidate.rstrip().lower().endswith(_ABBREVIATIONS):
                continue
            if len(candidate.split()) >= min(minimum, 2):
                return self._take(match.end())
        words = len(self._buffer.split())
        if self._emitted == 0 and words > self.first_cut_words:  # more words than N: the first N are whole
            whole = re.match(rf"\s*(?:\S+\s+){{{self.first_cut_words}}}", self._buffer)
            if whole is not None:
                return self._take(whole.end())
        if words >= (minimum if self._emitted == 0 else self.long_words):
            clauses = list(_CLAUSE_END.finditer(self._buffer))
            for match in clauses:
                if len(self._buffer[: match.end()].split()) >= minimum:
                    return self._take(match.end())
        return None

    def _take(self, end: int) -> str:
        phrase, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
        return phrase
