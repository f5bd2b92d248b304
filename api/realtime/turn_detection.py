"""Turn detection on the input timeline: `server_vad` and `semantic_vad`, both on Silero VAD.

Positions are 16 kHz samples on the session timeline (see `input_buffer`). Semantics follow OpenAI's event docs:
- `speech_started.audio_start_ms` is where the committed audio begins: the first speech window minus
  `prefix_padding_ms` (so it includes the padding).
- `speech_stopped.audio_end_ms` is where the committed audio ends: the end of the last speech window plus the
  silence that confirmed the end (so it includes `silence_duration_ms`).
- `idle_timeout_ms` is measured on received audio, not the wall clock: a client streaming a microphone sends
  audio continuously, and audio time makes the behaviour reproducible.

Speech begins on a window whose probability reaches `threshold`; it ends after `silence_duration_ms` of windows
below `threshold - 0.15` (Silero's own hysteresis), so one dip does not end a turn.

`semantic_vad` has no end-of-turn model here. It is the best logic available without one: Silero VAD for speech,
and a silence wait that depends on how the transcript of the turn reads (`turn_end`):
- a question or an exclamation (ends in ? or !) hands the turn over: the short wait (high 300 ms, medium/auto
  600 ms, low 1200 ms);
- a finished statement (ends in . and not in a filler, conjunction or article, nor a lone dependent clause such as
  "When I got home." ; a preposition only before a question mark) waits longer (high 1.2 s, medium/auto 1.8 s, low
  3 s): Whisper writes the comma pause of "The hotel was nice, [pause] but the food was cold." as "The hotel was
  nice." and no transcript can tell that clause from a finished turn (measured, bench/turn_ends.py: with the short
  wait for statements too, 7 of 20 speakers pausing 0.6-0.9 s mid-sentence were cut off);
- an unfinished one waits up to the eagerness ceiling (low 8 s, medium/auto 4 s, high 2 s, OpenAI's documented
  maxima).
The transcript is the one a pass over *all* the speech up to the pause produced (the session's speculative pass,
started 200 ms into a pause): an older partial of a sentence still being spoken must not end it. While no pass has
covered the pause, the wait is halfway between the short wait and the ceiling.

`server_vad` waits `silence_duration_ms`, as OpenAI's does. A server may opt in to eager turn ends for it
(`VOXLOOP_REALTIME__SERVER_VAD_EAGER_MS`): a turn whose covering transcript is a finished question or exclamation
ends after that much silence instead; a statement or an unfinished one still waits the full `silence_duration_ms`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from api.realtime.input_buffer import RATE, samples_at
from api.realtime.session_config import SemanticVad, ServerVad
from engines.silero_vad import SileroVad

_HYSTERESIS = 0.15
# eagerness -> silence (ms) after a finished question or exclamation, after a finished statement, and the ceiling for
# an unfinished one
_SEMANTIC_WAITS = {"high": (300, 1200, 2000), "auto": (600, 1800, 4000), "medium": (600, 1800, 4000),
                   "low": (1200, 3000, 8000)}
TurnEnd = Literal["handover", "statement", "unfinished"]
# Words no English utterance ends on (conjunctions, fillers, articles, possessives, auxiliaries), and prepositions,
# which end a question ("Who did you go with?") but rarely a statement.
_UNFINISHED = re.compile(
    r"(\b(and|but|or|so|because|cause|since|although|though|if|when|while|then|that|which|who|whose|um+|uh+|er+|hmm+|"
    r"like|the|a|an|my|your|his|her|our|their|its|this|these|those|is|are|was|were|am|be|been|have|has|had|do|does|"
    r"did|will|would|can|could|should|must|not|very|really|just)|[,;:-]|\.\.\.|…)\W*$",
    re.IGNORECASE,
)
_PREPOSITION = re.compile(r"\b(to|of|in|on|at|for|with|from|by|about|into|over|under|after|before)\W*$", re.IGNORECASE)
_FINISHED = re.compile(r"[.?!]\W*$")


# A last sentence that opens with a subordinating conjunction and has no comma is a clause still waiting for its
# main clause: Whisper writes the comma pause of "When I got home, [pause] I made dinner." as "When I got home."
_DEPENDENT = re.compile(
    r"^(when|whenever|if|unless|after|before|although|though|even though|while|since|once|until|as soon as|whether)"
    r"\b[^,;]*$", re.IGNORECASE)
# Phrases a speaker holds the turn with ("Let me think." while the "um" after it goes unheard).
_HOLDING = re.compile(r"\b(let me (think|see|check)|hold on|wait a (second|moment|minute)|one (second|moment)|"
                      r"tell me|give me|show me)\W*$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def reads_finished(text: str) -> bool:
    """Whether a transcript reads as a finished utterance (the only end-of-turn signal besides silence)."""
    text = text.strip()
    if not text or not _FINISHED.search(text) or _UNFINISHED.search(text) or _HOLDING.search(text):
        return False
    last = _SENTENCE_END.split(text)[-1]
    if _DEPENDENT.search(last.rstrip(".?!… ")):
        return False
    return text.endswith("?") or not _PREPOSITION.search(text)


def turn_end(text: str) -> TurnEnd:
    """How a transcript ends a turn: a finished question or exclamation hands it over; a finished statement may
    still be a clause the speaker goes on from; anything else is unfinished."""
    if not reads_finished(text):
        return "unfinished"
    return "handover" if text.rstrip("\"'”’ )").endswith(("?", "!")) else "statement"


@dataclass(frozen=True)
class TurnEvent:
    kind: Literal["speech_started", "speech_stopped", "timeout"]
    start: int  # timeline samples
    end: int = 0


class TurnDetector:
    """Feeds 16 kHz samples through Silero and reports turn boundaries on the session timeline."""

    def __init__(
        self, config: ServerVad | SemanticVad, vad: SileroVad, position: int, *,
        transcript: Callable[[int], str | None] | None = None, eager_ms: int | None = None,
    ):
        """`transcript(speech_end)`: the text of a pass over all the turn's speech up to that speech end, None while
        there is none; `eager_ms`: server_vad's opt-in silence for a turn that reads as finished (None: off)."""
        self.config = config
        self._vad = vad
        self._transcript = transcript or (lambda _end: None)
        self._eager_ms = eager_ms
        self._pending = np.zeros(0, np.float32)
        self._position = position  # timeline position of the first sample in _pending
        self.speaking = False
        self._speech_start = 0
        self._last_speech_end = 0
        self._idle_since = position

    @property
    def threshold(self) -> float:
        return self.config.threshold if isinstance(self.config, ServerVad) else 0.5

    def _silence_needed(self) -> int:
        if isinstance(self.config, ServerVad):
            full = self.config.silence_duration_ms
            if self._eager_ms is None or self._eager_ms >= full:
                return samples_at(full)
            text = self._transcript(self._last_speech_end)
            return samples_at(self._eager_ms if text is not None and turn_end(text) == "handover" else full)
        handover, statement, ceiling = _SEMANTIC_WAITS[self.config.eagerness]
        text = self._transcript(self._last_speech_end)
        if text is None:
            return samples_at((handover + ceiling) // 2)
        return samples_at({"handover": handover, "statement": statement, "unfinished": ceiling}[turn_end(text)])

    def feed(self, samples: np.ndarray) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        pending = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        window = self._vad.window
        used = 0
        while len(pending) - used >= window:
            prob = self._vad.probability(pending[used : used + window])
            start = self._position + used
            used += window
            event = self._step(prob, start, start + window)
            if event is not None:
                events.append(event)
        self._pending = pending[used:].copy()
        self._position += used
        return events

    def _step(self, prob: float, start: int, end: int) -> TurnEvent | None:
        if not self.speaking:
            if prob >= self.threshold:
                self.speaking = True
                self._speech_start = start
                self._last_speech_end = end
                padding = samples_at(getattr(self.config, "prefix_padding_ms", 300))
                return TurnEvent("speech_started", max(0, start - padding))
            timeout = getattr(self.config, "idle_timeout_ms", None)
            if timeout and end - self._idle_since >= samples_at(timeout):
                began, self._idle_since = self._idle_since, end
                return TurnEvent("timeout", began, end)
            return None
        if prob >= self.threshold - _HYSTERESIS:
            self._last_speech_end = end
            return None
        if end - self._last_speech_end >= self._silence_needed():
            self.speaking = False
            self._idle_since = end
            return TurnEvent("speech_stopped", self._speech_start, end)
        return None

    @property
    def last_speech_end(self) -> int:
        return self._last_speech_end

    def reset(self, position: int) -> None:
        """Forget the current turn (after a manual commit or clear); the next speech starts a new one."""
        self.speaking = False
        self._idle_since = position


def seconds(samples: int) -> float:
    return samples / RATE
