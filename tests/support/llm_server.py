"""A real llama.cpp OpenAI-compatible server (llama_cpp.server) on a loopback port, and broken upstreams.

The broken upstreams are test doubles named as such: raw sockets that never answer or answer garbage, standing
in for a vLLM that hangs or misbehaves (which a real LLM server cannot be made to do on demand).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from engines.llama_cpp_chat import smollm2_gguf
from tests.support.server import free_port, server_process


@contextmanager
def llama_cpp_server() -> Iterator[str]:
    """`python -m llama_cpp.server` with the embedded SmolLM2 GGUF; yields its base URL ending in /v1."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    args = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--host", "127.0.0.1",
            "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--chat_format", "chatml-function-calling",
            "--model_alias", "smollm2-upstream"]
    with server_process(args, f"{url}/models", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        yield url


@contextmanager
def broken_upstream(behaviour: str) -> Iterator[str]:
    """Test double for a misbehaving upstream: 'hang' accepts and never answers; 'garbage' answers 200 non-JSON."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            if behaviour == "garbage":
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    body = b"<html>definitely not json</html>"
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                    conn.close()  # one answer per connection, so a reused keep-alive socket cannot hang
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()
