"""Ephemeral `ek_` keys pass the API-key middleware on the realtime routes only (middleware/auth.py)."""

import httpx
import pytest

from api.realtime.client_secrets import ClientSecretStore
from middleware.auth import ApiKeyMiddleware


async def _ok(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def store():
    return ClientSecretStore()


def _client(store):
    app = ApiKeyMiddleware(_ok, api_key="sk-real", client_secrets=store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize("path", ["/v1/realtime/calls", "/v1/realtime", "/v1/realtime/calls/rtc_1/hangup"])
async def test_a_live_key_opens_realtime_routes(store, path):
    key = store.issue(60).value
    async with _client(store) as client:
        response = await client.post(path, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/v1/audio/speech", "/v1/chat/completions", "/v1/realtime/client_secrets",
                                  "/v1/realtime/sessions", "/v1/models"])
async def test_a_live_key_is_refused_elsewhere(store, path):
    key = store.issue(60).value
    async with _client(store) as client:
        response = await client.post(path, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_used_or_unknown_keys_are_refused(store):
    key = store.issue(60).value
    store.redeem(key)
    async with _client(store) as client:
        for presented in (key, "ek_never-issued"):
            response = await client.post("/v1/realtime/calls", headers={"Authorization": f"Bearer {presented}"})
            assert response.status_code == 401
