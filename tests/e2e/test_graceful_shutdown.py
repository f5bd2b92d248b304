"""SIGTERM on `voxloop serve`: the request in flight completes with 200, then the process exits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.server import free_port
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
