"""The client compatibility suite: real client libraries from PyPI against a real `voxloop serve`.

The clients run in their own venv (.venv-clients, locks/clients.txt: their pins may conflict with voxloop's); the
server runs from the core venv, as users run it: `VOXLOOP_SERVER_PYTHON` (default: the repo's .venv/bin/python)
`-m voxloop.cli serve` in a subprocess on a free loopback port, with an API key set, so every client must also send
its key the way it sends it to OpenAI. Run with `make test-clients`; `--confcutdir=tests/clients` keeps pytest from
loading tests/conftest.py, which imports the server's code.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.realtime import to_pcm16_24k
from tests.support.speech import silence, speak

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-voxloop-clients"
QUESTION = "What is the capital of France?"


def _server_python() -> Path:
    return Path(os.environ.get("VOXLOOP_SERVER_PYTHON") or ROOT / ".venv" / "bin" / "python")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def voxloop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`voxloop serve` from the core venv: its base URL (http://127.0.0.1:PORT), models warm."""
    python = _server_python()
    if not python.exists():
        pytest.fail(f"no server python at {python}: run `make install` (or set VOXLOOP_SERVER_PYTHON)")
    port, tmp = _free_port(), tmp_path_factory.mktemp("voxloop")
    env = {**os.environ, "VOXLOOP_HOST": "127.0.0.1", "VOXLOOP_PORT": str(port), "VOXLOOP_API_KEY": API_KEY,
           "VOXLOOP_LOG_LEVEL": "warning", "VOXLOOP_CACHE_DIR": str(tmp / "cache")}
    url = f"http://127.0.0.1:{port}"
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen([str(python), "-m", "voxloop.cli", "serve"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        _wait_until_up(f"{url}/health", proc, tmp / "server.log")
        _warm_up(url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voxloop serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def _warm_up(url: str) -> None:
    """Load the LLM, Piper and Whisper once, so no test pays for a first load."""
    with httpx.Client(base_url=f"{url}/v1", headers=auth_headers(), timeout=120) as client:
        client.post("/chat/completions", json={"model": "voxloop", "max_tokens": 2,
                                               "messages": [{"role": "user", "content": "Hi"}]}).raise_for_status()
        speech = client.post("/audio/speech", json={"model": "tts-1", "input": "Hi.", "voice": "alloy",
                                                    "response_format": "wav"})
        speech.raise_for_status()
        client.post("/audio/transcriptions", data={"model": "whisper-1"},
                    files={"file": ("hi.wav", speech.content, "audio/wav")}).raise_for_status()


def auth_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def ws_url(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


def words(text: str) -> set[str]:
    """Lowercase words of three letters or more (what a transcript comparison can rely on)."""
    return {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) >= 3}


def speech_pcm(text: str, lead: float = 0.3, tail: float = 1.0) -> bytes:
    """`text` spoken by Piper, with silence around it, as 24 kHz pcm16 mono (the Realtime API's input format)."""
    return to_pcm16_24k(np.concatenate([silence(lead), speak(text), silence(tail)]))


def transcribe_pcm(url: str, pcm: bytes, rate: int = 24_000) -> str:
    """What voxloop's Whisper hears in pcm16 mono audio (to check that audio a client received says its words)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    reply = httpx.post(f"{url}/v1/audio/transcriptions", headers=auth_headers(), timeout=120,
                       data={"model": "whisper-1", "language": "en"},
                       files={"file": ("reply.wav", buf.getvalue(), "audio/wav")})
    reply.raise_for_status()
    return reply.json()["text"]
