"""GET /metrics: Prometheus exposition of this app's registry (not part of the OpenAI-shaped API schema)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.deps import MetricsDep, ServicesDep
from api.metrics import CONTENT_TYPE
from api.models.service import serving_states

router = APIRouter(tags=["observability"])


@router.get("/metrics", include_in_schema=False)
async def metrics(metrics: MetricsDep, services: ServicesDep) -> Response:
    # Models in their own deployments (`voxloop ray`): their state is read from the Ray controller, off the loop.
    serving = await run_in_threadpool(serving_states, services.registry.specs())
    return Response(metrics.render(serving), media_type=CONTENT_TYPE)
