"""The browser playground (issue 9) in a real headless Chromium against a running voxloop.

Talk: Chromium's fake microphone plays a Piper question; the page must show the transcript, the emotion and a
reply, and play the reply audio, over WebRTC (the default where the browser has it: issue 21) and over the
WebSocket (the fallback, chosen in the page's Connection setting); barge-in on both. Transcribe, Speak and Emotion run through their tabs; the key and the server's
error messages reach the page. Screenshots land in tests/artifacts/ (gitignored)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soxr

from api.settings import Settings
from tests.support.browser import chromium, console, missing_browser, screenshot
from tests.support.server import live_server
from tests.support.speech import PIPER_RATE, encode, silence, speak
from tests.support.wer import wer
from voxloop.app import create_app

_WHY = missing_browser()
pytestmark = [pytest.mark.models, pytest.mark.skipif(_WHY is not None, reason=_WHY or "")]

QUESTION = "What is the capital of France?"
SENTENCE = "The quick brown fox jumps over the lazy dog."
STORY = "Tell me a long story about a dragon who learns to bake bread."
STOP = "Stop, wait a moment."


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("playground")
    # The fake microphone loops its file: a long silence after the question leaves time for the whole reply. It
    # starts when the page opens the microphone; over WebRTC nothing is sent until the call has connected, so the
    # question starts 3 s in (a person waits for "Listening" too).
    question = np.concatenate([silence(3.0), speak(QUESTION), silence(30.0)])
    # 48 kHz, the rate Chromium's audio capture runs at; its WAV reader does not resample.
    mic = root / "question.wav"
    mic.write_bytes(encode(soxr.resample(question, PIPER_RATE, 48_000).astype(np.float32), "wav", rate=48_000))
    # Barge-in: a request for a long story, then, while the story plays, the person talks over it.
    # Replies start 3-6 s after a turn on this machine (more under load), and the small model's "story" may be one
    # sentence: a "stop" every few seconds talks over whichever reply is playing at the time (each stop is also a turn that gets one).
    stops = [part for _ in range(6) for part in (silence(6.0), speak(STOP))]
    barge = np.concatenate([silence(3.0), speak(STORY), *stops, silence(30.0)])
    barge_in = root / "barge_in.wav"
    barge_in.write_bytes(encode(soxr.resample(barge, PIPER_RATE, 48_000).astype(np.float32), "wav", rate=48_000))
    sentence = root / "sentence.wav"
    sentence.write_bytes(encode(np.concatenate([silence(0.3), speak(SENTENCE), silence(0.3)]), "wav"))
    return {"mic": mic, "sentence": sentence, "barge_in": barge_in}


@pytest.fixture(scope="module")
def browser(clips: dict[str, Path]) -> Iterator[object]:
    with chromium(fake_audio=clips["mic"]) as driver:
        yield driver


def wait_for(driver, what: str, check, timeout: float = 60.0, poll: float = 0.25):
    """Poll `check(driver)` until it returns something truthy; fail with the page's text and console otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check(driver)
        if value:
            return value
        time.sleep(poll)
    name = "failed-" + what.replace(" ", "-")[:40]
    screenshot(driver, name)
    body = driver.execute_script("return document.body.innerText")
    talk = driver.execute_script("return JSON.stringify(window.voxloopTalk || null)")
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}.\nPage text:\n{body}\nTalk: {talk}\n"
                         f"Console:\n{console(driver)}")


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def open_tab(driver, base: str, tab: str) -> None:
    driver.get("about:blank")  # a fresh page each test: same-URL hash navigations would not reload it
    driver.get(f"{base}/#{tab}")
    wait_for(driver, "the page to load", lambda d: js(d, "return document.body.dataset.ready === 'true'"))
    error = js(driver, "const e = document.getElementById('error'); return e.hidden ? '' : e.textContent")
    assert not error, error


def start_talk(driver, transport: str) -> None:
    """Start a conversation over `transport` ('webrtc': the page's default here; 'websocket': its fallback)."""
    if transport == "websocket":
        js(driver, "document.getElementById('talk-transport').value = 'websocket'")
    driver.find_element("id", "talk-start").click()
    wait_for(driver, "the session", lambda d: js(d, "return (window.voxloopTalk.events['session.updated'] || 0) > 0"),
             timeout=60)
    assert js(driver, "return window.voxloopTalk.transport") == transport
    if transport == "webrtc":
        assert js(driver, "return window.voxloopTalk.callId").startswith("rtc_")


