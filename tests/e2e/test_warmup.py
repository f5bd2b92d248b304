"""The warm start (issue 17): the roles run in the background, /ready is 503 until they are done."""

from __future__ import annotations

import time

import httpx
import pytest

from api.settings import Settings
from tests.support.server import live_server
from voxloop.app import create_app

pytestmark = pytest.mark.models


def test_serve_warms_every_role_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from voxloop import cli

    seen = {}

    def stop(settings: Settings) -> None:
        seen["settings"] = settings
        raise SystemExit

    monkeypatch.delenv("VOXLOOP_WARMUP", raising=False)
    monkeypatch.setattr("voxloop.app.create_app", stop)
    with pytest.raises(SystemExit):
        cli.main(["serve"])
    assert seen["settings"].warmup == ["vad", "transcription", "chat", "speech", "emotion"]
    monkeypatch.setenv("VOXLOOP_WARMUP", "[]")
    seen.clear()
    with pytest.raises(SystemExit):
        cli.main(["serve"])
    assert seen["settings"].warmup == []
    assert Settings().warmup == []  # an app built in-process warms nothing unless asked


def test_ready_is_503_until_warm_then_the_models_are_loaded(tmp_path) -> None:
    app = create_app(Settings(cache_dir=tmp_path, warmup=["vad", "transcription", "chat", "speech", "emotion"]))
    with live_server(app) as url:
        first = httpx.get(f"{url}/ready", timeout=30)
        assert first.status_code == 503 and first.json()["status"] == "warming", first.json()
        assert first.json()["warming"]
        deadline = time.monotonic() + 300
        while (ready := httpx.get(f"{url}/ready", timeout=30)).status_code != 200 and time.monotonic() < deadline:
            assert ready.json()["status"] == "warming", ready.json()  # never a failure on the embedded models
            time.sleep(0.5)
        assert ready.status_code == 200 and ready.json()["warming"] == []
        manager = app.state.services.manager
        settings = app.state.services.settings
        for model in (settings.whisper.default_model, settings.tts.fast_model, settings.tts.expressive_model,
                      settings.emotion.default_model, "smollm2-135m-instruct"):
            assert manager.state(model) == "loaded", (model, manager.state(model))
        assert app.state.services.warmup.failed == {}
        assert set(app.state.services.warmup.seconds) == {"vad", "transcription", "chat", "speech", "emotion"}


def test_a_role_that_fails_makes_ready_say_why(tmp_path) -> None:
    settings = Settings(cache_dir=tmp_path, warmup=["speech"])
    settings.tts.fast_model = "no-such-voice-model"
    app = create_app(settings)
    with live_server(app) as url:
        deadline = time.monotonic() + 60
        while (ready := httpx.get(f"{url}/ready", timeout=30)).json()["status"] == "warming":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert ready.status_code == 503 and "warmup:speech" in ready.json()["problems"]
