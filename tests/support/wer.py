"""Word error rate with OpenAI-Whisper-style light normalisation (case, punctuation, number words)."""

from __future__ import annotations

import re

import jiwer

_NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
            "nine": "9", "ten": "10"}


def normalise(text: str) -> str:
    words = re.sub(r"[^\w\s']", " ", text.lower()).split()
    return " ".join(_NUMBERS.get(w, w) for w in words)


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>")
