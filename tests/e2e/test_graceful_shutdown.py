"""SIGTERM on `voxloop serve`: the request in flight completes with 200, a realtime response in progress finishes,
every realtime session gets an `error` event and close code 1001, then the process exits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import websockets

from tests.support.realtime import GA_EVENTS
from tests.support.server import free_port, server_process
from tests.support.speech import encode, silence, speak

pytestmark = pytest.mark.models
ROOT = Path(__file__).resolve().parents[2]


async def _wait_for(predicate, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_sigterm_drains_in_flight_request(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "VOXLOOP_PORT": str(port), "VOXLOOP_CACHE_DIR": str(tmp_path),
           "VOXLOOP_LOG_LEVEL": "warning", "VOXLOOP_SHUTDOWN_GRACE_SECONDS": "60"}
    proc = subprocess.Popen([sys.executable, "-m", "voxloop.cli", "serve"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    clip = encode(np.concatenate([speak("The last part wraps everything up nicely."), silence(0.5)] * 6), "wav")
    try:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:

            async def up() -> bool:
                try:
                    return (await client.get("/health")).status_code == 200
                except httpx.TransportError:
                    return proc.poll() is not None

            await _wait_for(up)
            assert proc.poll() is None
            files, data = {"file": ("a.wav", clip)}, {"model": "whisper-1"}
            assert (await client.post("/v1/audio/transcriptions", files=files, data=data)).status_code == 200

            async with httpx.AsyncClient(base_url=url, timeout=120) as worker:
                in_flight = asyncio.create_task(worker.post("/v1/audio/transcriptions", files=files, data=data))

                async def admitted() -> bool:
                    text = (await client.get("/metrics")).text
                    prefix = 'voxloop_model_requests_in_flight{model="whisper-tiny.en"}'
                    line = next(x for x in text.splitlines() if x.startswith(prefix))
                    return float(line.split()[-1]) >= 1 or in_flight.done()

                await _wait_for(admitted)
                proc.send_signal(signal.SIGTERM)
                response = await in_flight
        assert response.status_code == 200 and "nicely" in response.json()["text"].lower()
        # uvicorn re-raises the captured SIGTERM once shutdown is complete, as a process manager expects.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _recv(ws: websockets.ClientConnection, timeout: float = 120) -> dict:
    event = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    GA_EVENTS.validate_python(event)  # every event the server sends while closing is one the SDK knows
    return event


async def _events_until_closed(ws: websockets.ClientConnection) -> tuple[list[dict], int | None]:
    events = []
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        while True:
            events.append(await _recv(ws))
    return events, closed.value.rcvd.code if closed.value.rcvd is not None else None


async def test_sigterm_finishes_realtime_response_then_error_event_and_1001(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "VOXLOOP_PORT": str(port), "VOXLOOP_CACHE_DIR": str(tmp_path),
           "VOXLOOP_LOG_LEVEL": "warning", "VOXLOOP_SHUTDOWN_GRACE_SECONDS": "60"}
    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
    args = [sys.executable, "-m", "voxloop.cli", "serve"]
    with server_process(args, f"http://127.0.0.1:{port}/health", cwd=ROOT, env=env) as proc:
        async with websockets.connect(url) as idle, websockets.connect(url) as busy:
            for ws in (idle, busy):
                assert [(await _recv(ws))["type"] for _ in range(2)] == ["session.created", "conversation.created"]
            item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello."}]}
            await busy.send(json.dumps({"type": "conversation.item.create", "item": item}))
            await busy.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["text"],
                                                                                "max_output_tokens": 12}}))
            while (await _recv(busy))["type"] != "response.created":
                pass
            proc.send_signal(signal.SIGTERM)  # while the response is in progress

            idle_events, idle_code = await _events_until_closed(idle)
            busy_events, busy_code = await _events_until_closed(busy)
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)

    assert [e["type"] for e in idle_events] == ["error"] and idle_code == 1001
    for error in (idle_events[-1], busy_events[-1]):
        assert error["type"] == "error"
        assert error["error"]["type"] == "server_error" and error["error"]["code"] == "server_shutting_down"
    assert busy_code == 1001
    # The response in progress was allowed to finish before the session was closed.
    types = [e["type"] for e in busy_events]
    assert types.count("response.done") == 1 and types.index("response.done") < types.index("error")
    done = next(e for e in busy_events if e["type"] == "response.done")["response"]
    assert done["status"] in ("completed", "incomplete"), done["status_details"]
    assert any(e["type"] == "response.output_text.delta" for e in busy_events)
