"""A real uvicorn server on a loopback port, in a thread, for tests that need real sockets (streaming, WebSocket)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app: FastAPI, **config_overrides: Any) -> Iterator[str]:
    """Serve `app` on 127.0.0.1:<free port>; yields the base URL (http://127.0.0.1:PORT). `config_overrides` go to
    uvicorn.Config (`log_config=None` leaves logging to the test, as `voxloop serve` leaves it to voxloop.logs).

    The WebSocket message limit is the app's setting, as `voxloop serve` passes it to uvicorn.
    """
    port = free_port()
    max_message = app.state.services.settings.realtime.max_message_bytes
    options: dict[str, Any] = {"log_level": "warning", "ws_max_size": max_message, **config_overrides}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_until_up(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    """Poll `url` until it answers 200; fail early if `proc` (the server process) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")


@contextmanager
def server_process(args: list[str], health_url: str, **popen: object) -> Iterator[subprocess.Popen]:
    """Start a server process, wait until `health_url` answers, and stop it on exit."""
    proc = subprocess.Popen(args, **popen)  # type: ignore[call-overload]
    try:
        wait_until_up(health_url, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
