"""The library-free parts of the NeMo and WhisperX engines (the libraries themselves run in tests/extras)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from api.settings import Settings
from engines.base import AudioBuffer, EngineUnavailableError
from engines.nemo import to_segments as nemo_segments
from engines.whisperx_engine import known_speaker_names, relabel, split_by_speaker, to_segments
from voxloop.app import build_registry


def test_nemo_timestamps_to_segments() -> None:
    hyp = SimpleNamespace(
        text="Hello there. Bye.",
        timestamp={
            "segment": [{"segment": "Hello there.", "start": 0.1, "end": 0.9}, {"segment": "Bye.", "start": 1.2, "end": 1.5}],
            "word": [
                {"word": "Hello", "start": 0.1, "end": 0.4},
                {"word": "there.", "start": 0.5, "end": 0.9},
                {"word": "Bye.", "start": 1.2, "end": 1.5},
            ],
        },
    )
    segments = nemo_segments(hyp, offset=60.0)
    assert [s.text for s in segments] == [" Hello there.", " Bye."]
    assert segments[0].start == 60.1 and segments[1].end == 61.5
    assert [w.word for w in segments[0].words] == ["Hello", "there."] and len(segments[1].words) == 1


def test_nemo_without_segment_timestamps_is_one_segment() -> None:
    segments = nemo_segments(SimpleNamespace(text="just text", timestamp={}), offset=0.0)
    assert len(segments) == 1 and segments[0].text == " just text"
    assert nemo_segments(SimpleNamespace(text="", timestamp={}), offset=0.0) == []


def test_split_by_speaker_cuts_at_word_level_changes_and_relabels() -> None:
    aligned = [
        {
            "start": 0.0, "end": 2.0, "text": "hi there yes", "speaker": "SPEAKER_03",
            "words": [
                {"word": "hi", "start": 0.0, "end": 0.3, "speaker": "SPEAKER_03"},
                {"word": "there", "start": 0.4, "end": 0.8, "speaker": "SPEAKER_03"},
                {"word": "yes", "start": 1.5, "end": 2.0, "speaker": "SPEAKER_01"},
            ],
        },
        {"start": 2.5, "end": 3.0, "text": "no words", "speaker": "SPEAKER_03"},
    ]
    turns = relabel(split_by_speaker(aligned), {"SPEAKER_01": "bob"})
    assert [(t["text"], t["speaker"]) for t in turns] == [("hi there", "A"), ("yes", "bob"), ("no words", "A")]
    segments = to_segments(turns, offset=1.0)
    assert segments[1].start == 2.5 and segments[1].speaker == "bob" and segments[1].words[0].word == "yes"


def test_known_speaker_matching_uses_best_pairs_above_threshold() -> None:
    def diarizer(samples, num_speakers=None, return_embeddings=False):
        # the reference clip's length picks its voice: 1 s -> like SPEAKER_00, 2 s -> like SPEAKER_01
        return None, {"SPEAKER_00": [1.0, 0.0] if len(samples) == 16000 else [0.1, 1.0]}

    clips = (("ann", AudioBuffer(np.zeros(16000, np.float32), 16000)), ("bob", AudioBuffer(np.zeros(32000, np.float32), 16000)))
    embeddings = {"SPEAKER_00": [0.9, 0.1], "SPEAKER_01": [0.0, 1.0], "SPEAKER_02": [-1.0, 0.0]}
    assert known_speaker_names(diarizer, embeddings, clips) == {"SPEAKER_00": "ann", "SPEAKER_01": "bob"}
    assert known_speaker_names(diarizer, embeddings, ()) == {}


def test_gpu_engines_register_from_settings_and_fail_with_install_hint(tmp_path) -> None:
    settings = Settings(
        cache_dir=tmp_path,
        nemo={"models": {"parakeet-tdt-0.6b-v2": str(tmp_path / "missing.nemo")}},
        whisperx={"models": {"whisperx-large-v3": str(tmp_path)}, "diarization_model": "pyannote/x"},
        remote={"transcription": {"far": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "diarization": True}}},
    )
    registry = build_registry(settings)
    parakeet = registry.resolve("parakeet-tdt-0.6b-v2", "transcription")
    assert parakeet.capabilities.languages == frozenset({"en"}) and parakeet.capabilities.word_timestamps
    assert "missing" in parakeet.probe()
    assert registry.resolve("whisperx-large-v3", "transcription").capabilities.diarization
    assert registry.resolve("far", "transcription").capabilities.diarization
    try:
        import nemo  # noqa: F401
    except ImportError:
        with pytest.raises(EngineUnavailableError, match=r"voxloop\[nemo\]"):
            parakeet.factory()
    try:
        import whisperx  # noqa: F401
    except ImportError:
        with pytest.raises(EngineUnavailableError, match=r"voxloop\[whisperx\]"):
            registry.resolve("whisperx-large-v3", "transcription").factory()
