"""Log hygiene: no credential in any record, no forged line from a path, one record per failure.

The unit tests feed records to the filters; the server tests run the app under uvicorn with the handler
`voxloop serve` installs and read what it wrote, uvicorn's own lines included.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import websockets

from api.settings import Settings
from api.speech.service import SpeechPlan
from api.speech.stream import audio_response
from engines.registry import EngineSpec
from tests.support.server import live_server
from voxloop.app import create_app
from voxloop.log_filters import OneRecordPerException, RedactSecrets, escape_controls, redact
from voxloop.logs import configure_logging

API_KEY = "sk-right-key-0123456789"
WRONG_KEY = "sk-wrong-key-9876543210"


@pytest.mark.parametrize(
    "line",
    [
        f'127.0.0.1:5 - "WebSocket /v1/realtime?model=gpt-realtime&api_key={WRONG_KEY}" [accepted]',
        f'"GET /v1/models?API_KEY={WRONG_KEY}&x=1 HTTP/1.1" 401',
        f"/v1/realtime?token={WRONG_KEY}",
        f"/v1/realtime?model=m&access_token={WRONG_KEY}#frag",
        f"/cb?client_secret={WRONG_KEY}",
        f"/v1/x?key={WRONG_KEY}",
        f"Authorization: Bearer {WRONG_KEY}",
        f"headers={{'authorization': 'Bearer {WRONG_KEY}', 'accept': '*/*'}}",
        f'{{"Authorization": "{WRONG_KEY}"}}',
        f"api-key: {WRONG_KEY}",
        f"openai-api-key={WRONG_KEY}",
        f"X-Api-Key: {WRONG_KEY}",
        f"Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.{WRONG_KEY}",
        f"the upstream said: invalid key {WRONG_KEY}",
    ],
)
def test_credentials_are_redacted(line: str) -> None:
    cleaned = redact(line)
    assert WRONG_KEY not in cleaned and "[REDACTED]" in cleaned, cleaned
    assert redact(cleaned) == cleaned  # idempotent: a record filtered twice stays readable


def test_other_text_is_left_alone() -> None:
    for line in ("GET /v1/models?model=whisper-1&language=en 200", "authorization failed: no key given",
                 "task-force disk-free monkey=3 tokens=12"):
        assert redact(line) == line


def test_control_characters_are_escaped() -> None:
    assert escape_controls("GET /v1/models\nFORGED-LINE\r\x00\x1b[31m\u2028 tab\tok") == (
        "GET /v1/models\\nFORGED-LINE\\r\\x00\\x1b[31m\\u2028 tab\tok"
    )


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_redaction_reaches_args_tracebacks_and_extras() -> None:
    try:
        raise RuntimeError(f"upstream refused Authorization: Bearer {WRONG_KEY}")
    except RuntimeError as exc:
        record = _record("request to %s failed\nFORGED", f"http://h/v1?api_key={WRONG_KEY}", exc=exc)
    record.url = f"http://h/?token={WRONG_KEY}"
    assert RedactSecrets().filter(record)
    text = logging.Formatter("%(message)s %(url)s").format(record)
    assert WRONG_KEY not in text and "RuntimeError" in text and "\nFORGED" not in record.getMessage()


def test_one_record_per_exception() -> None:
    once = OneRecordPerException()
    error = RuntimeError("boom")
    assert once.filter(_record("first", exc=error))
    assert not once.filter(_record("Exception in ASGI application\n", exc=error))
    assert once.filter(_record("another failure", exc=RuntimeError("other")))
    assert once.filter(_record("no exception"))


# --- the server, as `voxloop serve` logs it --------------------------------------------------------------------


@pytest.fixture
def server_log(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """What the root handler of `configure_logging` writes while the test runs, in JSON unless the test asks for
    text (indirect parametrisation); logging state restored after."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "voxloop.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate)
             for n in names}
    stream = io.StringIO()
    configure_logging("info", getattr(request, "param", "json"), stream)
    try:
        yield stream
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def _records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def _wait_for(stream: io.StringIO, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in stream.getvalue():
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{stream.getvalue()}"
        time.sleep(0.02)
    time.sleep(0.3)  # room for a duplicate record to show up, if one were coming


def _app_that_fails(tmp_path):
    app = create_app(Settings(cache_dir=tmp_path, api_key=API_KEY))

    @app.get("/v1/test/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @app.get("/v1/test/aborted-stream")
    async def aborted_stream():
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            await asyncio.sleep(0)
            raise RuntimeError("engine died mid-stream")

        plan = SpeechPlan(EngineSpec("m", "speech", lambda: None), "v", (), 1.0, 1.0, "mp3", 1)
        return await audio_response(plan, chunks())

    return app


def test_a_500_and_an_aborted_stream_are_one_record_each(tmp_path, server_log: io.StringIO) -> None:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    with live_server(_app_that_fails(tmp_path), log_config=None, log_level="info") as url:
        response = httpx.get(f"{url}/v1/test/boom", headers=auth)
        assert response.status_code == 500 and response.json()["error"]["type"] == "server_error"
        _wait_for(server_log, "kaboom")
        with pytest.raises(httpx.HTTPError):  # the transfer is broken off, never a short file that looks whole
            httpx.get(f"{url}/v1/test/aborted-stream", headers=auth).raise_for_status()
        _wait_for(server_log, "engine died mid-stream")
    errors = [r for r in _records(server_log) if r["level"] == "error"]
    assert len([r for r in errors if "kaboom" in r.get("exc_info", "")]) == 1, errors
    assert len([r for r in errors if "engine died" in r.get("exc_info", "")]) == 1, errors
    assert len(errors) == 2, [e["message"] for e in errors]


@pytest.mark.parametrize("server_log", ["text", "json"], indirect=True)
async def test_no_key_and_no_forged_line_in_the_server_log(tmp_path, server_log: io.StringIO) -> None:
    app = create_app(Settings(cache_dir=tmp_path, api_key=API_KEY))
    with live_server(app, log_config=None, log_level="info", access_log=True) as url:
        ws = url.replace("http", "ws")
        with pytest.raises(websockets.exceptions.InvalidStatus):  # a wrong key in the query: refused, logged
            async with websockets.connect(f"{ws}/v1/realtime?model=gpt-realtime&api_key={WRONG_KEY}"):
                pass
        async with websockets.connect(f"{ws}/v1/realtime?model=gpt-realtime&api_key={API_KEY}") as accepted:
            await accepted.recv()  # session.created
        async with httpx.AsyncClient(base_url=url) as client:
            forged = "/v1/models%0aFORGED-LINE 200 GET /admin"
            await client.get(forged, headers={"Authorization": f"Bearer {WRONG_KEY}"})
            await client.get("/v1/models%00NUL%0d%1b[2J", params={"token": WRONG_KEY})
            await client.get("/v1/models", headers={"Authorization": f"Bearer {API_KEY}", "api-key": API_KEY})
        await asyncio.sleep(0.3)
    logged = server_log.getvalue()
    assert "WebSocket /v1/realtime?model=gpt-realtime&api_key=[REDACTED]" in logged, logged  # uvicorn's own lines
    assert WRONG_KEY not in logged and API_KEY not in logged, logged
    assert "/v1/models%0AFORGED-LINE" in logged  # the access line shows the path as it was sent
    if server_log.getvalue().startswith("{"):
        messages = [r["message"] for r in _records(server_log)]
    else:  # text: every line is a record of its own, starting with its timestamp
        messages = logged.splitlines()
        assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", line) for line in messages), logged
    assert not any(c in m for m in messages for c in "\r\x00\x1b"), messages
