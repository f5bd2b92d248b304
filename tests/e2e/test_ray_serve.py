"""voxloop on Ray Serve, on a real two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`).

The same FastAPI app is the ingress deployment; Whisper tiny.en, Piper and the prosody baseline are each their
own deployment, reached through deployment handles behind the engine Protocols (engines/ray/proxy.py). The openai
SDK talks to Serve's HTTP proxy as to `voxloop serve`. Replica and node ids come from the replicas themselves.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from api.settings import Settings
from tests.support.realtime import Events, stream_audio, to_pcm16_24k
from tests.support.server import free_port
from tests.support.speech import encode, pcm16_wav, silence, speak
from tests.support.wer import wer
from tests.unit.api.test_metrics import value

ray = pytest.importorskip("ray", reason="needs the ray extra (pip install 'voxloop[ray]')")
from ray import serve  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from voxloop.ray import APP_NAME, DeploymentOptions, build_app, deployment_name  # noqa: E402

pytestmark = [pytest.mark.models, pytest.mark.ray]

ROOT = Path(__file__).resolve().parents[2]
SENTENCE = "The quick brown fox jumps over the lazy dog."
SPEECH = deployment_name("piper-joe")
ASR = deployment_name("whisper-tiny.en")
LLM_MODEL = "smollm2-135m-instruct"
LLM = deployment_name(LLM_MODEL)
AUTOSCALING = {
    "min_replicas": 1, "max_replicas": 2, "initial_replicas": 1, "target_ongoing_requests": 1,
    "upscale_delay_s": 0.5, "downscale_delay_s": 3.0, "metrics_interval_s": 0.5, "look_back_period_s": 1.0,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two Ray nodes (3 logical CPUs each) and voxloop deployed on them: the HTTP base URL."""
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 3})
    nodes.add_node(num_cpus=3)
    ray.init(address=nodes.address, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    settings = Settings(cache_dir=tmp_path_factory.mktemp("ray-cache"))
    options = {
        "piper-joe": DeploymentOptions(num_replicas=2, num_cpus=0.5),
        # One request per replica at a time, so load queues at the handle (and /v1/models shows the queue).
        "whisper-tiny.en": DeploymentOptions(num_cpus=0.5, autoscaling_config=AUTOSCALING, max_ongoing_requests=1),
        "voxloop-prosody-lexicon": DeploymentOptions(num_cpus=0.25),
        LLM_MODEL: DeploymentOptions(num_cpus=0.5, max_ongoing_requests=1),  # llama.cpp: one completion at a time
    }
    serve.run(build_app(settings, options=options), name=APP_NAME, route_prefix="/")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()
        nodes.shutdown()


@pytest.fixture(scope="module")
def sdk(cluster: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{cluster}/v1", api_key="x", max_retries=0, timeout=120)


def _running(deployment: str) -> int:
    info = serve.status().applications[APP_NAME].deployments[deployment]
    return sum(n for state, n in info.replica_states.items() if str(getattr(state, "value", state)) == "RUNNING")


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def test_openai_sdk_speech_streams_and_transcription_round_trips(sdk: openai.OpenAI) -> None:
    with sdk.audio.speech.with_streaming_response.create(
        model="piper-joe", voice="alloy", input=f"{SENTENCE} {SENTENCE}", response_format="pcm"
    ) as response:
        pieces = [piece for piece in response.iter_bytes() if piece]
    pcm = b"".join(pieces)
    assert len(pieces) >= 2 and len(pcm) / 2 / 24_000 > 2.0
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    heard = sdk.audio.transcriptions.create(model="whisper-1", file=("s.wav", encode(samples, rate=24_000))).text
    assert wer(f"{SENTENCE} {SENTENCE}", heard) <= 0.2, heard
    verbose = sdk.audio.transcriptions.create(model="whisper-1", file=("s.wav", encode(speak(SENTENCE))),
                                              response_format="verbose_json")
    assert wer(SENTENCE, verbose.text) <= 0.2 and verbose.segments and verbose.duration > 1.0


def test_emotion_through_its_deployment(cluster: str) -> None:
    wav = encode(speak("I am furious! This is outrageous and I hate it!"))
    answer = httpx.post(f"{cluster}/v1/emotion", files={"file": ("a.wav", wav, "audio/wav")},
                        data={"model": "default"}, timeout=120)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["label"] in body["scores"] and body["valence"] < 0, body


def _cards(cluster: str) -> dict[str, dict]:
    return {m["id"]: m for m in httpx.get(f"{cluster}/v1/models", timeout=30).json()["data"]}


def test_chat_runs_in_the_llm_deployment_and_streams_tokens(cluster: str, sdk: openai.OpenAI) -> None:
    question = [{"role": "user", "content": "What is the capital of France?"}]
    completion = sdk.chat.completions.create(model=LLM_MODEL, messages=question, max_tokens=40, temperature=0)
    assert "paris" in (completion.choices[0].message.content or "").lower(), completion
    chunks = list(sdk.chat.completions.create(model=LLM_MODEL, messages=question, max_tokens=40, temperature=0,
                                              stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "paris" in text.lower() and chunks[-1].usage.completion_tokens > 1
    # The replica yields chunk by chunk through the handle (one per token), not one whole result.
    handle = serve.get_deployment_handle(LLM, APP_NAME)
    streamed = list(handle.options(stream=True).stream_chat.remote(
        {"model": LLM_MODEL, "messages": question, "max_tokens": 40, "temperature": 0}))
    assert len([c for c in streamed if c["choices"] and c["choices"][0]["delta"].get("content")]) > 1
    assert handle.whoami.remote().result()["model"] == LLM_MODEL
    card = _cards(cluster)[LLM_MODEL]
    assert card["deployment"]["replicas_running"] == 1 and card["device"] == "remote", card


def test_models_ready_and_metrics_report_each_deployment(cluster: str) -> None:
    cards = _cards(cluster)
    assert {"whisper-tiny.en", "piper-joe", "voxloop-prosody-lexicon"} <= set(cards)
    speech = cards["piper-joe"]["deployment"]
    assert speech == {"name": SPEECH, "status": "HEALTHY", "replicas_running": 2, "replicas_target": 2,
                      "ongoing_requests": 0, "queued_requests": 0}, speech
    assert cards["piper-joe"]["state"] == "loaded"  # its replicas loaded it; the ingress never did
    assert cards["whisper-tiny.en"]["deployment"]["replicas_target"] == 1
    states = {d["deployment"]: d for d in httpx.get(f"{cluster}/v1/ray/deployments", timeout=30).json()["data"]}
    assert states[SPEECH]["status"] == "HEALTHY" and states[SPEECH]["replicas"] == {"RUNNING": 2}
    ready = httpx.get(f"{cluster}/ready", timeout=60)
    assert ready.status_code == 200 and not ready.json()["problems"], ready.text
    deployments = ready.json()["deployments"]
    assert set(deployments) == {"piper-joe", "whisper-tiny.en", "voxloop-prosody-lexicon", LLM_MODEL}
    assert deployments["piper-joe"]["replicas_running"] == 2 and deployments["piper-joe"]["state"] == "loaded"
    metrics = httpx.get(f"{cluster}/metrics", timeout=30).text
    assert value(metrics, "voxloop_deployment_replicas", model="piper-joe", deployment=SPEECH, kind="running") == 2
    assert value(metrics, "voxloop_deployment_replicas", model="piper-joe", deployment=SPEECH, kind="target") == 2
    assert value(metrics, "voxloop_deployment_loaded", model="whisper-tiny.en", deployment=ASR) == 1
    assert value(metrics, "voxloop_deployment_queued_requests", model="whisper-tiny.en", deployment=ASR) == 0


def test_replicas_answer_from_both_nodes(cluster: str) -> None:
    handle = serve.get_deployment_handle(SPEECH, APP_NAME)
    answers = [handle.whoami.remote().result() for _ in range(20)]
    assert len({a["replica"] for a in answers}) == 2
    assert len({a["node"] for a in answers}) == 2, answers
    assert {n["NodeID"] for n in ray.nodes() if n["Alive"]} == {a["node"] for a in answers}


async def test_realtime_spoken_round_trip(cluster: str, sdk: openai.OpenAI) -> None:
    client = openai.AsyncOpenAI(base_url=f"{cluster}/v1", api_key="x", max_retries=0)
    question = "What color is the sky on a sunny day?"
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={
            # The toy LLM samples (temperature 0.8) and may ramble: bound the reply, so a turn spoken on two loaded
            # cores stays within the timeout. A reply cut at the bound is `incomplete`, still spoken.
            "type": "realtime", "instructions": "Answer in one short sentence.", "max_output_tokens": 60,
            "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": {
                "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}}}})
        await events.until("session.updated")
        await stream_audio(conn, to_pcm16_24k(np.concatenate([silence(0.3), speak(question), silence(1.0)])),
                           realtime=False)
        done = await events.until("response.done", timeout=180)
    assert done["response"]["status"] in ("completed", "incomplete"), done
    asked = events.of("conversation.item.input_audio_transcription.completed")[0]["transcript"]
    assert wer(question, asked) <= 0.25, asked
    transcript = events.of("response.output_audio_transcript.done")[0]["transcript"]
    audio = b"".join(base64.b64decode(e["delta"]) for e in events.of("response.output_audio.delta"))
    assert len(audio) / 2 / 24_000 > 0.5
    heard = sdk.audio.transcriptions.create(model="whisper-1", file=("r.wav", pcm16_wav(audio))).text
    assert wer(transcript, heard) <= 0.35, (transcript, heard)


def test_killing_a_replica_under_load_loses_no_request_silently(cluster: str) -> None:
    expected = httpx.post(f"{cluster}/v1/audio/speech", json={"model": "piper-joe", "voice": "alloy",
                                                                "input": SENTENCE, "response_format": "pcm"},
                          timeout=60).content
    outcomes: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            for _ in range(6):
                try:
                    r = http.post(f"{cluster}/v1/audio/speech", json={"model": "piper-joe", "voice": "alloy",
                                                                        "input": SENTENCE, "response_format": "pcm"})
                    if r.status_code == 200:
                        # Piper's noise makes lengths vary by a few percent; a cut stream is far shorter.
                        whole = abs(len(r.content) - len(expected)) < 0.1 * len(expected)
                        outcome = "ok" if whole else f"silently cut: {len(r.content)} of ~{len(expected)} bytes"
                    elif r.status_code == 503 and r.headers.get("retry-after") and r.json()["error"]["message"]:
                        outcome = "503"
                    else:
                        outcome = f"unexpected {r.status_code}: {r.text[:200]}"
                except httpx.TransportError as exc:  # the stream broke mid-body: loud, and retryable
                    outcome = f"broken: {type(exc).__name__}"
                with lock:
                    outcomes.append(outcome)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    victim = serve.get_deployment_handle(SPEECH, APP_NAME).whoami.remote().result()["replica"]
    ray.kill(ray.get_actor(f"SERVE_REPLICA::{APP_NAME}#{SPEECH}#{victim}", namespace="serve"), no_restart=True)
    for t in threads:
        t.join()
    assert len(outcomes) == 24
    assert all(o in ("ok", "503") or o.startswith("broken") for o in outcomes), outcomes
    assert outcomes.count("ok") >= 12, outcomes
    handle = serve.get_deployment_handle(SPEECH, APP_NAME)

    def recovered() -> bool:
        replicas = {handle.whoami.remote().result()["replica"] for _ in range(20)}
        return victim not in replicas and len(replicas) == 2

    _wait_for(recovered, 90, "the killed replica to be replaced and serving")


def _replica_actors(deployment: str) -> list[str]:
    prefix = f"SERVE_REPLICA::{APP_NAME}#{deployment}#"
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)]


async def test_realtime_session_keeps_going_after_its_llm_replica_dies_mid_turn(cluster: str) -> None:
    """The LLM's replica is killed while it streams a spoken reply (the voice loop reads tokens as fast as it
    speaks them, so the stream is still open): the turn ends with an `error` event and a failed response, the
    socket stays open, and once Serve has replaced the replica the same session answers the next turn."""
    client = openai.AsyncOpenAI(base_url=f"{cluster}/v1", api_key="x", max_retries=0)
    story = {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "Tell me a long story about a dragon and a knight."}]}
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={"type": "realtime", "max_output_tokens": 1000,
                                           "audio": {"input": {"turn_detection": None}}})
        await events.until("session.updated")
        await conn.conversation.item.create(item=story)
        await conn.response.create()
        await events.until("response.output_audio.delta", timeout=120)  # the reply is being spoken now
        (victim,) = _replica_actors(LLM)
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        done = await events.until("response.done", timeout=120)
        assert done["response"]["status"] == "failed", done["response"]
        error = events.of("error")[-1]["error"]
        assert "replica" in error["message"].lower(), error  # the replica died: retryable, said plainly
        _wait_for(lambda: _running(LLM) == 1 and _replica_actors(LLM) != [victim], 120, "a new LLM replica")
        await conn.session.update(session={"type": "realtime", "max_output_tokens": 30})
        await events.until("session.updated")
        mark = len(events.seen)
        await conn.response.create()  # the same socket, the same conversation
        again = await events.until("response.done", timeout=180)
        assert again["response"]["status"] in ("completed", "incomplete"), again["response"]
        assert any(e["type"] == "response.output_audio.delta" for e in events.seen[mark:]), "not spoken"


def test_transcription_scales_up_under_load_and_back_down(cluster: str) -> None:
    assert _running(ASR) == 1
    wav = encode(np.concatenate([speak(SENTENCE), speak(SENTENCE)]))
    stop = threading.Event()
    errors: list[str] = []

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            while not stop.is_set():
                r = http.post(f"{cluster}/v1/audio/transcriptions", files={"file": ("a.wav", wav, "audio/wav")},
                              data={"model": "whisper-1"})
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")

    seen: list[dict] = []  # the transcription deployment as /v1/models reports it under load

    def scaled_up() -> bool:
        seen.append(_cards(cluster)["whisper-tiny.en"]["deployment"])
        return _running(ASR) == 2

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        _wait_for(scaled_up, 90, "a second transcription replica under load")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    # Four clients, one request per replica at a time: requests queued, and the target went to 2 before the
    # second replica ran.
    assert max(d["queued_requests"] for d in seen) >= 1, seen
    assert max(d["ongoing_requests"] for d in seen) >= 2, seen
    assert any(d["replicas_target"] == 2 for d in seen), seen
    _wait_for(lambda: _running(ASR) == 1, 90, "the transcription deployment to scale back to one replica")
    after = _cards(cluster)["whisper-tiny.en"]["deployment"]
    assert (after["replicas_running"], after["replicas_target"], after["queued_requests"]) == (1, 1, 0), after


