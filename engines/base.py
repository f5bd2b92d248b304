"""What an engine is: one Protocol per capability, the value types they exchange, and their errors.

Engines are synchronous and may block; the model manager runs them on their own threads. They raise
`EngineError` subclasses (never HTTP errors), download nothing in `__init__`, and check a cancel token between
chunks of work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

# --- errors -------------------------------------------------------------------------------------------------


class EngineError(Exception):
    """Base class of everything an engine raises on purpose."""


class InvalidAudioError(EngineError):
    """The input is not decodable audio, or has no audio stream."""


class UnsupportedOptionError(EngineError):
    """The engine cannot honour an option the request set (e.g. a language an English-only model lacks)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class EngineUnavailableError(EngineError):
    """The engine's model cannot be loaded here (missing extra, missing weights)."""


class EngineOverloadedError(EngineError):
    """The engine's admission limit is reached."""


class InsufficientMemoryError(EngineError):
    """The model does not fit its device's memory budget. `retryable`: it would fit once busy models go idle;
    otherwise it is larger than the whole budget and never will."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class UpstreamRejectedError(UnsupportedOptionError):
    """A remote engine refused the request as the client's fault (its 4xx): passed on with its status and words."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None, code: str | None = None):
        super().__init__(message, param=param)
        self.status = status
        self.code = code


class UpstreamFailedError(EngineError):
    """A remote engine failed on its side (its 5xx, a broken answer): a bad gateway, not our engine failing."""


class EngineTimeoutError(EngineError):
    """A remote engine did not answer within its timeout."""


class CancelledByClient(EngineError):
    """The caller went away; the engine stopped between chunks."""


# --- value types --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioBuffer:
    """Mono float32 samples in [-1, 1] at `sample_rate`, starting `offset` seconds into the source."""

    samples: np.ndarray
    sample_rate: int
    offset: float = 0.0

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    probability: float | None = None


@dataclass(frozen=True)
class Segment:
    """One transcribed segment, with every field OpenAI's verbose_json has."""

    id: int
    start: float
    end: float
    text: str
    seek: int = 0
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: tuple[Word, ...] = ()
    speaker: str | None = None


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    duration: float
    segments: tuple[Segment, ...] = ()

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)


@dataclass(frozen=True)
class TranscriptionOptions:
    task: Literal["transcribe", "translate"] = "transcribe"
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = False
    vad_filter: bool = True
    vad_threshold: float = 0.5
    vad_min_silence_ms: int = 160
    vad_speech_pad_ms: int = 300
    # A live partial that a later pass replaces (realtime turns while spoken): the engine's cheapest decode (Whisper:
    # greedy, one temperature, no tail recovery), so that the pass after a pause does not wait long behind it.
    draft: bool = False
    # Diarization (engines whose capabilities say `diarization`): label each segment with a speaker; known speakers
    # (name, 16 kHz reference clip) are matched by voice and their names used instead of SPEAKER_nn labels.
    diarize: bool = False
    known_speakers: tuple[tuple[str, AudioBuffer], ...] = ()


@dataclass
class CancelToken:
    """Set by the caller when the client goes away; engines check it between chunks."""

    _event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledByClient("the request was cancelled")


@dataclass(frozen=True)
class TranscriberCapabilities:
    languages: frozenset[str] | None  # None: multilingual (any Whisper language)
    translate: bool
    word_timestamps: bool
    diarization: bool = False
    streaming: bool = False  # has `stream_transcribe` (a `StreamingTranscriber`): live audio in, text as it comes


@dataclass(frozen=True)
class StreamingUpdate:
    """What a streaming transcriber says after each chunk: the transcript so far and what changed."""

    text: str  # the whole transcript so far
    delta: str  # text appended since the previous update ('' when nothing new was recognised)
    final: bool = False  # the input ended and every frame is decoded
    decoded_seconds: float | None = None  # the input audio the text accounts for (None: not told)


@dataclass(frozen=True)
class TranscriptionInfo:
    language: str
    duration: float


# --- protocols ----------------------------------------------------------------------------------------------


@runtime_checkable
class Engine(Protocol):
    """What the model manager needs of any loaded engine.

    An engine may also define `memory_bytes() -> int | None`: what it really took when loaded, if it can measure
    that (torch on CUDA). The manager then budgets with it instead of the spec's estimate.
    """

    def close(self) -> None: ...


