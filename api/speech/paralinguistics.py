"""Paralinguistic tags: the documented vocabulary, and what happens to a tag the speaking engine cannot render.

Tags are written `[laugh]` (also accepted: `<laugh>` and `*laughs*`, which LLMs like to produce). An engine
declares the tags it renders as sound (`SynthesizerCapabilities.tags`); those stay inline for it. Every other tag
is replaced by its prosody fallback (a pause of a fitting length) or dropped, so a tag is never read aloud and
never reaches a transcript. Bracketed stage directions outside the vocabulary (`[smiles]`) are dropped too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# tag -> seconds of silence that stand in for it when the engine cannot make the sound (0: just dropped).
TAG_PROSODY: dict[str, float] = {
    "laugh": 0.3,
    "laughs": 0.3,
    "chuckle": 0.25,
    "giggle": 0.25,
    "sigh": 0.4,
    "gasp": 0.25,
    "cough": 0.3,
    "clear throat": 0.3,
    "sniff": 0.2,
    "groan": 0.3,
    "yawn": 0.4,
    "breath": 0.2,
    "inhale": 0.2,
    "exhale": 0.3,
    "shush": 0.2,
    "hmm": 0.2,
    "pause": 0.5,
    "short pause": 0.25,
    "long pause": 1.0,
}
# Tags that say how the turn feels; the dual-TTS router reads them as emotion hints.
TAG_EMOTION: dict[str, str] = {
    "laugh": "happy", "laughs": "happy", "chuckle": "happy", "giggle": "happy",
    "sigh": "sad", "groan": "sad", "gasp": "surprised", "sniff": "sad", "yawn": "neutral",
}
_TAG = re.compile(r"\[([a-z][a-z _-]{0,30})\]", re.IGNORECASE)
# A pause marker that survives text hygiene and is turned into silence by the speech service.
PAUSE_MARK = re.compile(r"\u2063(\d+(?:\.\d+)?)\u2063")


def canonical(tag: str) -> str:
    """Lower case, single spaces, and inflections folded: `Sighs` and `sighing` are `sigh`."""
    tag = " ".join(tag.lower().replace("_", " ").replace("-", " ").split())
    for suffix in ("s", "ing", "es"):
        if tag not in TAG_PROSODY and tag.endswith(suffix) and tag[: -len(suffix)] in TAG_PROSODY:
            return tag[: -len(suffix)]
    return tag


def normalise_tag_syntax(text: str) -> str:
    """`<laugh>` and `*laughs*` become `[laugh]`/`[laughs]` when the word is in the vocabulary."""
    def angle(m: re.Match[str]) -> str:
        return f"[{canonical(m.group(1))}]" if canonical(m.group(1)) in TAG_PROSODY else m.group(0)

    text = re.sub(r"<\s*([a-z][a-z _-]{0,30})\s*/?>", angle, text, flags=re.IGNORECASE)
    return re.sub(r"\*([a-z][a-z _-]{0,30})\*", angle, text, flags=re.IGNORECASE)


@dataclass
class TagReport:
    found: list[str] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)
    mapped: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def find_tags(text: str) -> list[str]:
    return [canonical(m.group(1)) for m in _TAG.finditer(text) if canonical(m.group(1)) in TAG_PROSODY]


def apply_tags(text: str, supported: frozenset[str]) -> tuple[str, TagReport]:
    """Keep the tags the engine renders, turn the rest into pause marks (see `PAUSE_MARK`) or nothing."""
    report = TagReport()

    def replace(m: re.Match[str]) -> str:
        tag = canonical(m.group(1))
        if tag not in TAG_PROSODY:
            report.dropped.append(tag)  # a stage direction like [smiles]: never spoken
            return " "
        report.found.append(tag)
        if tag in supported:
            report.rendered.append(tag)
            return f" [{tag}] "
        seconds = TAG_PROSODY[tag]
        if seconds <= 0:
            report.dropped.append(tag)
            return " "
        report.mapped.append(tag)
        return f" \u2063{seconds:g}\u2063 "

    out = _TAG.sub(replace, text)
    return " ".join(out.split()), report


def split_pauses(text: str) -> list[str | float]:
    """Text pieces and pause lengths in order (pauses from `apply_tags`), empty pieces dropped."""
    out: list[str | float] = []
    pos = 0
    for m in PAUSE_MARK.finditer(text):
        piece = text[pos : m.start()].strip()
        if piece:
            out.append(piece)
        out.append(float(m.group(1)))
        pos = m.end()
    rest = text[pos:].strip()
    if rest:
        out.append(rest)
    return out


def strip_all(text: str) -> str:
    """The text with every tag and pause mark removed (what a transcript of the turn should say)."""
    return " ".join(PAUSE_MARK.sub(" ", _TAG.sub(" ", normalise_tag_syntax(text))).split())
