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
and a silence wait that depends on whether the live transcript reads as a finished sentence (ends in . ? ! and
not in a filler or conjunction). Finished turns end after a short silence, unfinished ones wait up to the
eagerness ceiling (low 8 s, medium/auto 4 s, high 2 s, OpenAI's documented maxima).
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
# eagerness -> (silence after a finished-looking sentence, ceiling for an unfinished one), in ms
_SEMANTIC_WAITS = {"high": (300, 2000), "auto": (600, 4000), "medium": (600, 4000), "low": (1200, 8000)}
_UNFINISHED = re.compile(r"(\b(and|but|or|so|because|um+|uh+|er+|like|the|a|to|of)|[,;:-])\W*$", re.IGNORECASE)
_FINISHED = re.compile(r"[.?!]\W*$")


@dataclass(frozen=True)
class TurnEvent:
    kind: Literal["speech_started", "speech_stopped", "timeout"]
    start: int  # timeline samples
    end: int = 0


class TurnDetector:
    """Feeds 16 kHz samples through Silero and reports turn boundaries on the session timeline."""

    def __init__(
        self, config: ServerVad | SemanticVad, vad: SileroVad, position: int, *,
        transcript: Callable[[], str] | None = None,
    ):
        self.config = config
        self._vad = vad
        self._transcript = transcript or (lambda: "")
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
            return samples_at(self.config.silence_duration_ms)
        finished, ceiling = _SEMANTIC_WAITS[self.config.eagerness]
        text = self._transcript().strip()
        if text and _FINISHED.search(text) and not _UNFINISHED.search(text):
            return samples_at(finished)
        return samples_at(ceiling if text else (finished + ceiling) // 2)

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