@runtime_checkable
class Transcriber(Engine, Protocol):
    capabilities: ClassVar[TranscriberCapabilities] | TranscriberCapabilities

    def transcribe(
        self, audio: AudioBuffer, options: TranscriptionOptions, cancel: CancelToken
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """Start transcribing; segments arrive lazily (for streaming) with times relative to `audio.offset`."""
        ...


# --- emotion ------------------------------------------------------------------------------------------------

# emotion2vec+'s nine classes, in its token order; every emotion engine reports scores over exactly these.
EMOTION_LABELS: tuple[str, ...] = (
    "angry", "disgusted", "fearful", "happy", "neutral", "other", "sad", "surprised", "unknown",
)


@dataclass(frozen=True)
class EmotionScores:
    """One emotion estimate: a distribution over `EMOTION_LABELS` plus circumplex valence/arousal in [-1, 1].

    `speech` is False when there was no speech to judge (the label is then `unknown`). `features` carries what
    an engine measured (e.g. the baseline's loudness, pitch and rate) for verbose responses and debugging.
    """

    label: str
    scores: tuple[tuple[str, float], ...]
    valence: float
    arousal: float
    speech: bool = True
    features: tuple[tuple[str, float], ...] = ()

    @property
    def score_map(self) -> dict[str, float]:
        return dict(self.scores)


@dataclass(frozen=True)
class EmotionSegment:
    """An emotion estimate for one VAD speech segment, times in seconds from the start of the clip."""

    start: float
    end: float
    emotion: EmotionScores
    text: str | None = None


@dataclass(frozen=True)
class EmotionOptions:
    # What was said, for engines that read the words (the lexicon baseline); None when unknown.
    transcript: str | None = None


@dataclass(frozen=True)
class EmotionCapabilities:
    labels: tuple[str, ...] = EMOTION_LABELS
    # True when the engine's valence comes from the words, so the service must transcribe first.
    uses_transcript: bool = False


@runtime_checkable
class EmotionRecognizer(Engine, Protocol):
    capabilities: ClassVar[EmotionCapabilities] | EmotionCapabilities

    def recognize(self, audio: AudioBuffer, options: EmotionOptions, cancel: CancelToken) -> EmotionScores:
        """Judge the whole buffer as one utterance (the service cuts segments itself)."""


# --- speech synthesis ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Voice:
    """One voice an engine can speak: its id, language and what it can do."""

    id: str
    name: str
    language: str
    gender: str | None = None
    description: str = ""
    # Paralinguistic tags (e.g. "laugh") this voice renders as sound; every other tag is stripped or mapped.
    tags: frozenset[str] = frozenset()
    cloning: bool = False
    # OpenAI voice names the engine itself maps onto this voice (a remote's own mapping); empty for local engines,
    # whose OpenAI names the speech service maps.
    openai_aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class SynthesizerCapabilities:
    voices: tuple[Voice, ...]
    sample_rate: int
    # Engine-native speed range; the service stretches the rest of an OpenAI speed (0.25-4.0) itself.
    min_speed: float = 0.5
    max_speed: float = 2.0
    streaming: bool = True
    tags: frozenset[str] = frozenset()
    cloning: bool = False
    # Voice blending ("a:0.6+b:0.4"): styles are vectors that can be mixed.
    blending: bool = False
    # The engine checks voice ids itself (a remote server): any id, OpenAI names included, is passed on as given
    # and an unknown one is refused by the engine, in its own words.
    checks_voices: bool = False
    # Takes `exaggeration` and `cfg_weight` (the original Chatterbox's emotion intensity and guidance).
    expressive_controls: bool = False

    def voice(self, voice_id: str) -> Voice | None:
        return next((v for v in self.voices if v.id == voice_id), None)

    def default_voice(self) -> str:
        # A remote not reached yet lists no voices; OpenAI's first name is one every OpenAI-compatible server takes.
        return self.voices[0].id if self.voices else "alloy"


@dataclass(frozen=True)
class VoiceReference:
    """A custom voice to clone: its id and its reference recording (mono wav on disk, written once, never changed)."""

    voice_id: str
    path: Path


@dataclass(frozen=True)
class SynthesisOptions:
    voice: str
    speed: float = 1.0
    language: str = "en-us"
    # Set only for engines whose capabilities say `cloning`: speak like this recording (`voice` is then its id).
    reference: VoiceReference | None = None
    # The feeling asked for (the request's emotion or instructions, or the router's choice); engines with expressive
    # controls map it onto them. None: say it plainly.
    emotion: str | None = None
    # Explicit controls from the request (engines with `expressive_controls`); None: the engine's own mapping.
    exaggeration: float | None = None
    cfg_weight: float | None = None


@dataclass(frozen=True)
class AudioChunk:
    """A piece of synthesized speech (mono float32), with the text it speaks when known."""

    samples: np.ndarray
    sample_rate: int
    text: str = ""

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@runtime_checkable
class Synthesizer(Engine, Protocol):
    capabilities: ClassVar[SynthesizerCapabilities] | SynthesizerCapabilities

    def voices(self) -> list[Voice]: ...

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        """Speak `text`, yielding chunks as soon as each phrase is ready; checks `cancel` between chunks."""


@runtime_checkable
class StreamingTranscriber(Transcriber, Protocol):
    """A transcriber that decodes live audio as it arrives (cache-aware streaming models)."""

    def stream_transcribe(
        self, chunks: Iterable[AudioBuffer], options: TranscriptionOptions, cancel: CancelToken
    ) -> Iterator[StreamingUpdate]:
        """Yield an update per decoded chunk while `chunks` is consumed; the last one has `final=True`."""
        ...
