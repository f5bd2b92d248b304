"""API-key check for HTTP and WebSocket, when a key is configured.

HTTP: `Authorization: Bearer <key>`. WebSocket (browsers cannot set headers): also the subprotocol
`openai-insecure-api-key.<key>` and `?api_key=<key>`. Keys are compared in constant time and never logged.

A refusal is the same on both: 401 with OpenAI's error body (`invalid_api_key`). A WebSocket handshake gets it
through the ASGI WebSocket Denial Response extension, before the socket is accepted; a server without that
extension can only refuse with a bare 403, which is then what the client sees.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.errors import AuthenticationError
from api.realtime.client_secrets import PREFIX as EPHEMERAL_KEY_PREFIX
from api.realtime.client_secrets import ClientSecretStore

# The ASGI extension that lets a WebSocket handshake be answered with an HTTP response (uvicorn has it).
DENIAL_EXTENSION = "websocket.http.response"
# Probes and the docs stay open so orchestrators and browsers work; everything else, /metrics included, needs the key.
# The playground page itself is public too: it asks the person for the key and sends it on every API call.
# So are the docs pages' own scripts and styles (served here so they work offline).
_OPEN_PATHS = frozenset({"/", "/health", "/ready", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
_OPEN_PREFIXES = ("/playground/", "/docs-assets/")
SUBPROTOCOL_PREFIX = "openai-insecure-api-key."
# Where an ephemeral `ek_` key is accepted (api/realtime/client_secrets.py): opening a realtime session or call, and
# hanging it up. Not minting more keys, and nothing outside realtime.
EPHEMERAL_PATHS = frozenset({"/v1/realtime", "/v1/realtime/calls"})
EPHEMERAL_PREFIX = "/v1/realtime/calls/"


def presented_keys(scope: Scope) -> list[str]:
    headers = dict(scope.get("headers") or [])
    keys = []
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth.lower().startswith("bearer "):
        keys.append(auth[7:].strip())
    if scope["type"] == "websocket":
        for proto in headers.get(b"sec-websocket-protocol", b"").decode("latin-1").split(","):
            if proto.strip().startswith(SUBPROTOCOL_PREFIX):
                keys.append(proto.strip()[len(SUBPROTOCOL_PREFIX) :])
        keys += parse_qs(scope.get("query_string", b"").decode("latin-1")).get("api_key", [])
    return keys


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str, on_reject: Callable[[str], None] | None = None,
                 client_secrets: ClientSecretStore | None = None):
        self.app = app
        self._key = api_key.encode()
        self._on_reject = on_reject
        self._client_secrets = client_secrets

    def _valid(self, scope: Scope) -> bool:
        keys = presented_keys(scope)
        # compare_digest on every presented key (no early exit on a length or prefix mismatch): constant time.
        matches = [hmac.compare_digest(k.encode("utf-8", "surrogateescape"), self._key) for k in keys]
        if any(matches):
            return True
        path = scope.get("path", "")
        realtime = path in EPHEMERAL_PATHS or path.startswith(EPHEMERAL_PREFIX)
        # A live key passes here; the endpoint redeems it (single use) and refuses it if it went meanwhile.
        return realtime and self._client_secrets is not None and any(
            k.startswith(EPHEMERAL_KEY_PREFIX) and self._client_secrets.is_live(k) for k in keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        open_path = path in _OPEN_PATHS or path.startswith(_OPEN_PREFIXES)
        if scope["type"] not in ("http", "websocket") or open_path or self._valid(scope):
            await self.app(scope, receive, send)
            return
        if self._on_reject is not None:
            self._on_reject("unauthorized")
        error = AuthenticationError("Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'.")
        body = json.dumps(error.body()).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer"),
        ]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": error.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif DENIAL_EXTENSION in (scope.get("extensions") or {}):
            # The handshake is answered with the 401 and its body; the socket never opens.
            await send({"type": "websocket.http.response.start", "status": error.status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            # Closing before accept: the server answers the handshake with a bare 403.
            await send({"type": "websocket.close", "code": 1008, "reason": "invalid api key"})
