"""Optional OpenTelemetry: off by default; when on, a span per request with route and status, probes excluded."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.settings import Settings
from voxloop.app import create_app
from voxloop.tracing import install_tracing


def test_off_by_default(tmp_path) -> None:
    assert create_app(Settings(cache_dir=tmp_path)).state.tracer_provider is None


async def test_spans_for_requests(tmp_path) -> None:
    app = create_app(Settings(cache_dir=tmp_path))
    exporter = InMemorySpanExporter()
    provider = install_tracing(app, None, exporter=exporter)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get("/health")
        await client.get("/v1/models/nope", headers={"x-request-id": "trace-me"})
    provider.shutdown()
    servers = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert len(servers) == 1, [s.name for s in exporter.get_finished_spans()]
    span = servers[0]
    assert span.attributes["http.route"] == "/v1/models/{model_id:path}"
    assert span.attributes.get("http.status_code", span.attributes.get("http.response.status_code")) == 404
