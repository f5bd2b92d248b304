"""Logging setup: human-readable lines by default, or one JSON object per line (`VOXLOOP_LOG_FORMAT=json`).

Every record carries the id of the request it was logged under (from `middleware.request_id`), so a log
aggregator can join the access line with the engine's lines for the same request. Every record also passes the
filters of `voxloop.log_filters`: credentials redacted, control characters escaped, one record per exception.
"""

from __future__ import annotations

import json
import logging
import time
from typing import IO, Any

from middleware.request_id import current_request_id
from voxloop.log_filters import STANDARD_ATTRIBUTES, OneRecordPerException, RedactSecrets

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Anything else on the record came from `extra=` and is emitted as a field of its own.
        entry.update({k: v for k, v in vars(record).items() if k not in STANDARD_ATTRIBUTES and not k.startswith("_")})
        if record.exc_info or record.exc_text:
            entry["exc_info"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_handler(fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    """The one handler: text or JSON lines on `stream` (stderr by default), with every filter records must pass."""
    handler = logging.StreamHandler(stream)
    for record_filter in (OneRecordPerException(), RequestIdFilter(), RedactSecrets()):
        handler.addFilter(record_filter)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(level: str, fmt: str, stream: IO[str] | None = None) -> None:
    """Install one handler on the root logger (replacing earlier ones) and route uvicorn's loggers through it."""
    handler = log_handler(fmt, stream)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
