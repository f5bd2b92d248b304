"""Shared bench helpers: a voxloop server in a subprocess on a loopback port, and timing utilities."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from tests.support.server import free_port, server_process  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def voxloop_process(env: dict[str, str] | None = None, *, root: Path = ROOT) -> Iterator[tuple[str, subprocess.Popen]]:
    """`voxloop serve` as a separate process (as users run it), stopped on exit: (base URL, process).

    `root`: the checkout whose code the server runs (another worktree, to compare two versions in one run).
    """
    port = free_port()
    full_env = {**os.environ, "VOXLOOP_PORT": str(port), "VOXLOOP_LOG_LEVEL": "warning", **(env or {})}
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "voxloop.cli", "serve"]
    with server_process(args, f"{url}/health", cwd=root, env=full_env) as proc:
        yield url, proc


@contextmanager
def voxloop_server(env: dict[str, str] | None = None, *, root: Path = ROOT) -> Iterator[str]:
    with voxloop_process(env, root=root) as (url, _):
        yield url


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {statistics.median(values):.3f}s p95 {p95(values):.3f}s (n={len(values)})"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def uptime() -> str:
    """`uptime`'s line (its load average goes beside every number measured on a shared machine)."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def wait_ready(url: str, timeout: float = 300) -> float:
    """Seconds until /ready answers 200 (the warm-up of `voxloop serve` done), as a deployment's probe waits."""
    started = time.monotonic()
    while httpx.get(f"{url}/ready", timeout=30).status_code != 200:
        if time.monotonic() - started > timeout:
            raise RuntimeError("the server never became ready")
        time.sleep(0.2)
    return time.monotonic() - started
