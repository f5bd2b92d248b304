"""Realtime over WebRTC and its ephemeral keys, as OpenAI serves them (issue 21).

- `POST /v1/realtime/calls`: an SDP offer (`application/sdp`, or multipart with `sdp` and an optional `session` JSON)
  → 201, the SDP answer (`application/sdp`) and `Location: /v1/realtime/calls/{call_id}`.
- `POST /v1/realtime?model=…`: the beta form, an SDP body → 201 with the answer.
- `?voxloop_events=true` on either: voxloop's extension events on the data channel too, as on the WebSocket.
- `POST /v1/realtime/calls/{call_id}/hangup`: ends the call and frees everything.
- `POST /v1/realtime/client_secrets` (GA: `value`, `expires_at`, `session`), `POST /v1/realtime/sessions` and
  `/v1/realtime/transcription_sessions` (beta: the session with `client_secret.value`): short-lived, single-use
  `ek_` keys for browsers, valid on the realtime endpoints only (middleware/auth.py).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import ServicesDep
from api.http.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
)
from api.realtime.client_secrets import PREFIX, EphemeralKeyError
from api.realtime.events import new_id
from api.realtime.session_config import InvalidSessionError, SessionConfig, apply_update, render_beta, render_ga
from api.realtime.webrtc.offer import InvalidOfferError, parse_offer

router = APIRouter(tags=["realtime"])

MIN_TTL, MAX_TTL = 10, 7200


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def _redeem(request: Request, services: Any) -> dict[str, Any] | None:
    """The session config an ephemeral key carries (consuming the key), or None for a real key."""
    key = _bearer(request)
    if not key.startswith(PREFIX):
        return None
    try:
        return services.client_secrets.redeem(key).session
    except EphemeralKeyError as exc:
        raise AuthenticationError(str(exc)) from None


async def _read_offer(request: Request) -> tuple[str, dict[str, Any] | None]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        sdp, session = form.get("sdp"), form.get("session")
        if not isinstance(sdp, str):
            raise InvalidRequestError("The multipart body needs an 'sdp' field with the SDP offer.", param="sdp",
                                      code="missing_required_parameter")
        if session is None:
            return sdp, None
        try:
            parsed = json.loads(session if isinstance(session, str) else await session.read())
        except ValueError:
            raise InvalidRequestError("The 'session' field is not JSON.", param="session") from None
        if not isinstance(parsed, dict):
            raise InvalidRequestError("The 'session' field must be a JSON object.", param="session")
        return sdp, parsed
    if content_type not in ("application/sdp", "text/plain", ""):
        raise InvalidRequestError(f"Send the SDP offer as application/sdp or multipart/form-data, not {content_type}.",
                                  code="unsupported_content_type")
    return (await request.body()).decode("utf-8", "replace"), None


async def _call(request: Request, services: ServicesDep, *, beta: bool) -> Response:
    sdp, session = await _read_offer(request)
    try:
        offer = parse_offer(sdp)
    except InvalidOfferError as exc:
        raise InvalidRequestError(str(exc), param="sdp", code=exc.code) from None
    if session is not None:
        try:  # refused here with a 400, not as an error event on a call that then runs without it
            apply_update(SessionConfig(), session, beta=beta)
        except InvalidSessionError as exc:
            raise InvalidRequestError(str(exc), param=exc.param or "session") from None
    carried = _redeem(request, services)
    session = {**(carried or {}), **(session or {})} or None
    refusal = services.realtime_sessions.admit()
    if refusal is not None:
        if refusal.error.type == "server_error":  # shutting down
            raise ServiceUnavailableError(refusal.error.message, code=refusal.error.code)
        raise RateLimitError(refusal.error.message, retry_after=services.realtime_sessions.retry_after,
                             code=refusal.error.code)
    model = request.query_params.get("model") or (session or {}).get("model")
    try:
        call_id, answer = await services.webrtc_calls.start(
            offer, model=model, beta=beta, session=session,
            extension_events=request.query_params.get("voxloop_events", "").lower() in ("1", "true", "yes"))
    except InvalidOfferError as exc:
        services.realtime_sessions.release(None)
        raise InvalidRequestError(str(exc), param="sdp", code=exc.code) from None
    except BaseException:
        services.realtime_sessions.release(None)
        raise
    return Response(answer, status_code=201, media_type="application/sdp",
                    headers={"Location": f"/v1/realtime/calls/{call_id}"})


@router.post("/v1/realtime/calls", status_code=201, response_class=Response,
             responses={201: {"content": {"application/sdp": {}}, "description": "The SDP answer."}})
async def create_call(request: Request, services: ServicesDep) -> Response:
    """Start a realtime call over WebRTC from an SDP offer; the answer names the call in `Location`."""
    return await _call(request, services, beta=False)


@router.post("/v1/realtime", status_code=201, response_class=Response,
             responses={201: {"content": {"application/sdp": {}}, "description": "The SDP answer."}})
async def create_call_beta(request: Request, services: ServicesDep) -> Response:
    """The beta WebRTC form: `POST /v1/realtime?model=…` with an SDP body."""
    return await _call(request, services, beta=True)


@router.post("/v1/realtime/calls/{call_id}/hangup")
async def hang_up(call_id: str, services: ServicesDep) -> Response:
    """End a call: the peer connection closes, the session ends, the call id is forgotten."""
    if not await services.webrtc_calls.hang_up(call_id):
        raise NotFoundError(f"No realtime call with id '{call_id}'.", param="call_id", code="call_not_found")
    return Response(status_code=200)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidRequestError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    return body


def _ttl(seconds: Any, default: int) -> int:
    if seconds is None:
        return default
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not MIN_TTL <= seconds <= MAX_TTL:
        raise InvalidRequestError(f"'expires_after.seconds' must be an integer from {MIN_TTL} to {MAX_TTL}.",
                                  param="expires_after.seconds", code="invalid_value")
    return seconds


def _config(session: Any, *, beta: bool, kind: str) -> SessionConfig:
    try:
        return apply_update(SessionConfig(kind=kind), session, beta=beta, kind=kind)
    except InvalidSessionError as exc:
        raise InvalidRequestError(str(exc), param=exc.param or "session") from None


@router.post("/v1/realtime/client_secrets")
async def client_secrets(request: Request, services: ServicesDep) -> dict[str, Any]:
    """A GA ephemeral key: `{value, expires_at, session}`; a call made with it starts with that session config."""
    body = await _json(request)
    session = body.get("session") or {"type": "realtime"}
    if not isinstance(session, dict):
        raise InvalidRequestError("'session' must be an object.", param="session")
    kind = "transcription" if session.get("type") == "transcription" else "realtime"
    config = _config({k: v for k, v in session.items() if k != "type"}, beta=False, kind=kind)
    ttl = _ttl((body.get("expires_after") or {}).get("seconds"), services.settings.realtime.client_secret_ttl_seconds)
    secret = services.client_secrets.issue(ttl, session)
    rendered = render_ga(config, new_id("sess"))
    return {"value": secret.value, "expires_at": secret.expires_at, "session": rendered}


async def _beta_session(request: Request, services: ServicesDep, kind: str) -> dict[str, Any]:
    body = await _json(request)
    config = _config(body, beta=True, kind=kind)
    ttl = _ttl((body.get("client_secret") or {}).get("expires_after", {}).get("seconds"),
               services.settings.realtime.client_secret_ttl_seconds)
    session = {k: v for k, v in body.items() if k != "client_secret"}
    if kind == "transcription":
        session["type"] = "transcription"
    secret = services.client_secrets.issue(ttl, session)
    rendered = render_beta(config, new_id("sess"))
    rendered["client_secret"] = {"value": secret.value, "expires_at": secret.expires_at}
    return rendered


@router.post("/v1/realtime/sessions")
async def beta_sessions(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Beta ephemeral key: the session object with `client_secret: {value, expires_at}`."""
    return await _beta_session(request, services, "realtime")


@router.post("/v1/realtime/transcription_sessions")
async def beta_transcription_sessions(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Beta ephemeral key for a transcription-only session."""
    return await _beta_session(request, services, "transcription")
