"""GA nested <-> beta flat session mapping, delta merge, and rendering that the SDK's session types accept."""

from __future__ import annotations

import pytest
from openai.types.beta.realtime import Session as BetaSession
from openai.types.beta.realtime.transcription_session import TranscriptionSession
from openai.types.realtime import RealtimeSessionCreateRequest, RealtimeTranscriptionSessionCreateRequest

from api.realtime.session_config import (
    InvalidSessionError,
    SemanticVad,
    ServerVad,
    SessionConfig,
    apply_update,
    is_beta_shaped,
    render_beta,
    render_beta_transcription,
    render_ga,
)
from api.speech.protocol import CustomVoice


def test_ga_update_changes_only_the_fields_sent() -> None:
    base = SessionConfig(instructions="be brief", voice="verse")
    updated = apply_update(base, {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad", "silence_duration_ms": 800}}}},
        beta=False)
    assert updated.input_format == "g711_ulaw"
    assert updated.turn_detection == ServerVad(silence_duration_ms=800)
    assert (updated.instructions, updated.voice, updated.output_format) == ("be brief", "verse", "pcm16")


def test_beta_flat_update_maps_to_the_same_config() -> None:
    ga = apply_update(SessionConfig(), {"type": "realtime", "output_modalities": ["text"], "audio": {
        "input": {"format": {"type": "audio/pcma"}, "transcription": {"model": "whisper-1", "language": "en"},
                  "turn_detection": {"type": "semantic_vad", "eagerness": "high"}},
        "output": {"voice": "ash", "speed": 1.2}}, "max_output_tokens": 100}, beta=False)
    beta = apply_update(SessionConfig(), {
        "modalities": ["text"], "input_audio_format": "g711_alaw",
        "input_audio_transcription": {"model": "whisper-1", "language": "en"},
        "turn_detection": {"type": "semantic_vad", "eagerness": "high"}, "voice": "ash", "speed": 1.2,
        "max_response_output_tokens": 100}, beta=True)
    assert ga == beta
    assert ga.turn_detection == SemanticVad(eagerness="high")


def test_null_clears_a_field_and_beta_modalities_map() -> None:
    config = apply_update(SessionConfig(), {"turn_detection": None, "modalities": ["audio", "text"]}, beta=True)
    assert config.turn_detection is None and config.output_modalities == ["audio"]


def test_beta_shape_detection() -> None:
    assert is_beta_shaped({"turn_detection": None})
    assert not is_beta_shaped({"type": "realtime", "instructions": "x"})
    assert not is_beta_shaped({"instructions": "x"})


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"type": "realtime", "audio": {"input": {"format": {"type": "audio/ogg"}}}},
         "session.audio.input.format.type"),
        ({"type": "realtime", "audio": {"output": {"speed": 9}}}, "session.audio.output.speed"),
        ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "loud_vad"}}}},
         "session.audio.input.turn_detection"),
        ({"type": "nonsense"}, "session.type"),
    ],
)
def test_invalid_updates_name_the_wire_field(session: dict, param: str) -> None:
    with pytest.raises(InvalidSessionError) as info:
        apply_update(SessionConfig(), session, beta=False)
    assert info.value.param.startswith(param)


def test_renderings_validate_against_the_sdk_types() -> None:
    config = apply_update(SessionConfig(model="gpt-realtime"), {"type": "realtime", "audio": {"input": {
        "transcription": {"model": "whisper-1"}}}}, beta=False)
    RealtimeSessionCreateRequest.model_validate(render_ga(config, "sess_1"))
    BetaSession.model_validate(render_beta(config, "sess_1"))
    transcription = config.model_copy(update={"kind": "transcription"})
    RealtimeTranscriptionSessionCreateRequest.model_validate(render_ga(transcription, "sess_1"))
    TranscriptionSession.model_validate(render_beta_transcription(transcription, "sess_1"))
    assert render_ga(transcription, "sess_1")["type"] == "transcription"


def test_a_custom_voice_stays_a_custom_voice_and_renders_back_as_sent() -> None:
    """`{"id": ...}` names a custom voice (OpenAI's shape), never a built-in one; both dialects echo it back."""
    ga = apply_update(SessionConfig(), {"type": "realtime", "audio": {"output": {"voice": {"id": "voice_abc"}}}},
                      beta=False)
    beta = apply_update(SessionConfig(), {"voice": {"id": "voice_abc"}}, beta=True)
    assert ga.voice == beta.voice == CustomVoice(id="voice_abc")
    assert render_ga(ga, "sess_1")["audio"]["output"]["voice"] == {"id": "voice_abc"}
    assert render_beta(beta, "sess_1")["voice"] == {"id": "voice_abc"}
