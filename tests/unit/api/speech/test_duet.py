"""The dual-TTS router: fast for plain turns, expressive (style by emotion) otherwise, always with a reason."""

from __future__ import annotations

import pytest

from api.speech.duet import DuetRouter, RouteRequest, emotion_from_instructions
from engines.kokoro_onnx import KOKORO_CAPABILITIES
from engines.piper import PIPER_CAPABILITIES
from engines.remote.speech import capabilities_for


@pytest.fixture
def router() -> DuetRouter:
    return DuetRouter("piper-joe", PIPER_CAPABILITIES, "kokoro-82m", KOKORO_CAPABILITIES)


def test_plain_text_goes_fast(router: DuetRouter) -> None:
    d = router.route(RouteRequest("The meeting is at noon."))
    assert (d.role, d.model, d.voice, d.speed_factor) == ("fast", "piper-joe", "en_US-joe-medium", 1.0)
    assert d.reason.startswith("fast:")


@pytest.mark.parametrize(
    ("req", "style", "emotion"),
    [
        (RouteRequest("We won!", emotion="happy"), "jf_nezumi", "happy"),
        (RouteRequest("I lost it.", instructions="Speak in a somber, quiet tone."), "jf_gongitsune", "sad"),
        (RouteRequest("Stop that.", instructions="stern and angry"), "jm_kumo", "angry"),
        (RouteRequest("Ha, good one.", tags=("laugh",)), "jf_nezumi", "happy"),
        (RouteRequest("Oh.", emotion="Sadness"), "jf_gongitsune", "sad"),
    ],
)
def test_emotion_goes_expressive_with_a_matching_style(router: DuetRouter, req: RouteRequest, style: str,
                                                       emotion: str) -> None:
    d = router.route(req)
    assert (d.role, d.model, d.voice, d.emotion) == ("expressive", "kokoro-82m", style, emotion)
    assert emotion in d.reason and style in d.reason


def test_explicit_emotion_beats_instructions_and_plain_instructions_beat_tags(router: DuetRouter) -> None:
    assert router.route(RouteRequest("x", emotion="sad", instructions="cheerful")).emotion == "sad"
    assert router.route(RouteRequest("x", tags=("laugh",), instructions="read it plainly")).role == "fast"
    assert router.route(RouteRequest("x", emotion="neutral", tags=("laugh",))).role == "fast"


def test_instruction_cues() -> None:
    assert emotion_from_instructions("Be upbeat!")[0] == "happy"
    assert emotion_from_instructions("Whisper softly")[0] == "calm"
    assert emotion_from_instructions("Use a British accent")[0] is None


def test_roles_are_settings(router: DuetRouter) -> None:
    swapped = DuetRouter("kokoro-82m", KOKORO_CAPABILITIES, "piper-joe", PIPER_CAPABILITIES)
    d = swapped.route(RouteRequest("yay", emotion="happy"))
    assert (d.model, d.voice) == ("piper-joe", "en_US-joe-medium")  # no emotion styles there: its default voice
    assert swapped.route(RouteRequest("plain")).voice == "jf_alpha"


def test_a_remote_not_reached_yet_is_asked_for_an_openai_voice() -> None:
    unknown = capabilities_for(())  # a remote speech model whose voices are not learnt yet
    d = DuetRouter("piper-joe", PIPER_CAPABILITIES, "chatterbox-remote", unknown).route(RouteRequest("Yay!", "happy"))
    assert (d.role, d.model, d.voice) == ("expressive", "chatterbox-remote", "alloy")
