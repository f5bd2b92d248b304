"""Pipecat's OpenAI services with `base_url` pointed at voxloop, in real pipelines (PipelineWorker + WorkerRunner)
whose transport is a pair of queues: frames go in with `queue_frame`, a sink records what comes out (Pipecat's own
test harness, `pipecat.tests.utils.run_test`, where it fits).

- `OpenAISTTService` (segmented: POST /v1/audio/transcriptions per VAD segment) and `OpenAIRealtimeSTTService`
  (the Realtime transcription session).
- `OpenAITTSService` (POST /v1/audio/speech, pcm at 24 kHz).
- `OpenAIRealtimeLLMService` (/v1/realtime): a text turn from an `LLMContextFrame`, and a spoken turn (server VAD,
  input transcription back upstream as a `TranscriptionFrame`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import pytest

from tests.clients.conftest import API_KEY, QUESTION, speech_pcm, transcribe_pcm, words, ws_url

pytest.importorskip("pipecat.services.openai.realtime",
                    reason="pipecat-ai[openai] is not installed (make test-clients)")

from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.realtime import events
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.services.openai.stt import OpenAIRealtimeSTTService, OpenAISTTService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.workers.runner import WorkerRunner

pytestmark = pytest.mark.clients

logger.remove()  # Pipecat logs every frame processor's life at DEBUG through loguru: keep failures readable
logger.add(sys.stderr, level="WARNING")

RATE = 24_000
SENTENCE = "The quick brown fox jumps over the lazy dog."
HELLO = {"role": "user", "content": "Say hello."}
PARAMS = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)


def _audio_frames(pcm: bytes, ms: int = 100) -> list[InputAudioRawFrame]:
    step = RATE * 2 * ms // 1000
    return [InputAudioRawFrame(audio=pcm[i : i + step], sample_rate=RATE, num_channels=1)
            for i in range(0, len(pcm), step)]


class _Recorder(FrameProcessor):
    """Records the frames that pass in one direction; `until` waits for the first frame of a type."""

    def __init__(self, direction: FrameDirection) -> None:
        super().__init__()
        self.direction = direction
        self.frames: list[Frame] = []
        self._arrived: dict[type, asyncio.Event] = {}

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == self.direction:
            self.frames.append(frame)
            for kind, event in self._arrived.items():
                if isinstance(frame, kind):
                    event.set()
        await self.push_frame(frame, direction)

    async def until(self, kind: type, timeout: float) -> None:
        event = self._arrived.setdefault(kind, asyncio.Event())
        if any(isinstance(f, kind) for f in self.frames):
            return
        await asyncio.wait_for(event.wait(), timeout)

    def of(self, kind: type) -> list:
        return [f for f in self.frames if isinstance(f, kind)]


async def _run(service: FrameProcessor, feed: Callable[[PipelineWorker], object], done: type,
               timeout: float = 150) -> tuple[_Recorder, _Recorder]:
    """service between an upstream and a downstream recorder; `feed` queues frames once the pipeline started; the
    pipeline ends (EndFrame) when a `done` frame came out downstream."""
    upstream, downstream = _Recorder(FrameDirection.UPSTREAM), _Recorder(FrameDirection.DOWNSTREAM)
    worker = PipelineWorker(Pipeline([upstream, service, downstream]), params=PARAMS, cancel_on_idle_timeout=False)
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(worker: PipelineWorker, frame: Frame) -> None:
        started.set()

    async def drive() -> None:
        await asyncio.wait_for(started.wait(), 30)
        await feed(worker)  # type: ignore[misc]
        try:
            await downstream.until(done, timeout)
        finally:
            await worker.queue_frame(EndFrame())

    runner = WorkerRunner()
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), drive())
    return upstream, downstream


def _no_errors(*recorders: _Recorder) -> None:
    errors = [f.error for r in recorders for f in r.of(ErrorFrame)]
    assert not errors, errors


async def test_stt_transcribes_a_vad_segment(voxloop: str) -> None:
    stt = OpenAISTTService(api_key=API_KEY, base_url=f"{voxloop}/v1",
                           settings=OpenAISTTService.Settings(model="whisper-1"))
    frames = [VADUserStartedSpeakingFrame(), *_audio_frames(speech_pcm(SENTENCE, tail=0.5)),
              VADUserStoppedSpeakingFrame(), SleepFrame(sleep=3.0)]
    down, up = await run_test(stt, frames_to_send=frames, pipeline_params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    (transcript,) = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert words(transcript.text) >= {"quick", "brown", "fox", "jumps", "lazy", "dog"}, transcript.text


@pytest.mark.parametrize("server_vad", [False, True], ids=["local-vad", "server-vad"])
async def test_realtime_stt_streams_a_transcript(voxloop: str, server_vad: bool) -> None:
    # Local VAD (the default): the pipeline's VAD frames bracket the speech and the service commits at the end.
    # Server VAD: voxloop's VAD ends the turn.
    stt = OpenAIRealtimeSTTService(api_key=API_KEY, base_url=f"{ws_url(voxloop)}/v1/realtime",
                                   turn_detection={"type": "server_vad"} if server_vad else False,
                                   settings=OpenAIRealtimeSTTService.Settings(model="gpt-4o-mini-transcribe"))

    async def feed(worker: PipelineWorker) -> None:
        if not server_vad:
            await worker.queue_frame(VADUserStartedSpeakingFrame())
        for frame in _audio_frames(speech_pcm(SENTENCE)):
            await worker.queue_frame(frame)
            await asyncio.sleep(0.01)
        if not server_vad:
            await worker.queue_frame(VADUserStoppedSpeakingFrame())

    up, down = await _run(stt, feed, TranscriptionFrame, timeout=60)
    _no_errors(up, down)
    transcript = down.of(TranscriptionFrame)[0].text
    assert words(transcript) >= {"quick", "brown", "fox", "jumps", "lazy", "dog"}, transcript


async def test_tts_speaks(voxloop: str) -> None:
    tts = OpenAITTSService(api_key=API_KEY, base_url=f"{voxloop}/v1",
                           settings=OpenAITTSService.Settings(model="gpt-4o-mini-tts", voice="alloy"))
    down, up = await run_test(tts, frames_to_send=[TTSSpeakFrame("The weather is sunny and warm today."),
                                                   SleepFrame(sleep=3.0)], pipeline_params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    kinds = [type(f) for f in down]
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and {(f.sample_rate, f.num_channels) for f in audio} == {(RATE, 1)}
    first = kinds.index(TTSAudioRawFrame)
    assert kinds.index(TTSStartedFrame) < first and kinds.index(TTSStoppedFrame) > first
    pcm = b"".join(f.audio for f in audio)
    assert 1.0 < len(pcm) / 2 / RATE < 10
    assert words(transcribe_pcm(voxloop, pcm)) >= {"weather", "sunny", "warm", "today"}


async def test_llm_streams_a_reply(voxloop: str) -> None:
    # The cascaded pipeline's LLM: OpenAILLMService(base_url=...) on /v1/chat/completions, streamed.
    llm = OpenAILLMService(api_key=API_KEY, base_url=f"{voxloop}/v1",
                           settings=OpenAILLMService.Settings(model="voxloop", max_completion_tokens=32))

    async def feed(worker: PipelineWorker) -> None:
        await worker.queue_frame(LLMContextFrame(context=LLMContext(messages=[HELLO])))

    up, down = await _run(llm, feed, LLMFullResponseEndFrame, timeout=60)
    _no_errors(up, down)
    kinds = [type(f) for f in down.frames]
    assert kinds.index(LLMFullResponseStartFrame) < kinds.index(LLMTextFrame) < kinds.index(LLMFullResponseEndFrame)
    assert "".join(f.text for f in down.of(LLMTextFrame)).strip()


def _realtime(voxloop: str, **audio_input: object) -> OpenAIRealtimeLLMService:
    session = events.SessionProperties(instructions="You are a helpful assistant. Answer in one short sentence.",
                                       max_output_tokens=48,
                                       audio=events.AudioConfiguration(input=events.AudioInput(**audio_input)))
    return OpenAIRealtimeLLMService(api_key=API_KEY, base_url=f"{ws_url(voxloop)}/v1/realtime",
                                    settings=OpenAIRealtimeLLMService.Settings(session_properties=session))


def _reply(down: _Recorder) -> tuple[str, bytes]:
    """The reply's text and audio, checked to sit between the response's start and end frames."""
    kinds = [type(f) for f in down.frames]
    start, end = kinds.index(LLMFullResponseStartFrame), len(kinds) - 1 - kinds[::-1].index(LLMFullResponseEndFrame)
    audio = [i for i, k in enumerate(kinds) if k is TTSAudioRawFrame]
    assert audio and start < audio[0] and audio[-1] < end, " ".join(k.__name__ for k in kinds)
    assert {(f.sample_rate, f.num_channels) for f in down.of(TTSAudioRawFrame)} == {(RATE, 1)}
    return "".join(f.text for f in down.of(LLMTextFrame)), b"".join(f.audio for f in down.of(TTSAudioRawFrame))


async def test_realtime_text_turn_is_spoken_back(voxloop: str) -> None:
    llm = _realtime(voxloop)

    async def feed(worker: PipelineWorker) -> None:
        await worker.queue_frame(LLMContextFrame(context=LLMContext(messages=[HELLO])))

    up, down = await _run(llm, feed, LLMFullResponseEndFrame)
    _no_errors(up, down)
    text, audio = _reply(down)
    assert text.strip() and len(audio) >= RATE * 2 * 3 // 10
    assert words(transcribe_pcm(voxloop, audio)) & words(text), text


async def test_realtime_spoken_turn_with_server_vad(voxloop: str) -> None:
    llm = _realtime(voxloop, transcription=events.InputAudioTranscription(model="whisper-1"),
                    turn_detection=events.TurnDetection(type="server_vad", silence_duration_ms=500))

    async def feed(worker: PipelineWorker) -> None:
        for frame in _audio_frames(speech_pcm(QUESTION)):
            await worker.queue_frame(frame)
            await asyncio.sleep(0.01)

    up, down = await _run(llm, feed, LLMFullResponseEndFrame)
    _no_errors(up, down)
    # The user's words go upstream (to the context aggregator), the reply downstream.
    (transcript,) = up.of(TranscriptionFrame)
    assert {"capital", "france"} <= words(transcript.text), transcript.text
    text, audio = _reply(down)
    assert text.strip() and audio
