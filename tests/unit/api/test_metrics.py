"""Prometheus metrics: per-app registries, route templates as labels, rejections, model lifecycle, helpers."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import Metrics
from api.settings import Settings
from engines.manager import ModelManager
from engines.registry import EngineRegistry, EngineSpec
from voxloop.app import create_app


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


async def test_two_apps_have_their_own_registries(tmp_path) -> None:
    first, second = create_app(Settings(cache_dir=tmp_path)), create_app(Settings(cache_dir=tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://t") as client:
        await client.get("/v1/models")
        assert value((await client.get("/metrics")).text, "voxloop_http_requests_total",
                     method="GET", route="/v1/models", status="200") == 1
    assert second.state.services.metrics.registry is not first.state.services.metrics.registry
    assert value(second.state.services.metrics.render().decode(), "voxloop_http_requests_total",
                 method="GET", route="/v1/models", status="200") is None


async def test_requests_labelled_by_route_template_and_rejections_counted(tmp_path) -> None:
    app = create_app(Settings(cache_dir=tmp_path, max_upload_bytes=100, api_key="k"))
    auth = {"authorization": "Bearer k"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for name in ("a", "b", "c"):
            assert (await client.get(f"/v1/models/{name}", headers=auth)).status_code == 404
        await client.get("/v1/models")  # no key
        await client.post("/v1/audio/transcriptions", content=b"x" * 1000, headers=auth)
        text = (await client.get("/metrics", headers=auth)).text
    route = "/v1/models/{model_id:path}"
    assert value(text, "voxloop_http_requests_total", method="GET", route=route, status="404") == 3
    assert value(text, "voxloop_rejections_total", reason="unauthorized") == 1
    assert value(text, "voxloop_rejections_total", reason="body_too_large") == 1
    assert value(text, "voxloop_http_request_duration_seconds_count", method="GET", route=route) == 3
    assert value(text, "voxloop_model_loaded", model="whisper-tiny.en") == 0


class _Engine:
    def close(self) -> None:
        pass


async def test_model_lifecycle_and_per_model_rejections() -> None:
    metrics = Metrics()
    spec = EngineSpec("m", "transcription", _Engine)
    registry = EngineRegistry([spec])
    manager = ModelManager(registry, max_concurrent=1, on_event=metrics.model_event)
    metrics.watch_models(registry, manager)
    async with manager.lease(spec):
        text = metrics.render().decode()
        assert value(text, "voxloop_model_loaded", model="m") == 1
        assert value(text, "voxloop_model_requests_in_flight", model="m") == 1
        assert value(text, "voxloop_model_loads_total", model="m") == 1
        try:
            async with manager.lease(spec):
                raise AssertionError("admitted over the limit")
        except Exception as exc:  # EngineOverloadedError
            assert "busy" in str(exc)
    await manager.unload("m")
    text = metrics.render().decode()
    assert value(text, "voxloop_model_loaded", model="m") == 0
    assert value(text, "voxloop_model_unloads_total", model="m", reason="requested") == 1
    assert value(text, "voxloop_rejections_total", reason="model_concurrency") == 1
    assert value(text, "voxloop_model_load_seconds_count", model="m") == 1
    await asyncio.sleep(0)


def test_helpers_for_engine_code() -> None:
    metrics = Metrics()
    metrics.observe_engine("transcription", "whisper-tiny.en", 0.5, audio_seconds=10.0)
    metrics.observe_first_audio("piper", 0.2)
    metrics.observe_realtime_stage("asr", 0.12)
    text = metrics.render().decode()
    assert value(text, "voxloop_realtime_factor_sum", endpoint="transcription", model="whisper-tiny.en") == 0.05
    assert value(text, "voxloop_audio_seconds_total", endpoint="transcription", model="whisper-tiny.en") == 10
    assert value(text, "voxloop_time_to_first_audio_seconds_count", model="piper") == 1
    assert value(text, "voxloop_realtime_stage_seconds_count", stage="asr") == 1
