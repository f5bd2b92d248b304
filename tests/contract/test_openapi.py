"""The served schema matches the checked-in snapshot, and documents the multipart fields Swagger needs."""

from __future__ import annotations

import httpx

from openapi.snapshot import SNAPSHOT, render, served_schema


def test_snapshot_is_current() -> None:
    assert render(served_schema()) == SNAPSHOT.read_text(), "the API changed: run `make openapi` and commit the diff"


async def test_docs_and_multipart_form(http: httpx.AsyncClient) -> None:
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    schema = (await http.get("/openapi.json")).json()
    body = schema["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["file"] == {"type": "string", "format": "binary", "description": "The audio file."}
    assert {"file", "model"} <= set(body["required"])
    assert body["properties"]["timestamp_granularities[]"]["items"]["enum"] == ["word", "segment"]
    assert body["properties"]["response_format"]["enum"][:2] == ["json", "text"]
