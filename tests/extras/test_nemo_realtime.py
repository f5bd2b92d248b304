"""Realtime sessions on NeMo's cache-aware streaming model, one live stream per turn, with the real library and a
tiny random-weight model (tests/support/tiny_nemo.py, the `nemo_models` fixture in conftest.py): the turn
transcriber driven as a session drives it, an openai-SDK session over the socket, and the same session through Ray
Serve with the model in its own deployment. Deltas come while the user speaks and `.completed` is the engine's own
stream over the turn's audio, never the offline `transcribe`.

Random weights transcribe gibberish: this proves the live path, not recognition quality. Runs in `.venv-nemo`
(`make test-nemo`); the main venv skips it with the reason below.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "nemo.collections.asr", reason="NeMo is not installed in this venv; `make test-nemo` runs these in .venv-nemo"
)

from api.settings import Settings  # noqa: E402
from tests.support.nemo_drive import post_transcription, speech_16k, stream_engine, stream_text  # noqa: E402
from tests.support.realtime import Events, stream_audio, to_pcm16_24k  # noqa: E402
from tests.support.server import live_server  # noqa: E402
from tests.support.speech import encode, silence, speak  # noqa: E402
from voxloop.app import create_app  # noqa: E402

pytestmark = pytest.mark.extra_nemo


def test_turn_transcriber_streams_the_turn_and_covers_a_pause(nemo_models: dict[str, Path], tmp_path: Path) -> None:
    """The realtime turn transcriber on a streaming model, driven as a session drives it (audio appended in 100 ms
    pieces, a pause, the commit): deltas while audio comes, the pause covered before the commit, and `.completed`
    is the model's own stream over the same audio, with no second pass."""
    import asyncio

    from api.realtime.session_config import TranscriptionConfig
    from api.realtime.stream_transcriber import StreamTurnTranscriber
    from api.realtime.transcriber import resolve_transcription
    from voxloop.app import build_services

    settings = Settings(cache_dir=tmp_path, nemo={"device": "cpu", "streaming_models": {"nemotron-tiny": str(
        nemo_models["stream"])}})
    services = build_services(settings)
    samples = speech_16k().astype(np.float32)  # the sentence, then 0.3 s of silence
    origin = 5 * 16000  # the turn starts 5 s into the session: pause keys are positions on the session's timeline
    speech_end = origin + len(samples) - 4800
    expected = stream_text(stream_engine(nemo_models, warmup=False), samples)

    async def drive() -> tuple[list, int, str, list, object]:
        services.manager.start()
        spec, options = resolve_transcription(services.transcription, TranscriptionConfig(model="nemotron-tiny"))
        events, finished = [], []

        async def emit(event) -> None:
            events.append(event)

        turn = StreamTurnTranscriber(services.transcription, spec, options, "item_1", emit, partial_interval=1.0,
                                     finished=lambda item, text: finished.append(text), start=origin)
        task = asyncio.create_task(turn.run())
        for end in range(1600, len(samples) + 1600, 1600):
            end = min(end, len(samples))
            paused = speech_end if origin + end >= speech_end + 3200 else None
            turn.update(end, lambda since, end=end, paused=paused: (samples[since:end].copy(), paused),
                        speculate=paused is not None)
            await asyncio.sleep(0.05)
        covered = await asyncio.wait_for(turn.covering(speech_end), 30)  # before the commit: from the stream
        before = len(events)
        turn.finish(samples.copy(), speech_end)
        await asyncio.wait_for(task, 60)
        engine = services.manager._slots["nemotron-tiny"].engine
        await services.manager.close()
        return events, before, covered, finished, engine

    events, before, covered, finished, engine = asyncio.run(drive())
    kinds = [type(e).__name__ for e in events]
    assert kinds[-1] == "TranscriptionCompleted" and set(kinds[:-1]) == {"TranscriptionDelta"}, kinds
    completed = events[-1].transcript
    assert completed == expected and completed, "differs from the engine's own stream over the same audio"
    assert "".join(e.delta for e in events[:-1]) == completed and finished == [completed]
    assert before >= 1, "no delta while the audio came"
    assert covered == completed  # nothing was said after the pause: the speculative text is the final one
    assert sum(engine.batcher.batch_sizes) > 0


