"""The custom-voice use cases: check uploaded samples and consents, keep them, and hand voices to cloning engines.

No FastAPI here. A voice needs a consent recording that exists (OpenAI's flow: upload the consent, then create
the voice with its id). Withdrawing a consent (DELETE) also deletes every voice made under it: a voice must not
outlive the permission it was made with. Samples are decoded with the same PyAV path as every upload, checked
for length and audible sound, and stored as 24 kHz mono wav.
"""

from __future__ import annotations

import io
import logging

import numpy as np

from api.custom_voices.store import STORE_RATE, RecordStore, StoredRecord, StoreFullError
from api.http.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from api.settings import Settings
from engines.audio import decode_audio
from engines.base import AudioBuffer, InvalidAudioError, VoiceReference
from engines.registry import EngineRegistry

logger = logging.getLogger(__name__)

CONSENT_MAX_SECONDS = 120.0  # a consent phrase is a sentence or two; anything far longer is not one
_FRAME_SECONDS = 0.03
_AUDIBLE_RMS = 0.01  # -40 dBFS: quieter frames count as silence


def audible_seconds(audio: AudioBuffer) -> float:
    """Seconds of `audio` in 30 ms frames louder than -40 dBFS (speech, not room tone or digital silence)."""
    frame = max(1, int(_FRAME_SECONDS * audio.sample_rate))
    usable = (len(audio.samples) // frame) * frame
    if usable == 0:
        return 0.0
    rms = np.sqrt(np.square(audio.samples[:usable].reshape(-1, frame)).mean(axis=1))
    return float((rms > _AUDIBLE_RMS).sum() * frame / audio.sample_rate)


class CustomVoiceService:
    def __init__(self, settings: Settings, registry: EngineRegistry):
        self._settings = settings.voices
        self._registry = registry
        root = settings.voices_dir()
        self.voices = RecordStore(root / "voices", "voice", self._settings.max_records)
        self.consents = RecordStore(root / "consents", "cons", self._settings.max_records)

    # --- audio ------------------------------------------------------------------------------------------------

    def _audio(self, data: bytes, param: str, min_seconds: float, max_seconds: float) -> AudioBuffer:
        limit = self._settings.max_bytes
        if len(data) > limit:
            raise PayloadTooLargeError(f"'{param}' is larger than {limit} bytes.", param=param)
        try:
            audio = decode_audio(io.BytesIO(data), rate=STORE_RATE, max_seconds=max_seconds)
        except InvalidAudioError as exc:
            raise InvalidRequestError(f"'{param}': {exc}", param=param, code="invalid_audio") from exc
        if audio.duration < min_seconds:
            raise InvalidRequestError(
                f"'{param}' is {audio.duration:.1f} s long; at least {min_seconds:g} s of speech is needed.",
                param=param,
                code="audio_too_short",
            )
        speech = audible_seconds(audio)
        if speech < self._settings.min_speech_seconds:
            raise InvalidRequestError(
                f"'{param}' is silent or nearly so ({speech:.1f} s above -40 dBFS; at least "
                f"{self._settings.min_speech_seconds:g} s of clear speech is needed).",
                param=param,
                code="audio_silent",
            )
        return audio

    @staticmethod
    def _create(store: RecordStore, meta: dict[str, str], audio: AudioBuffer) -> StoredRecord:
        try:
            return store.create(meta, audio)
        except StoreFullError as exc:
            raise InvalidRequestError(
                f"Cannot store more: {exc}. Delete some first.", code="limit_reached"
            ) from exc

    # --- consents ---------------------------------------------------------------------------------------------

    def create_consent(self, name: str, language: str, recording: bytes) -> StoredRecord:
        audio = self._audio(recording, "recording", 1.0, CONSENT_MAX_SECONDS)
        return self._create(self.consents, {"name": name, "language": language}, audio)

    def consent(self, consent_id: str) -> StoredRecord:
        record = self.consents.get(consent_id)
        if record is None:
            raise NotFoundError(
                f"No voice consent with id '{consent_id}'.", param="consent_id", code="consent_not_found"
            )
        return record

    def list_consents(self, after: str | None, limit: int) -> tuple[list[StoredRecord], bool]:
        """One page, newest first, starting after the consent `after` (OpenAI's cursor)."""
        records = self.consents.list()
        if after is not None:
            index = next((i for i, r in enumerate(records) if r.id == after), None)
            if index is None:
                raise InvalidRequestError(f"No voice consent with id '{after}' to page after.", param="after")
            records = records[index + 1 :]
        return records[:limit], len(records) > limit

    def rename_consent(self, consent_id: str, name: str) -> StoredRecord:
        record = self.consents.update(consent_id, name=name)
        if record is None:
            self.consent(consent_id)  # raises the 404
        assert record is not None
        return record

    def delete_consent(self, consent_id: str) -> None:
        self.consent(consent_id)
        for voice in self.voices.list():
            if voice.meta.get("consent") == consent_id:
                self.voices.delete(voice.id)
                logger.info("consent %s withdrawn: deleted voice %s made under it", consent_id, voice.id)
        self.consents.delete(consent_id)

    # --- voices -----------------------------------------------------------------------------------------------

    def create_voice(self, name: str, consent_id: str, sample: bytes) -> StoredRecord:
        if self.consents.get(consent_id) is None:
            raise InvalidRequestError(
                f"No voice consent with id '{consent_id}'. Upload the consent recording first "
                "(POST /v1/audio/voice_consents) and pass its id.",
                param="consent",
                code="consent_not_found",
            )
        s = self._settings
        audio = self._audio(sample, "audio_sample", s.min_seconds, s.max_seconds)
        return self._create(self.voices, {"name": name, "consent": consent_id}, audio)

    def voice(self, voice_id: str) -> StoredRecord:
        record = self.voices.get(voice_id)
        if record is None:
            raise NotFoundError(f"No custom voice with id '{voice_id}'.", param="voice_id", code="voice_not_found")
        return record

    def list_voices(self) -> list[StoredRecord]:
        return self.voices.list()

    def delete_voice(self, voice_id: str) -> None:
        if not self.voices.delete(voice_id):
            self.voice(voice_id)  # raises the 404

    def reference(self, voice_id: str) -> VoiceReference:
        """The reference audio of a custom voice named in a speech request, or a 400 on `voice`."""
        record = self.voices.get(voice_id)
        if record is None:
            raise InvalidRequestError(
                f"The custom voice '{voice_id}' does not exist on this server (create one with POST /v1/audio/voices; "
                "GET /v1/audio/voices lists them).",
                param="voice",
                code="voice_not_found",
            )
        return VoiceReference(voice_id=record.id, path=record.audio_path)

    # --- engines ----------------------------------------------------------------------------------------------

    def cloning_models(self) -> list[str]:
        return [s.model_id for s in self._registry.specs("speech") if s.capabilities and s.capabilities.cloning]

    def cloning_hint(self) -> str:
        models = self.cloning_models()
        if models:
            return f"Custom voices work with the cloning models: {', '.join(models)}."
        return (
            "No model on this server can clone a voice: install the Chatterbox extra (pip install "
            "'voxloop[chatterbox]') and point VOXLOOP_CHATTERBOX__MODELS at a Chatterbox checkpoint."
        )
