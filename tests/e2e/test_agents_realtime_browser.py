"""OpenAI's own browser SDK, `@openai/agents-realtime` from npm, against voxloop over WebRTC (issue 21).

A web page on its own origin (served here from the npm package's shipped ESM bundle, nothing built) runs a
`RealtimeAgent` with a `get_weather` tool on the SDK's WebRTC transport, `baseUrl` pointed at voxloop's
/v1/realtime/calls, connecting with an ephemeral key the "app server" (this test) minted at
/v1/realtime/client_secrets, as OpenAI's browser quickstart does. Debian's headless Chromium's fake microphone
speaks a Piper question; voxloop (real Silero VAD, Whisper, SmolLM2, Piper) must hear it, have the SDK call the tool
with the city, speak the answer on the reply track, and end the turn. The voxloop serving it has the real key
required and CORS open to the page's origin only, as a deployment behind a browser app would.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import pytest
import soxr

from api.settings import RealtimeSettings, Settings
from tests.support.browser import chromium, console, missing_browser, screenshot
from tests.support.npm_packages import installed
from tests.support.server import free_port, live_server
from tests.support.speech import PIPER_RATE, encode, silence, speak
from tests.support.wer import wer
from voxloop.app import create_app

_WHY = missing_browser()
pytestmark = [pytest.mark.models, pytest.mark.skipif(_WHY is not None, reason=_WHY or "")]

PAGE = Path(__file__).resolve().parent.parent / "support" / "pages" / "agents_realtime.html"
QUESTION = "What is the weather in Paris?"
API_KEY = "sk-agents-browser"


@pytest.fixture(scope="module")
def bundle() -> Path:
    package, why = installed()
    if why is not None:
        pytest.skip(why)
    return package / "dist" / "bundle"


@pytest.fixture(scope="module")
def page_origin(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The web app's own origin: the page and the SDK's bundle as static files (another port than voxloop's)."""
    root = tmp_path_factory.mktemp("agents-page")
    (root / "index.html").write_bytes(PAGE.read_bytes())
    (root / "agents-realtime").symlink_to(bundle, target_is_directory=True)
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def voxloop_url(page_origin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Greedy replies: the SDK cannot set a temperature over WebRTC (GA sessions have none), and the 135M model at
    # OpenAI's default 0.8 sometimes answers in words instead of calling the tool; the server's default is the knob.
    settings = Settings(cache_dir=tmp_path_factory.mktemp("agents-cache"), api_key=API_KEY,
                        cors_origins=[page_origin], realtime=RealtimeSettings(temperature=0.0))
    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Chromium loops the file: a long silence after the question leaves room for the tool call and the answer
    # (minutes, on a loaded 2-core machine) before the question comes round again. The question starts 3 s in: the
    # device opens before the call connects, and nothing is sent until it has.
    clip = np.concatenate([silence(3.0), speak(QUESTION), silence(240.0)])
    path = tmp_path_factory.mktemp("agents-mic") / "question.wav"
    path.write_bytes(encode(soxr.resample(clip, PIPER_RATE, 48_000).astype(np.float32), "wav", rate=48_000))
    return path


def _wait(driver, what: str, script: str, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.25)
    screenshot(driver, "failed-agents-realtime")
    state = driver.execute_script("""const s = window.agentsTest || {};
        const said = (s.raw || []).filter(e => e.transcript !== undefined || e.type === 'response.done')
            .map(e => [e.type, e.transcript ?? (e.response?.output || []).map(o => o.type + ':' + o.status)]);
        return JSON.stringify({status: s.status, events: s.events, errors: s.errors, toolCalls: s.toolCalls,
                               order: (s.raw || []).map(e => e.type), said})""")
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}.\nPage state: {state}\n"
                         f"Console:\n{console(driver)}")