async def _turn_over_socket(url: str, clip: np.ndarray) -> Events:
    """One spoken turn in an openai-SDK realtime session whose input transcription is the streaming model."""
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-local", max_retries=0)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "transcription": {"model": "nemotron-tiny"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500, "create_response": False},
        }}})
        await events.until("session.updated")
        await stream_audio(conn, to_pcm16_24k(clip), realtime=True)
        await events.until("conversation.item.input_audio_transcription.completed", timeout=120)
    return events


def _assert_live_turn(events: Events) -> None:
    """Deltas while the user spoke (before `speech_stopped`) that add up to `.completed`."""
    stopped = events.of("input_audio_buffer.speech_stopped")
    completed = events.of("conversation.item.input_audio_transcription.completed")
    assert len(stopped) == 1 and len(completed) == 1 and completed[0]["transcript"]
    deltas = events.of("conversation.item.input_audio_transcription.delta")
    assert "".join(d["delta"] for d in deltas) == completed[0]["transcript"]
    assert events.seen.index(deltas[0]) < events.seen.index(stopped[0]), "no delta while the user spoke"


def _turn_clip() -> np.ndarray:
    return np.concatenate([silence(0.3), speak("Hello world, this is a short test."), silence(1.2)])


def test_realtime_session_on_the_streaming_model(nemo_models: dict[str, Path], tmp_path: Path) -> None:
    """Over the socket with the openai SDK: a session whose transcription model is the streaming one gets deltas
    before `speech_stopped`, deltas that add up to `.completed`, and its turn decoded by stream steps (the offline
    `transcribe` is never called)."""
    import asyncio

    app = create_app(Settings(cache_dir=tmp_path, nemo={"device": "cpu", "streaming_models": {
        "nemotron-tiny": str(nemo_models["stream"])}}))
    clip = _turn_clip()
    with live_server(app) as url:
        # Load the model with one HTTP request, then make its offline path fail loudly.
        assert post_transcription(url, encode(clip, "wav"), model="nemotron-tiny").status_code == 200
        engine = app.state.services.manager._slots["nemotron-tiny"].engine
        offline: list[int] = []
        engine.transcribe = lambda *a, **k: offline.append(1) or (_ for _ in ()).throw(AssertionError("offline"))
        steps_before = len(engine.batcher.batch_sizes)
        events = asyncio.run(_turn_over_socket(url, clip))
    _assert_live_turn(events)
    assert offline == [] and len(engine.batcher.batch_sizes) > steps_before


def test_realtime_session_streams_live_through_ray_serve(nemo_models: dict[str, Path], tmp_path: Path) -> None:
    """voxloop on Ray Serve with the streaming model in its own deployment: the turn's audio reaches the replica
    while the user speaks (a Ray queue beside the handle call), so deltas still come before `speech_stopped`."""
    import asyncio

    ray = pytest.importorskip("ray", reason="Ray Serve is not installed in this venv")
    from ray import serve

    from tests.support.server import free_port
    from voxloop.ray import APP_NAME, DeploymentOptions, build_app

    settings = Settings(cache_dir=tmp_path, nemo={"device": "cpu", "streaming_models": {
        "nemotron-tiny": str(nemo_models["stream"])}})
    ray.init(num_cpus=3, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}})
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(settings, models=["nemotron-tiny"],
                            options={"nemotron-tiny": DeploymentOptions(num_cpus=1)}), name=APP_NAME, route_prefix="/")
        events = asyncio.run(_turn_over_socket(f"http://127.0.0.1:{port}", _turn_clip()))
    finally:
        serve.shutdown()
        ray.shutdown()
    _assert_live_turn(events)
