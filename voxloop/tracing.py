"""Optional OpenTelemetry traces: a span per HTTP request (and its children), exported over OTLP/HTTP.

Off unless `VOXLOOP_OTEL_ENDPOINT` is set; the packages come from the `otel` extra and are imported only then.
The tracer provider belongs to the app (not OpenTelemetry's process-global one), like the metrics registry.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

# Probes and scrapes would drown real traffic in traces.
EXCLUDED_URLS = "/health,/ready,/metrics"


def install_tracing(app: FastAPI, endpoint: str | None, exporter: Any = None) -> Any | None:
    """Instrument `app`; returns the tracer provider (shut it down on exit) or None when tracing is off.

    `exporter` replaces the OTLP exporter (tests pass an in-memory one).
    """
    if endpoint is None and exporter is None:
        return None
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        hint = "VOXLOOP_OTEL_ENDPOINT is set but OpenTelemetry is missing: pip install 'voxloop[otel]'"
        raise RuntimeError(hint) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": "voxloop"}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
    return provider