def test_agents_realtime_sdk_completes_a_spoken_turn_with_a_tool_call(
        voxloop_url: str, page_origin: str, microphone: Path) -> None:
    # The app server mints the browser's key; the browser never sees API_KEY.
    minted = httpx.post(f"{voxloop_url}/v1/realtime/client_secrets", headers={"Authorization": f"Bearer {API_KEY}"},
                        json={"expires_after": {"anchor": "created_at", "seconds": 120},
                              "session": {"type": "realtime"}}, timeout=30)
    assert minted.status_code == 200, minted.text
    key = minted.json()["value"]
    assert key.startswith("ek_")
    with chromium(fake_audio=microphone) as driver:
        driver.get(f"{page_origin}/index.html")
        _wait(driver, "the SDK to load", "return window.agentsTest && window.agentsTest.status === 'loaded'", 30)
        driver.execute_script("window.agentsTestStart(arguments[0])", {
            "callsUrl": f"{voxloop_url}/v1/realtime/calls", "key": key,
            "instructions": "You are a helpful assistant. Use the get_weather tool for weather questions. "
                            "Answer in one short sentence."})
        _wait(driver, "the call to connect", "return ['connected', 'failed'].includes(window.agentsTest.status)", 120)
        state = driver.execute_script("return window.agentsTest")
        assert state["status"] == "connected", state["errors"]
        assert state["callId"] and state["callId"].startswith("rtc_"), state  # Location, exposed by CORS
        _wait(driver, "the tool call", "return window.agentsTest.toolCalls.length > 0", 180)
        # The turn after the tool's result: the spoken answer, finished.
        _wait(driver, "the answer after the tool", """
            const s = window.agentsTest; if (!s.toolEnds.length) return false;
            const done = s.raw.filter(e => e.type === 'response.done');
            return done.length >= 2 && done[done.length - 1].response.output.some(o => o.type === 'message')
                && (s.events['output_audio_buffer.stopped'] || 0) >= 1""", 180)
        audio = driver.execute_script("return window.agentsTestAudio()")
        state = driver.execute_script("return window.agentsTest")
        screenshot(driver, "agents-realtime")
    assert not state["errors"], state["errors"]
    raw = state["raw"]
    heard = [e["transcript"] for e in raw if e["type"] == "conversation.item.input_audio_transcription.completed"]
    # Whisper may add a few words on the silence after the question (Chromium's own noise processing): the question
    # must open the transcript.
    assert heard and wer(QUESTION, " ".join(heard[0].split()[: len(QUESTION.split())])) <= 0.2, heard
    # The tool ran in the page once, with the city from the spoken question, and its result went back.
    assert len(state["toolCalls"]) == 1 and "paris" in state["toolCalls"][0].lower(), state["toolCalls"]
    assert state["toolEnds"][0] == {"name": "get_weather", "result": f"It is sunny and 21 degrees in "
                                                                     f"{state['toolCalls'][0]}."}
    calls = [i for i in state["history"] if i["type"] == "function_call"]
    assert len(calls) == 1 and calls[0]["name"] == "get_weather", calls
    assert json.loads(calls[0]["arguments"]) == {"city": state["toolCalls"][0]}
    done = [e for e in raw if e["type"] == "response.done"]
    assert [o["type"] for o in done[0]["response"]["output"]] == ["function_call"], done[0]
    assert all(d["response"]["status"] == "completed" for d in done), [d["response"]["status"] for d in done]
    answers = [e["transcript"] for e in raw if e["type"] == "response.output_audio_transcript.done"]
    assert answers and answers[-1].strip(), answers
    replies = [i for i in state["history"] if i["type"] == "message" and i["role"] == "assistant"]
    assert replies and replies[-1]["content"][0]["transcript"] == answers[-1], replies
    # Audio travels on the track, not the channel; the browser decoded a spoken reply from it.
    assert "response.output_audio.delta" not in state["events"], state["events"]
    assert state["events"].get("output_audio_buffer.started", 0) >= 1
    assert audio and audio["packets"] > 50 and audio["energy"] > 0.001, audio