PLAYING = {"webrtc": "output_audio_buffer.started", "websocket": "response.output_audio.delta"}


@pytest.mark.parametrize("transport", ["webrtc", "websocket"])
def test_talk_spoken_question_gets_transcript_emotion_and_spoken_reply(browser, server_url: str,
                                                                        transport: str) -> None:
    open_tab(browser, server_url, "talk")
    start_talk(browser, transport)
    user = wait_for(browser, "the user's transcript", lambda d: js(d, """
        const t = document.querySelector('.turn.user .text:not(.pending)');
        return t && t.textContent.trim()"""), timeout=90)
    assert wer(QUESTION, user) <= 0.34, user
    emotion = wait_for(browser, "the emotion of the turn", lambda d: js(d, """
        const e = document.querySelector('.turn.user .emotion'); return e && e.textContent"""), timeout=60)
    assert emotion.startswith("emotion: ")
    meta = wait_for(browser, "the reply with its voice", lambda d: js(d, """
        const m = document.querySelector('.turn.assistant.done');
        return m && {text: m.querySelector('.text').textContent, voice: m.querySelector('.voice')?.textContent,
                     bars: m.querySelectorAll('.bar-row').length}"""), timeout=120)
    assert len(meta["text"].split()) >= 2, meta
    assert meta["voice"] and meta["voice"].startswith("voice: "), meta
    assert meta["bars"] >= 2, meta  # transcript, emotion, LLM first token, first audio
    # The reply's audio chunks actually played to their end on the page's AudioContext.
    played = wait_for(browser, "reply audio to play", lambda d: js(d, "return window.voxloopTalk.playedMs"),
                      timeout=60)
    assert played > 300, played
    screenshot(browser, "talk")
    events = js(browser, "return window.voxloopTalk.events")
    assert events.get(PLAYING[transport], 0) >= 1, events
    if transport == "webrtc":  # the reply came on the Opus track, not as events; the server said when it played
        assert "response.output_audio.delta" not in events, events
        # `stopped` comes when the server's track has sent the reply's last frame (real time), maybe after the check
        # above: wait for it.
        wait_for(browser, "output_audio_buffer.stopped", lambda d: js(
            d, "return window.voxloopTalk.events['output_audio_buffer.stopped'] || 0") >= 1, timeout=60)
    browser.find_element("id", "talk-stop").click()


@pytest.mark.parametrize("transport", ["webrtc", "websocket"])
def test_talk_barge_in_by_speaking_stops_the_reply(clips, server_url: str, transport: str) -> None:
    with chromium(fake_audio=clips["barge_in"]) as browser:
        open_tab(browser, server_url, "talk")
        instructions = browser.find_element("id", "talk-instructions")
        instructions.clear()
        instructions.send_keys("You tell long, detailed stories of at least ten sentences.")
        start_talk(browser, transport)
        wait_for(browser, "the story to start playing", lambda d: js(d, f"""
            return window.voxloopTalk.events['{PLAYING[transport]}'] > 0"""), timeout=90)
        cut = wait_for(browser, "the barge-in truncate", lambda d: js(d, "return window.voxloopTalk.truncates[0]"),
                       timeout=90)
        assert cut["itemId"] and cut["playedMs"] >= 0, cut
        # The reply talked over is marked on the page, and the server trimmed it to what was heard (the response
        # itself may have finished generating already, or been cancelled by the server's VAD).
        wait_for(browser, "the interrupted reply", lambda d: js(d, f"""
            const t = document.querySelector('.turn.assistant[data-item="{cut['itemId']}"]');
            return t && t.classList.contains('interrupted')"""), timeout=30)
        wait_for(browser, "the truncate to be confirmed", lambda d: js(d, """
            return window.voxloopTalk.events['conversation.item.truncated'] >= 1"""), timeout=30)
        error = js(browser, "const e = document.getElementById('error'); return e.hidden ? null : e.textContent")
        assert error is None, f"the page shows an error: {error}"
        second = wait_for(browser, "the second user turn", lambda d: js(d, """
            const t = document.querySelectorAll('.turn.user .text:not(.pending)');
            return t.length >= 2 && t[1].textContent.trim()"""), timeout=60)
        assert wer(STOP, second) <= 0.5, second
        screenshot(browser, "talk-barge-in")
        browser.find_element("id", "talk-stop").click()


