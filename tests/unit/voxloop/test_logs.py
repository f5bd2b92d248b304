"""JSON logs: one object per line, with the request id of the request that logged it."""

from __future__ import annotations

import io
import json
import logging

import httpx

from api.settings import Settings
from voxloop.app import create_app
from voxloop.logs import JsonFormatter, RequestIdFilter


async def test_access_line_as_json_with_request_id(tmp_path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("voxloop.access")
    access.addHandler(handler)
    old_level = access.level
    access.setLevel(logging.INFO)
    try:
        app = create_app(Settings(cache_dir=tmp_path))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/v1/models/nope", headers={"x-request-id": "abc-123"})
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    assert response.headers["x-request-id"] == "abc-123"
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "abc-123" and line["status"] == 404 and line["path"] == "/v1/models/nope"
    assert line["level"] == "info" and line["logger"] == "voxloop.access" and line["ts"].endswith("Z")


def test_records_outside_requests_and_exceptions() -> None:
    record = logging.LogRecord("voxloop", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
    RequestIdFilter().filter(record)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed x" and line["request_id"] == "-" and "ValueError: boom" in line["exc_info"]


async def test_request_id_sanitised(tmp_path) -> None:
    app = create_app(Settings(cache_dir=tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/health", headers={"x-request-id": "a b\tc"})
    assert response.headers["x-request-id"] == "abc"
