"""Shared fixtures: one app with the real embedded models per session, a real server, and SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest

from api.settings import Settings
from tests.support.server import live_server
from voxloop.app import create_app

# The client compatibility suite runs in its own venv against a `voxloop serve` subprocess (`make test-clients`,
# which passes --confcutdir=tests/clients so this file is not loaded there); the core venv lacks its libraries.
collect_ignore = ["clients"]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(cache_dir=tmp_path_factory.mktemp("cache"), max_upload_bytes=5 * 1024 * 1024)


@pytest.fixture(scope="session")
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture(scope="session")
def server_url(app) -> Iterator[str]:
    """The session app served by uvicorn on loopback (lifespan included)."""
    with live_server(app) as url:
        yield url


@pytest.fixture(scope="session")
def sdk(server_url: str) -> openai.OpenAI:
    """The official OpenAI SDK pointed at voxloop."""
    return openai.OpenAI(base_url=f"{server_url}/v1", api_key="sk-local", max_retries=0, timeout=120)


@pytest.fixture
async def http(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_url, timeout=120) as client:
        yield client