def test_transcribe_tab_shows_words_and_highlights_them(browser, server_url: str, clips) -> None:
    open_tab(browser, server_url, "transcribe")
    browser.find_element("id", "tr-file").send_keys(str(clips["sentence"]))
    browser.find_element("id", "tr-go").click()
    words = wait_for(browser, "word timestamps", lambda d: js(d, """
        return [...document.querySelectorAll('#tr-words-view .word')].map(w => w.textContent)"""), timeout=60)
    assert wer(SENTENCE, " ".join(words)) <= 0.2, words
    # Jump into the middle of the clip: the word spoken there lights up.
    js(browser, "const a = document.getElementById('tr-audio'); a.currentTime = 1.2; a.play()")
    current = wait_for(browser, "a highlighted word", lambda d: js(d, """
        const w = document.querySelector('#tr-words-view .word.current, #tr-words-view .word.spoken');
        return w && w.textContent"""), timeout=15)
    assert current
    js(browser, "document.getElementById('tr-audio').pause()")
    screenshot(browser, "transcribe")


def test_speak_tab_plays_and_offers_a_download(browser, server_url: str) -> None:
    open_tab(browser, server_url, "speak")
    js(browser, "document.getElementById('sp-format').value = 'wav'")
    browser.find_element("id", "sp-go").click()
    link = wait_for(browser, "the download link", lambda d: js(d, """
        const a = document.getElementById('sp-download'); return !a.hidden && a.download"""), timeout=60)
    assert link == "voxloop-speech.wav"
    duration = wait_for(browser, "the audio to load", lambda d: js(d, """
        const a = document.getElementById('sp-audio'); return a.duration > 0 && a.duration"""), timeout=15)
    assert duration > 1.0, duration
    state = js(browser, "return document.getElementById('sp-state').textContent")
    assert " on piper-joe" in state, state
    screenshot(browser, "speak")


def test_speak_tab_shows_the_servers_error_in_words(browser, server_url: str) -> None:
    open_tab(browser, server_url, "speak")
    js(browser, "document.getElementById('sp-speed').value = '9'")
    browser.find_element("id", "sp-go").click()
    error = wait_for(browser, "the error message", lambda d: js(d, """
        const e = document.getElementById('error'); return !e.hidden && e.textContent"""), timeout=30)
    assert "speed" in error.lower() and "{" not in error, error


def test_emotion_tab_shows_scores(browser, server_url: str, clips) -> None:
    open_tab(browser, server_url, "emotion")
    browser.find_element("id", "em-file").send_keys(str(clips["sentence"]))
    rows = wait_for(browser, "emotion bars", lambda d: js(d, """
        return document.querySelectorAll('#em-bars .bar-row').length"""), timeout=60)
    assert rows >= 4
    label = js(browser, "return document.getElementById('em-label').textContent")
    assert "valence" in label, label
    screenshot(browser, "emotion")


def test_api_key_is_asked_for_and_kept_in_the_session(browser, tmp_path: Path) -> None:
    app = create_app(Settings(cache_dir=tmp_path, api_key="sk-playground"))
    with live_server(app) as url:
        browser.get("about:blank")
        browser.get(url + "/")
        wait_for(browser, "the page to load", lambda d: js(d, "return document.body.dataset.ready === 'true'"))
        error = js(browser, "return document.getElementById('error').textContent")
        assert "API key" in error, error
        browser.find_element("id", "api-key").send_keys("sk-playground")
        browser.find_element("css selector", "#key-form button").click()
        wait_for(browser, "the key to be accepted", lambda d: js(d, """
            return document.getElementById('key-state').textContent.includes('key in use')
                && document.getElementById('error').hidden"""), timeout=20)
        assert js(browser, "return sessionStorage.getItem('voxloop.apiKey')") == "sk-playground"
        assert js(browser, "return localStorage.length") == 0
        # The model lists load after the key is accepted (one more request): wait for them, then check.
        wait_for(browser, "the speech models to load with the key",
                 lambda d: js(d, "return document.getElementById('sp-model').options.length") >= 2, timeout=20)
        js(browser, "sessionStorage.clear()")
