"""What may reach a log line: no secrets, no forged lines, one record per failure.

Filters for the one log handler (`voxloop.logs.configure_logging`), so they see every record, uvicorn's included:
- `RedactSecrets` replaces the values of key-bearing query parameters (`?api_key=`, `token`, …) and headers
  (`Authorization`, `api-key`, …) with `[REDACTED]`, in the message, the traceback and `extra` fields. uvicorn's
  own WebSocket line carries the query string, which is where browsers put their key.
- It also escapes control characters in the message: a percent-decoded path such as `/v1/models%0aFORGED` must
  not start a log line of its own.
- `OneRecordPerException` lets the first record about an exception through and drops later ones about the same
  exception object: Starlette re-raises a 500 after its handler logged it, and uvicorn logs it again.
"""

from __future__ import annotations

import logging
import re

# Attributes every LogRecord has; anything else on a record came from `extra=` (or a filter).
STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"
}
REDACTED = "[REDACTED]"
# Query parameters whose value is a credential, matched case-insensitively (`api_key`, `api-key`, `apikey`, `key`,
# `token`, `access_token`, `client_secret`).
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:api[_-]?key|key|token|access[_-]?token|client[_-]?secret)=)(?!\[REDACTED\])[^&#\s\"'<>]+"
)
# Headers (or header-like `name: value` / `name=value` pairs, quoted or not) whose value is a credential; a
# scheme such as `Bearer` is kept.
_HEADER_SECRET = re.compile(
    r"(?i)\b((?:proxy-)?authorization|(?:x-|openai-)?api[_-]?key|client[_-]?secret|access[_-]?token)"
    r"([\"']?\s*[:=]\s*[\"']?)(?!(?:(?:bearer|basic|token)\s+)?\[REDACTED\])((?:bearer|basic|token)\s+)?"
    r"[^\s\"',;&<>}\]]+"
)
# The browser's WebSocket subprotocol that carries the key, and OpenAI-style keys wherever they appear.
_SUBPROTOCOL_SECRET = re.compile(r"(?i)(openai-insecure-api-key\.)[^\s,\"']+")
_OPENAI_KEY = re.compile(r"\b(sk-)(?!\[REDACTED\])[A-Za-z0-9_\-]{4,}")
# C0 and C1 controls (tab kept), DEL, and the Unicode line and paragraph separators, as backslash escapes.
_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c != 0x09}
_CONTROL_ESCAPES |= {0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"}
_TRACEBACKS = logging.Formatter()
_LOGGED = "_voxloop_logged"


def redact(text: str) -> str:
    """`text` with the values of credentials replaced by `[REDACTED]`."""
    text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    text = _HEADER_SECRET.sub(rf"\1\2\3{REDACTED}", text)
    text = _SUBPROTOCOL_SECRET.sub(rf"\1{REDACTED}", text)
    return _OPENAI_KEY.sub(rf"\1{REDACTED}", text)


def escape_controls(text: str) -> str:
    """`text` on one line: newlines, NUL and the other control characters as backslash escapes."""
    return text.translate(_CONTROL_ESCAPES)


class RedactSecrets(logging.Filter):
    """Rewrite each record so that it holds no credential and its message no control character."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: left for the handler to report as logging does
            return True
        record.msg, record.args = redact(escape_controls(message)), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


class OneRecordPerException(logging.Filter):
    """Drop a record about an exception that an earlier record was already about (the same object)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        if getattr(exc, _LOGGED, False):
            return False
        try:
            setattr(exc, _LOGGED, True)
        except (AttributeError, TypeError):  # an exception type with __slots__: it may be logged twice
            pass
        return True
