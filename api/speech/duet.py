"""The dual-TTS router: per turn, the fast plain voice or the expressive one, with voice settings and a reason.

Inputs, strongest first: an explicit emotion (the user turn's, from /v1/emotion, or the caller's), the request's
`instructions` ("say it cheerfully"), the paralinguistic tags in the text (an LLM writing [laugh] wants a lively
voice). A turn with any of these goes to the expressive role, whose style follows the emotion; a plain turn goes
to the fast role. Roles are settings (`tts.fast_model`, `tts.expressive_model`); offline they are Piper (fast)
and Kokoro (expressive by style vector). No FastAPI, no engines loaded: decisions use the registry's specs only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from api.speech.paralinguistics import TAG_EMOTION
from engines.base import SynthesizerCapabilities
from engines.registry import EngineSpec

Role = Literal["fast", "expressive"]
ROUTER_MODEL_ID = "voxloop-duet"
EMOTIONS = ("neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted", "calm")
# Kokoro's five styles, matched to emotions by how they sound speaking English (a judgement, not a measurement).
KOKORO_EMOTION_STYLES: dict[str, str] = {
    "neutral": "jf_alpha",
    "happy": "jf_nezumi",
    "surprised": "jf_nezumi",
    "sad": "jf_gongitsune",
    "calm": "jf_tebukuro",
    "fearful": "jf_tebukuro",
    "angry": "jm_kumo",
    "disgusted": "jm_kumo",
}
# Prosody that goes with each emotion: a speed factor on top of the requested speed.
EMOTION_SPEED: dict[str, float] = {
    "happy": 1.05, "surprised": 1.08, "sad": 0.9, "calm": 0.94, "fearful": 1.06, "angry": 1.04, "disgusted": 0.97,
}
_EMOTION_ALIASES: dict[str, str] = {
    "joy": "happy", "joyful": "happy", "excited": "happy", "angry": "angry", "anger": "angry", "sadness": "sad",
    "fear": "fearful", "surprise": "surprised", "disgust": "disgusted", "other": "neutral", "unknown": "neutral",
}
# Words in `instructions` that name a feeling (checked in order; the first match wins).
_INSTRUCTION_CUES: tuple[tuple[str, str], ...] = (
    (r"cheer|happ|joy|excit|upbeat|enthusias|bright|playful|laugh|smil|delight", "happy"),
    (r"\bsad|somber|sombre|melanchol|sorrow|grie|mourn|down\b|depress|gloomy|sympath|empath", "sad"),
    (r"angr|furious|stern|irritat|annoy|harsh|rage|mad\b", "angry"),
    (r"fear|scared|nervous|anxious|afraid|worried|tense", "fearful"),
    (r"surpris|amaz|astonish|shock|wow", "surprised"),
    (r"disgust|revuls|gross", "disgusted"),
    (r"calm|sooth|gentl|soft|whisper|relax|quiet|warm|tender|slow", "calm"),
)
_PLAIN_CUES = re.compile(
    r"\b(neutral\w*|plain(ly)?|flat(ly)?|monoton\w*|fast|quick(ly)?|brief(ly)?|robotic|news\w*|informative|"
    r"matter[- ]of[- ]fact)\b",
    re.I,
)


@dataclass(frozen=True)
class RouteRequest:
    text: str
    emotion: str | None = None
    tags: tuple[str, ...] = ()
    instructions: str | None = None


@dataclass(frozen=True)
class RouteDecision:
    role: Role
    model: str
    voice: str
    emotion: str
    speed_factor: float
    reason: str


def normalise_emotion(emotion: str | None) -> str | None:
    if not emotion:
        return None
    e = emotion.strip().lower()
    e = _EMOTION_ALIASES.get(e, e)
    return e if e in EMOTIONS else None


def emotion_from_instructions(instructions: str | None) -> tuple[str | None, str]:
    """(emotion, the cue that named it). `None` when the instructions say nothing about feeling."""
    if not instructions:
        return None, ""
    for pattern, emotion in _INSTRUCTION_CUES:
        m = re.search(pattern, instructions, re.I)
        if m:
            return emotion, m.group(0)
    plain = _PLAIN_CUES.search(instructions)
    return ("neutral", plain.group(0)) if plain else (None, "")


class DuetRouter:
    """Chooses between two speech models. Built from settings and the two models' capabilities."""

    def __init__(
        self,
        fast_model: str,
        fast_caps: SynthesizerCapabilities,
        expressive_model: str,
        expressive_caps: SynthesizerCapabilities,
    ):
        self.fast_model, self.expressive_model = fast_model, expressive_model
        self._fast_caps, self._expressive_caps = fast_caps, expressive_caps

    def route(self, req: RouteRequest) -> RouteDecision:
        emotion, why = self._emotion(req)
        if emotion in (None, "neutral"):
            voice = self._fast_caps.default_voice()
            reason = why or "plain text: no emotion, emotional tags or expressive instructions"
            return RouteDecision("fast", self.fast_model, voice, "neutral", 1.0, f"fast: {reason}")
        voice = self._style(emotion)
        return RouteDecision(
            "expressive", self.expressive_model, voice, emotion, EMOTION_SPEED.get(emotion, 1.0),
            f"expressive: {why}; style {voice}",
        )

    def _emotion(self, req: RouteRequest) -> tuple[str | None, str]:
        explicit = normalise_emotion(req.emotion)
        if explicit is not None:
            return explicit, f"emotion={explicit} (given)"
        from_instructions, cue = emotion_from_instructions(req.instructions)
        if from_instructions is not None:
            return from_instructions, f"instructions say '{cue}' ({from_instructions})"
        tag_emotion = self._emotion_of_tags(req.tags)
        if tag_emotion is not None:
            return tag_emotion, f"tags {','.join(req.tags)} ({tag_emotion})"
        return None, ""

    @staticmethod
    def _emotion_of_tags(tags: tuple[str, ...]) -> str | None:
        return next((TAG_EMOTION[t] for t in tags if t in TAG_EMOTION and TAG_EMOTION[t] != "neutral"), None)

    def _style(self, emotion: str) -> str:
        wanted = KOKORO_EMOTION_STYLES.get(emotion, KOKORO_EMOTION_STYLES["neutral"])
        if self._expressive_caps.voice(wanted) is not None:
            return wanted
        return self._expressive_caps.default_voice()  # another expressive engine: its default voice


class _DuetHandle:
    """What the model manager would hold if asked to load the router: nothing (the router loads no weights)."""

    def close(self) -> None:
        return None


def duet_spec(fast_model: str, expressive_model: str) -> EngineSpec:
    """The router, listed like a model so clients can choose it; the speech service resolves it to a role."""
    return EngineSpec(
        ROUTER_MODEL_ID,
        "speech",
        _DuetHandle,
        aliases=("duet", "voxloop-router"),
        description=f"Dual-TTS router: {fast_model} (fast, plain) or {expressive_model} (expressive, style by "
        "emotion), chosen per request from emotion, instructions and tags. Says why in X-Voxloop-Route-Reason.",
    )
