"""Ray Serve's own floor: what the proxy and a handle hop cost a streamed request here, with no voxloop code.

The same tiny FastAPI endpoint (it streams four 100 ms pcm chunks of silence) is served three ways, all up at once,
requests alternating between them one at a time:
- uvicorn: the app in a plain uvicorn process (what `voxloop serve` is);
- serve-1-hop: the app as a Serve ingress deployment behind Serve's HTTP proxy (proxy -> ingress);
- serve-2-hops: the ingress streams the chunks from a second deployment through a handle (proxy -> ingress ->
  engine replica), the path a voxloop speech request takes on Ray.
Printed: time to the first byte and to the last, p50 and p95, and each Serve way's overhead over uvicorn. voxloop's
Ray path (bench/ray_serve.py) cannot be faster than serve-2-hops; its own overhead beside in-process `voxloop
serve` is comparable with that figure.

    python bench/ray_floor.py [--n 40]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import ROOT, p95, uptime  # noqa: E402
from tests.support.server import free_port  # noqa: E402

CHUNK = b"\0" * 4800  # 100 ms of 24 kHz pcm16
CHUNKS = 4

APP = textwrap.dedent(f'''
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()

    async def chunks():
        for _ in range({CHUNKS}):
            yield b"\\0" * {len(CHUNK)}

    @app.post("/speech")
    async def speech():
        return StreamingResponse(chunks(), media_type="audio/pcm")
''')


class LazyApp:
    """A picklable ASGI app that builds its FastAPI app in the replica (FastAPI's telemetry object does not pickle;
    voxloop/ray.py's ingress does the same)."""

    routes: list[Any] = []
    router = SimpleNamespace(redirect_slashes=False)

    def __init__(self, hops: int):
        self._hops = hops
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = build_app(self._hops)
        await self._app(scope, receive, send)


def build_app(hops: int) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse
    from ray import serve

    app = FastAPI()
    engine = (serve.get_deployment_handle("Engine", app_name="two").options(stream=True, method_name="synthesize")
              if hops == 2 else None)

    @app.post("/speech")
    async def speech() -> StreamingResponse:
        chunks = relay(engine.remote()) if engine is not None else silence()
        return StreamingResponse(chunks, media_type="audio/pcm")

    return app


def serve_apps() -> tuple[Any, Any]:
    """The two Serve applications: proxy -> ingress, and proxy -> ingress -> engine."""
    from ray import serve

    class Ingress:
        def __init__(self, *engines: Any):
            self._engines = engines

    one = serve.deployment(name="OneHop", max_ongoing_requests=64)(serve.ingress(LazyApp(1))(Ingress))
    two = serve.deployment(name="TwoHops", max_ongoing_requests=64)(serve.ingress(LazyApp(2))(Ingress))
    engine = serve.deployment(name="Engine", max_ongoing_requests=64)(_Engine)
    return one.bind(), two.bind(engine.bind())


async def silence() -> AsyncIterator[bytes]:
    for _ in range(CHUNKS):
        yield CHUNK


async def relay(response: Any) -> AsyncIterator[bytes]:
    async for chunk in response:
        yield chunk


class _Engine:
    """The engine deployment: streams the chunks back through the handle."""

    async def synthesize(self) -> AsyncIterator[bytes]:
        async for chunk in silence():
            yield chunk


def deploy_serve(port: int) -> None:
    import ray
    from ray import serve

    ray.init(num_cpus=4, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    one, two = serve_apps()
    serve.run(one, name="one", route_prefix="/one")
    serve.run(two, name="two", route_prefix="/two")


def request(client: httpx.Client, url: str) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    with client.stream("POST", url) as response:
        response.raise_for_status()
        for piece in response.iter_bytes():
            if piece and first is None:
                first = time.perf_counter() - started
    assert first is not None
    return first, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    args = parser.parse_args()
    print(f"before: {uptime()}")
    plain_port, serve_port = free_port(), free_port()
    app_dir = Path(__file__).resolve().parent / "_floor_app"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "floor_app.py").write_text(APP)
    plain = subprocess.Popen([sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(plain_port),
                              "--log-level", "warning"], cwd=app_dir)
    try:
        deploy_serve(serve_port)
        urls = {"uvicorn": f"http://127.0.0.1:{plain_port}/speech",
                "serve-1-hop": f"http://127.0.0.1:{serve_port}/one/speech",
                "serve-2-hops": f"http://127.0.0.1:{serve_port}/two/speech"}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
        with httpx.Client(timeout=30) as client:
            for url in urls.values():  # warm every path
                for _ in range(5):
                    request(client, url)
            for _ in range(args.n):
                for name, url in urls.items():
                    times[name].append(request(client, url))
    finally:
        plain.terminate()
        (app_dir / "floor_app.py").unlink(missing_ok=True)
        app_dir.rmdir()
    base_first = statistics.median(t[0] for t in times["uvicorn"])
    for name, rows in times.items():
        first, last = [t[0] for t in rows], [t[1] for t in rows]
        over = (statistics.median(first) - base_first) * 1000
        print(f"{name:13s} first byte p50 {statistics.median(first) * 1000:6.1f} ms p95 {p95(first) * 1000:6.1f} ms | "
              f"last byte p50 {statistics.median(last) * 1000:6.1f} ms | first-byte overhead over uvicorn p50 "
              f"{over:+.1f} ms (n={len(rows)})")
    print(f"after: {uptime()}")


if __name__ == "__main__":
    main()
